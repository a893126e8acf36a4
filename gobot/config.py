"""config.toml: the core settings models, loading with precedence, and errors as ``file:key: message — fix``.

Every plugin's settings live in ``[plugins.<name>]`` and are validated against the model the
plugin declares (``gobot_config_model``). Secrets never live here: only in the environment.
"""

from __future__ import annotations

import difflib
import enum
import math
import os
import re
import stat
import sys
import tempfile
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from gobot.errors import ConfigError, ConfigProblem, PluginError
from gobot.secrets import SECRET_ENV_VARS, secret_problems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_CONFIG_NAME = "config.toml"
CONFIG_ENV = "GOBOT_CONFIG"
#: ``GOBOT_<SECTION>__<KEY>`` and ``GOBOT_PLUGINS__<NAME>__<KEY>`` override config.toml (see ``env_overrides``).
ENV_PREFIX = "GOBOT_"
ENV_SEPARATOR = "__"
#: Top-level keys, which have no section: their variable is ``GOBOT_<KEY>``.
TOP_LEVEL_ENV = {"GOBOT_STATE_DIR": "state_dir"}
ENV_LABEL = "(environment)"

#: Key names that hold a secret (``api_key``, ``bot_token``, ``client_secret``, ``password``; not ``max_tokens``).
_SECRET_KEY_PATTERN = re.compile(
    r"api_?key|secret|passw(or)?d|passphrase|credential|private_?key|(^|_)(auth_?)?token($|_)", re.IGNORECASE)
#: Values that are credentials whatever their key: webhook URLs of Slack and Discord, Telegram bot tokens, private keys.
_CREDENTIAL_VALUES = (
    (re.compile(r"hooks\.slack\.com/(services|workflows|triggers)/", re.IGNORECASE), "a Slack webhook URL"),
    (re.compile(r"discord(app)?\.com/api/webhooks/", re.IGNORECASE), "a Discord webhook URL"),
    (re.compile(r"(?<![0-9])[0-9]{5,12}:[A-Za-z0-9_-]{30,}"), "a Telegram bot token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
)
MAX_CONFIG_BYTES = 1024 * 1024  # a config file is a few kilobytes; a bigger "config" is the wrong file
MAX_PATH_BYTES = 4095  # PATH_MAX - 1 on Linux
MAX_NAME_BYTES = 255  # NAME_MAX: one folder or file name
MAX_USD = 1e12  # no account, position or daily limit is larger
MAX_SECONDS = 7 * 86400.0  # no interval or timeout of the bot is longer than a week


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def check_path(value: str) -> str:
    """A path gobot can hand to the operating system: no NUL, not longer than the system allows."""
    if "\x00" in value:
        raise ValueError("contains a NUL character, which no path may hold")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_PATH_BYTES:
        raise ValueError(f"is {size} bytes long; a path is at most {MAX_PATH_BYTES} bytes")
    longest = max(len(part.encode("utf-8", "surrogatepass")) for part in value.split("/"))
    if longest > MAX_NAME_BYTES:
        raise ValueError(f"holds a folder or file name of {longest} bytes; a name is at most {MAX_NAME_BYTES} bytes")
    return value


class TradingConfig(Section):
    initial_capital_usd: float = Field(100.0, gt=0, le=MAX_USD,
                                       description="starting paper balance, in the portfolio currency")
    max_position_usd: float = Field(10.0, gt=0, le=MAX_USD,
                                    description="largest notional of one position, in the portfolio currency")
    stop_loss_percent: float = Field(
        2.0, gt=0, lt=100, description="stop distance from entry when a signal gives none, % (positive)"
    )
    take_profit_percent: float = Field(
        4.0, gt=0, le=1000, description="take-profit distance from entry when a signal gives none, % (positive)"
    )
    symbols: list[str] = Field(
        default_factory=lambda: ["BTC/USDT", "ETH/USDT"], min_length=1, description="markets to trade, BASE/QUOTE"
    )
    currency: str = Field(
        "", validate_default=True,
        description="the portfolio currency, which capital, limits and P&L are counted in; empty = the symbols' "
                    "one quote. With several quotes set it (currency = \"USDT\") and trade each other quote's pair "
                    "with it (BTC/USDT): its latest close converts"
    )
    auto_execute: bool = Field(True, description="false = signals only: orders are proposed (alert + audit), not sent")

    @field_validator("symbols")
    @classmethod
    def _symbols_look_like_pairs(cls, symbols: list[str]) -> list[str]:
        for symbol in symbols:
            if not re.fullmatch(r"[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?", symbol):
                raise ValueError(f"'{symbol}' is not a BASE/QUOTE symbol such as 'BTC/USDT'")
        twice = sorted({s for s in symbols if symbols.count(s) > 1})
        if twice:
            raise ValueError(f"{', '.join(repr(s) for s in twice)} listed more than once: each symbol once "
                             "(twice would give two signals per cycle for one market)")
        return symbols

    @field_validator("currency")
    @classmethod
    def _one_currency(cls, currency: str, info: ValidationInfo) -> str:
        from gobot_hookspecs.money import portfolio_currency

        if currency and not re.fullmatch(r"[A-Z0-9]{1,20}", currency):
            raise ValueError(f"'{currency}' is not a currency code such as 'USDT' or 'BTC'")
        if info.data.get("symbols"):
            portfolio_currency(info.data["symbols"], currency)  # several quotes, or one that cannot convert: refused
        return currency

    @property
    def portfolio_currency(self) -> str:
        """``currency``, else the one quote of the symbols (``gobot_hookspecs.money``)."""
        from gobot_hookspecs.money import portfolio_currency

        return portfolio_currency(self.symbols, self.currency)


class OrchestratorConfig(Section):
    loop_interval: float = Field(
        900.0, ge=0.01, le=MAX_SECONDS, description="seconds between cycles (simulated in replay)"
    )
    max_iterations: int = Field(50, ge=0, le=10**9, description="cycles per run; 0 = no limit")
    daily_profit_target: float = Field(
        50.0, gt=0, le=MAX_USD,
        description="ends the run when today's P&L reaches +this, portfolio currency (positive)"
    )
    max_daily_loss: float = Field(
        100.0, gt=0, le=MAX_USD,
        description="ends the run when today's P&L reaches -this, portfolio currency (positive)"
    )
    kill_switch_enabled: bool = Field(True, description="honour the kill switch file")
    kill_switch_file: str = Field("", description="path of the kill switch file; empty = <state_dir>/KILL")

    _path = field_validator("kill_switch_file")(classmethod(lambda cls, value: check_path(value)))


class PluginsConfig(Section):
    enable: list[str] = Field(default_factory=list, description="plugins to enable besides the built-in defaults")
    disable: list[str] = Field(default_factory=list, description="plugins to switch off (blocked before import)")


class ServerConfig(Section):
    enabled: bool = Field(False, description="serve health and dashboard endpoints")
    host: str = Field("127.0.0.1", description="address to bind; non-loopback needs GOBOT_DASHBOARD_TOKEN")
    port: int = Field(8765, ge=0, le=65535, description="TCP port; 0 = any free port (printed at start-up)")
    stall_seconds: float = Field(
        0.0, ge=0, le=MAX_SECONDS,
        description="/health turns unhealthy after this long without a completed cycle, seconds; "
                    "0 = 3 × loop_interval, at least 60"
    )
    max_connections: int = Field(
        128, ge=1, le=100_000,
        description="open HTTP connections at most; more wait in the kernel's queue until one closes"
    )
    reserved_fds: int = Field(
        128, ge=0, le=1_000_000,
        description="file descriptors the server always leaves free under the open-files limit for state, archive "
                    "and exchange I/O",
    )
    idle_timeout: float = Field(
        15.0, gt=0, le=3600,
        description="close a connection idle, or with its request headers incomplete, for this long, seconds"
    )
    body_timeout: float = Field(10.0, gt=0, le=3600,
                                description="a request body must have arrived within this long, seconds")


class WatchdogConfig(Section):
    heartbeat_interval: float = Field(
        30.0, gt=0, le=60, description="seconds between the running bot's heartbeat.json writes (at most 60)"
    )
    stale_after: float = Field(
        180.0, gt=0, le=MAX_SECONDS,
        description="`gobot watchdog` alerts when the heartbeat is older than this, seconds"
    )
    check_interval: float = Field(15.0, gt=0, le=86400, description="seconds between two checks of `gobot watchdog`")
    repeat_after: float = Field(
        3600.0, ge=0, le=MAX_SECONDS,
        description="repeat the stale alert this often while the heartbeat stays stale, seconds; 0 = once"
    )

    @field_validator("stale_after")
    @classmethod
    def _longer_than_the_heartbeat(cls, stale_after: float, info: ValidationInfo) -> float:
        heartbeat = info.data.get("heartbeat_interval")
        if heartbeat is not None and stale_after <= heartbeat:
            raise ValueError(f"{stale_after:g} s is not longer than heartbeat_interval ({heartbeat:g} s)")
        return stale_after


#: Metrics an optimizer objective may name (``[optimizer] objective``); the last one is minimised.
OBJECTIVE_METRICS = ("sharpe", "sortino", "calmar", "profit_factor", "win_rate", "expectancy", "return_pct",
                     "max_drawdown_pct")
_OBJECTIVE_TERM = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*\*\s*)?([a-z_]+)\s*$")


def parse_objective(text: str) -> list[tuple[float, str]]:
    """``"sharpe"`` or a weighted sum such as ``"0.5*sharpe + 0.5*calmar"`` -> ``[(weight, metric), ...]``."""
    terms = []
    for part in text.split("+"):
        match = _OBJECTIVE_TERM.match(part)
        if not match or match.group(2) not in OBJECTIVE_METRICS:
            raise ValueError(f"'{text}' is not a metric or a weighted sum of {', '.join(OBJECTIVE_METRICS)} "
                             "(e.g. \"sharpe\" or \"0.5*sharpe + 0.5*calmar\")")
        terms.append((float(match.group(1) or 1.0), match.group(2)))
    return terms


class BacktestConfig(Section):
    data_dir: str = Field("data",
                          description="folder of candle CSV files and markets.json, relative to the config file")
    timeframe: str = Field("5m", description="candle size to test on (a finer file is resampled up)")
    fill: str = Field("next_open",
                      description="next_open: a decision at a close fills at the next open; close: at that close")
    fee_percent: float | None = Field(None, ge=0, lt=100,
                                      description="fee per fill, %; unset = [plugins.paper] fee_percent")
    slippage_percent: float | None = Field(
        None, ge=0, lt=100,
        description="market and stop fills move against you by this, %; unset = [plugins.paper] slippage_percent"
    )
    start_equity_usd: float | None = Field(None, gt=0, le=MAX_USD,
                                           description="starting equity, in the tested symbol's quote currency; "
                                                       "unset = [trading] initial_capital_usd")
    sizing: str = Field("plugins", description="plugins (the sizer plugin, as live), all-in, a percent of equity "
                                               "(\"25%\") or a notional in the quote currency (\"100\")")
    risk: str = Field("plugins",
                      description="plugins: every risk plugin judges each entry, as live; none: no risk checks")
    allow_short: bool = Field(True, description="false: a SHORT signal only closes a long")

    _path = field_validator("data_dir")(classmethod(lambda cls, value: check_path(value)))

    @field_validator("fill")
    @classmethod
    def _fill(cls, value: str) -> str:
        value = value.replace("-", "_")
        if value not in ("next_open", "close"):
            raise ValueError("use next_open or close")
        return value

    @field_validator("risk")
    @classmethod
    def _risk(cls, value: str) -> str:
        if value not in ("plugins", "none"):
            raise ValueError("use plugins or none")
        return value

    @field_validator("sizing")
    @classmethod
    def _sizing(cls, value: str) -> str:
        raw = value.strip().lower()
        if raw not in ("plugins", "all-in", "all_in") and not re.fullmatch(r"\d+(\.\d+)?%?", raw):
            raise ValueError("use plugins, all-in, a percent of equity such as \"25%\" or a notional such as \"100\"")
        return value


class OptimizerConfig(Section):
    strategy: str = Field("", description="strategy to optimise; empty = the only registered one")
    objective: str = Field("sharpe", description="what to maximise: sharpe, sortino, calmar, profit_factor, ... or "
                                                 "\"0.5*sharpe + 0.5*calmar\"")
    objectives: list[str] = Field(
        default_factory=list,
        description="multi-objective instead, e.g. [\"sharpe\", \"max_drawdown_pct\"] (drawdown is minimised)"
    )
    sampler: str = Field("tpe", description="Optuna sampler: tpe, random, or nsga2 (multi-objective)")
    max_iterations: int = Field(50, ge=1, le=10**6,
                                description="trials (candidate parameter sets) per study, counting resumed ones")
    min_trades: int = Field(10, ge=0, le=10**9,
                            description="a candidate needs this many trades in sample and out of sample")
    folds: int = Field(3, ge=1, le=20, description="walk-forward folds: rolling in-sample/out-of-sample window pairs")
    out_of_sample_percent: float = Field(25.0, gt=0, le=100,
                                         description="each out-of-sample window, % of the in-sample window")
    min_oos_ratio: float = Field(
        0.5, ge=0, le=100, description="overfitting guard: out-of-sample / in-sample objective must reach this"
    )
    min_ratio_trades: int = Field(
        30, ge=0, le=10**9, description="a winner on a Sharpe, Sortino or Calmar objective needs this many trades in "
        "sample and out of sample (below it the ratio is shown \"— (n=…)\"); 0 = off")
    min_stability: float = Field(
        0.5, ge=0, le=100, description="lone-spike guard: the objective at ± one step of each parameter, on average, "
        "over the winner's must reach this; 0 = off")
    target_win_rate: float = Field(0.60, ge=0, le=1,
                                   description="design target (out of sample) that ends the loop, 0-1")
    target_profit_factor: float = Field(1.5, ge=0, le=1000,
                                        description="design target (out of sample) that ends the loop")
    target_max_drawdown_pct: float = Field(10.0, gt=0, le=100,
                                           description="design target (out of sample) that ends the loop, %")
    target_trades: int = Field(100, ge=0, le=10**9,
                               description="design target (out of sample) that ends the loop, trades")
    storage: str = Field(
        "", description="Optuna storage URL shared by workers (postgresql+psycopg://..., journal:PATH); "
                        "empty = the study's own journal file in state_dir/optimizer/")
    study: str = Field(
        "", description="study name (resume or share a study by name); empty = from strategy, data and objective")
    jobs: int = Field(1, ge=1, le=1024, description="worker processes on this machine")
    seed: int | None = Field(None, ge=0, le=2**32 - 1,
                             description="sampler seed, for repeatable searches (0 to 4294967295)")
    llm_ideas: bool = Field(False, description="also ask a model (openai SDK) for the next parameter change")
    llm_every: int = Field(5, ge=1, le=10**6, description="ask the model before every n-th trial")
    llm_model: str = Field("gpt-4o-mini", description="model name for LLM ideas")
    llm_base_url: str = Field("", description="OpenAI-compatible base URL; empty = OpenAI (key in OPENAI_API_KEY)")
    scheduled: bool = Field(False, description="gobot start (wall clock) runs the optimizer on the schedule below")
    schedule: str = Field("weekly", description="weekly, daily, or a crontab line such as \"0 3 * * 0\" (UTC)")
    schedule_candles: int = Field(5000, ge=100, le=10**7, description="candles per symbol a scheduled run optimises on")
    auto_apply: bool = Field(False, description="propose a scheduled run's accepted winner as a new strategy version")

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: str) -> str:
        parse_objective(value)
        return value

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in OBJECTIVE_METRICS:
                raise ValueError(f"'{item}' is not one of {', '.join(OBJECTIVE_METRICS)}")
        return value

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, value: str) -> str:
        if value not in ("tpe", "random", "nsga2"):
            raise ValueError("use tpe, random or nsga2")
        return value


class StrategyVersionsConfig(Section):
    new_evidence_trades: int = Field(
        3, ge=1, le=10**6, description="closed trades of a strategy that count as new evidence: a rejected proposal "
        "may be made again, and the active version is judged again, only after this many")
    recheck_failed_cycles: int = Field(
        12, ge=1, le=10**6, description="a failed active version is judged again after this many cycles even "
        "without new trades (stopped, it would close none)")
    on_active_failure: str = Field(
        "keep", description="when the active version fails validation: keep (and alert), revert (to the last "
        "version that passed), or stop (no new positions with it; exits and stops go on)")

    @field_validator("on_active_failure")
    @classmethod
    def _action(cls, value: str) -> str:
        if value not in ("keep", "revert", "stop"):
            raise ValueError("use keep, revert or stop")
        return value


class Settings(Section):
    """The whole core configuration. ``plugin_sections`` holds raw ``[plugins.<name>]`` tables."""

    state_dir: str = Field("gobot_state",
                           description="state, audit log, progress.json and database; relative to the config file")
    trading: TradingConfig = Field(default_factory=TradingConfig)
    orchestrator: OrchestratorConfig = Field(default_factory=OrchestratorConfig)
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    strategy_versions: StrategyVersionsConfig = Field(default_factory=StrategyVersionsConfig)
    strategies: dict[str, dict[str, float]] | None = Field(
        None, description="strategy parameters by strategy, [strategies.<name>] tables; unset = the declared defaults"
    )

    _path = field_validator("state_dir")(classmethod(lambda cls, value: check_path(value)))

    # Not read from the file: where it came from, and the plugin sections (validated later).
    source: str | None = Field(None, exclude=True)
    base_dir: str = Field(".", exclude=True)
    plugin_sections: dict[str, dict[str, Any]] = Field(default_factory=dict, exclude=True)
    # Values from GOBOT_<SECTION>__<KEY> variables: dotted key -> (variable, its text).
    env_sources: dict[str, tuple[str, str]] = Field(default_factory=dict, exclude=True)

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate

    @property
    def state_path(self) -> Path:
        return self.resolve(self.state_dir)

    @property
    def kill_switch_path(self) -> Path:
        name = self.orchestrator.kill_switch_file
        return self.resolve(name) if name else self.state_path / "KILL"

    @property
    def file_label(self) -> str:
        return self.source or "(defaults)"


def find_config_path(flag: str | None) -> Path | None:
    """Precedence: ``--config`` flag, then ``$GOBOT_CONFIG``, then ``./config.toml`` if it exists."""
    if flag:
        return Path(flag)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.exists() else None


def load_settings(flag: str | None = None, environ: Mapping[str, str] | None = None, profile: Any = None,
                  capital: float | None = None) -> Settings:
    """Read and validate the core sections of the config (plugin sections come later).

    Precedence, highest first: a command-line flag (applied by the command), a
    ``GOBOT_<SECTION>__<KEY>`` variable in ``environ`` (default: the process environment), the
    ``profile`` (a ``gobot.profiles.Profile``, ``--profile``: merged over the file's values), the
    config file, the default. ``capital``: the capital the profile's amounts scale to (a sleeve's share)."""
    environ = os.environ if environ is None else environ
    path = find_config_path(flag)
    if path is None:
        if profile is None and not any(_is_override(name) for name in environ):
            return Settings()
        settings = settings_from_dict(_with_profile({}, profile, environ, capital), "(defaults)", environ=environ)
        settings.source = None
        return settings
    return settings_from_dict(_with_profile(read_config(path), profile, environ, capital), str(path),
                              base_dir=str(path.resolve().parent), environ=environ)


def _with_profile(data: dict[str, Any], profile: Any, environ: Mapping[str, str],
                  capital: float | None = None) -> dict[str, Any]:
    """``data`` with ``profile``'s values merged over it, its amounts scaled to the capital the run will have
    (``capital``, else ``GOBOT_TRADING__INITIAL_CAPITAL_USD`` if set, else the file's)."""
    if profile is None:
        return data
    from gobot.profiles import apply_profile, config_capital

    raw = environ.get(env_var_name("trading", "initial_capital_usd"))
    if capital is None and raw is not None:
        capital = config_capital({"trading": {"initial_capital_usd": env_value(raw)}})  # a bad value: the default
    return apply_profile(data, profile, capital)


# -- GOBOT_<SECTION>__<KEY>: settings from the environment ---------------------------------------------


@dataclass(frozen=True)
class EnvOverride:
    """One ``GOBOT_<SECTION>__<KEY>`` variable: its name, the config key it sets and its text."""

    var: str
    path: tuple[str, ...]
    raw: str

    @property
    def key(self) -> str:
        return ".".join(self.path)


def _is_override(name: str) -> bool:
    return name in TOP_LEVEL_ENV or (name.startswith(ENV_PREFIX) and ENV_SEPARATOR in name[len(ENV_PREFIX):])


def _core_sections() -> dict[str, type[BaseModel]]:
    return {name: field.annotation for name, field in Settings.model_fields.items()
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)}


def env_var_name(*path: str) -> str:
    """The variable that sets a config key: ``("trading", "symbols")`` -> ``GOBOT_TRADING__SYMBOLS``."""
    for name, key in TOP_LEVEL_ENV.items():
        if path == (key,):
            return name
    return ENV_PREFIX + ENV_SEPARATOR.join(part.upper() for part in path)


def env_overrides(environ: Mapping[str, str]) -> tuple[list[EnvOverride], list[ConfigProblem]]:
    """Every ``GOBOT_<SECTION>__<KEY>``, ``GOBOT_PLUGINS__<NAME>__<KEY>`` and
    ``GOBOT_STRATEGIES__<NAME>__<PARAM>`` variable in ``environ`` (and ``GOBOT_STATE_DIR``), and
    the problems with their names: an unknown section or key (with the closest valid variable), a
    name of the wrong shape, a key named like a secret. Other ``GOBOT_`` variables (``GOBOT_CONFIG``,
    ``GOBOT_DASHBOARD_TOKEN``, ...) have no ``__`` and are not overrides."""
    overrides: list[EnvOverride] = []
    problems: list[ConfigProblem] = []
    sections = _core_sections()
    secrets_fix = f"secrets are read only from their own variables ({', '.join(SECRET_ENV_VARS)}); unset this one"

    def refuse(var: str, message: str, fix: str) -> None:
        problems.append(ConfigProblem(ENV_LABEL, _shown(var), message, fix))

    for var in sorted(name for name in environ if _is_override(name)):
        raw = environ[var]
        if var in TOP_LEVEL_ENV:
            if not raw.strip():  # e.g. a compose file's ${STATE_DIR} left unset: not "the config file's folder"
                refuse(var, "is empty", "give the folder (an absolute path in a container), or unset it")
                continue
            overrides.append(EnvOverride(var, (TOP_LEVEL_ENV[var],), raw))
            continue
        parts = [part.lower() for part in var[len(ENV_PREFIX):].split(ENV_SEPARATOR)]
        if any(not part for part in parts):
            refuse(var, "an empty name between the '__' separators",
                   "write GOBOT_<SECTION>__<KEY>, or GOBOT_PLUGINS__<NAME>__<KEY> for a plugin's setting")
            continue
        if _SECRET_KEY_PATTERN.search(parts[-1]):
            refuse(var, "a secret is not read from a GOBOT_<SECTION>__<KEY> variable, "
                   "as it is not read from the config file", secrets_fix)
            continue
        section, rest = parts[0], parts[1:]
        if section == "plugins":
            if len(rest) == 1 and rest[0] in PluginsConfig.model_fields:
                overrides.append(EnvOverride(var, tuple(parts), raw))
            elif len(rest) == 2:
                overrides.append(EnvOverride(var, tuple(parts), raw))
            else:
                close = (difflib.get_close_matches(rest[0], sorted(PluginsConfig.model_fields), n=1)
                         if len(rest) == 1 else [])
                hint = f"did you mean {env_var_name('plugins', close[0])}? " if close else ""
                refuse(var, "not a [plugins] key or a plugin's setting",
                       f"{hint}use GOBOT_PLUGINS__ENABLE, GOBOT_PLUGINS__DISABLE, "
                       "or GOBOT_PLUGINS__<NAME>__<KEY> for a plugin's setting")
        elif section == "strategies":
            if len(rest) == 2:
                overrides.append(EnvOverride(var, tuple(parts), raw))
            else:
                refuse(var, "a strategy parameter needs the strategy and the parameter",
                       "write GOBOT_STRATEGIES__<STRATEGY>__<PARAM>")
        elif section in sections:
            model = sections[section]
            valid = [key for key in model.model_fields if not model.model_fields[key].exclude]
            if len(rest) != 1:
                refuse(var, f"[{section}] keys take one name after the section",
                       f"write {env_var_name(section, '<KEY>')}; valid keys: {', '.join(sorted(valid))}")
            elif rest[0] not in valid:
                close = difflib.get_close_matches(rest[0], valid, n=1)
                hint = f"did you mean {env_var_name(section, close[0])}? " if close else ""
                refuse(var, f"[{section}] has no key '{rest[0]}'",
                       f"{hint}unset it; valid keys here: {', '.join(sorted(valid))}")
            else:
                overrides.append(EnvOverride(var, tuple(parts), raw))
        else:
            known = sorted({*sections, "strategies"})
            close = difflib.get_close_matches(section, known, n=1)
            hint = f"did you mean {env_var_name(close[0], *rest)}? " if close else ""
            refuse(var, f"no config section '{section}'",
                   f"{hint}sections: {', '.join(known)} (GOBOT_<SECTION>__<KEY>); unset it")
    return overrides, problems


def env_value(raw: str, annotation: Any = None) -> Any:
    """The value of a variable's text: a TOML literal where it is one (``25``, ``true``,
    ``["BTC/USDT"]``, ``"quoted"``), else the text itself. For a text setting (``str``, a choice of
    words) the text is taken as it is, so ``GOBOT_OPTIMIZER__STUDY=2026`` is the study "2026"."""
    if "\n" in raw or "\r" in raw:
        return raw  # one TOML value per variable: never a second key smuggled in on a new line
    if annotation is not None and _wants_text(annotation) and not raw.startswith(('"', "'")):
        return raw
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def _wants_text(annotation: Any) -> bool:
    if annotation is str:
        return True
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return all(isinstance(choice, str) for choice in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return bool(args) and all(_wants_text(arg) for arg in args)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return all(isinstance(member.value, str) for member in annotation)
    return False


def _core_annotation(path: tuple[str, ...]) -> Any:
    if len(path) == 1:
        return Settings.model_fields[path[0]].annotation
    section = _core_sections().get(path[0])
    field = section.model_fields.get(path[1]) if section is not None else None
    return field.annotation if field is not None else None


def _core_key_annotation(key: str) -> Any:
    """The type of a core key (``trading.symbols``, ``state_dir``); None for a plugin's or a strategy's."""
    path = tuple(key.split("."))
    return _core_annotation(path) if len(path) <= 2 and path[0] != "strategies" else None


def apply_env(data: dict[str, Any], overrides: list[EnvOverride]) -> tuple[dict[str, Any], list[EnvOverride]]:
    """``data`` (a parsed config file) with each override's value in place: the variable wins over
    the file. Core values are read for their field's type; a plugin's setting, whose model is not
    known yet, as a TOML literal (``validate_plugin_section`` reads it again for its type). A section
    the file writes as a plain value is left to its own error. Returns the data and the overrides
    applied."""
    data = dict(data)
    applied = []
    for override in overrides:
        path = override.path
        if len(path) == 1:
            data[path[0]] = env_value(override.raw, _core_annotation(path))
            applied.append(override)
            continue
        table = data.get(path[0], {})
        if not isinstance(table, dict):
            continue
        table = data[path[0]] = dict(table)
        if len(path) == 3:
            inner = table.get(path[1], {})
            if not isinstance(inner, dict):
                continue
            inner = table[path[1]] = dict(inner)
            inner[path[2]] = env_value(override.raw, float if path[0] == "strategies" else None)
        elif path[0] == "plugins":
            table[path[1]] = env_value(override.raw)
        else:
            table[path[1]] = env_value(override.raw, _core_annotation(path))
        applied.append(override)
    return data, applied


def _from_env(problem: ConfigProblem, label: str, sources: Mapping[str, tuple[str, str]],
              annotation_of: Any = None) -> ConfigProblem:
    """A problem with a value that came from a variable names the variable, not ``file:key``."""
    if problem.file != label:
        return problem
    for key, (var, raw) in sources.items():
        if problem.key == key or problem.key.startswith(key + "."):
            fix = problem.fix
            annotation = annotation_of(key) if annotation_of else None
            if isinstance(env_value(raw), str) and annotation is not None and not _wants_text(annotation):
                fix = (f"{fix}; the value is read as TOML: a number, true or false, "
                       "a list such as '[\"a\", \"b\"]'").lstrip("; ")
            fix = (fix.replace("remove this key", "unset this variable")
                   .replace("remove it from here", "unset this variable"))
            return ConfigProblem(ENV_LABEL, var, problem.message, fix)
    return problem


def read_config(path: Path) -> dict[str, Any]:
    """The parsed TOML of ``path``; a missing, unreadable, malformed or not-a-file config is a ConfigError.

    Only a regular file is read (``/dev/zero`` or a FIFO would never end), and at most
    ``MAX_CONFIG_BYTES`` of it."""
    label = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(label, "(file)", "no such file",
                                         "create it with `gobot init` or pass --config PATH")]) from None
    except (OSError, ValueError) as exc:
        raise ConfigError([ConfigProblem(label, "(file)", f"cannot read: {_reason(exc)}",
                                         "check the path and permissions")]) from None
    if not stat.S_ISREG(info.st_mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise ConfigError([ConfigProblem(label, "(file)", f"{kind}, not a config file",
                                         "pass the path of a TOML file (`gobot init` writes one) "
                                         "with --config or GOBOT_CONFIG")])
    if info.st_size > MAX_CONFIG_BYTES:
        raise ConfigError([ConfigProblem(label, "(file)",
                                         f"is {info.st_size} bytes; a config file is at most {MAX_CONFIG_BYTES} bytes",
                                         "pass the path of the TOML config file, not another file")])
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([ConfigProblem(label, "(file)", f"cannot read: {_reason(exc)}",
                                         "check the path and permissions")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([ConfigProblem(label, "(file)",
                                         f"is more than {MAX_CONFIG_BYTES} bytes; a config file is not",
                                         "pass the path of the TOML config file, not another file")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([ConfigProblem(label, f"(line {line})", f"not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                                         "save the file as UTF-8")]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(label, "(syntax)", str(exc), "fix the TOML syntax at that line")]) from None


_FILE_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
               stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket"}


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def settings_from_dict(data: dict[str, Any], label: str = "config.toml", base_dir: str = ".",
                       environ: Mapping[str, str] | None = None) -> Settings:
    """Validate a parsed config mapping; every problem is reported, not just the first.

    Besides the core models: no value anywhere may hold a NUL character, a plugin section's
    numbers must be finite, and no section — a disabled plugin's, an unknown one's — may hold a
    secret (a key named like one, or a value that is a credential).

    With ``environ``, its ``GOBOT_<SECTION>__<KEY>`` variables override the file's values first
    and are validated the same way; a problem with one names the variable, ``(environment):VAR``."""
    overrides, problems = env_overrides(environ) if environ is not None else ([], [])
    data, applied = apply_env(dict(data), overrides)
    sources = {override.key: (override.var, override.raw) for override in applied}
    problems += _hostile_values(data, label)
    core_plugins, sections, plugin_problems = split_plugins(data.get("plugins", {}), label)
    problems += plugin_problems
    if isinstance(data.get("plugins", {}), dict):
        data["plugins"] = core_plugins

    def located(found: list[ConfigProblem]) -> list[ConfigProblem]:
        return unique([_from_env(problem, label, sources, _core_key_annotation) for problem in found])

    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(located(problems + problems_from_validation(exc, Settings, label))) from None
    if problems:
        raise ConfigError(located(problems))
    settings.source = label
    settings.base_dir = base_dir
    settings.plugin_sections = sections
    settings.env_sources = sources
    return settings


def split_plugins(plugins: Any, label: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[ConfigProblem]]:
    """``[plugins]``: its own keys (enable, disable), the ``[plugins.<name>]`` sections, and the problems."""
    core: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    problems: list[ConfigProblem] = []
    if not isinstance(plugins, dict):
        return core, sections, problems  # the core model reports it
    for key, value in plugins.items():
        if key in PluginsConfig.model_fields:
            core[key] = value
        elif isinstance(value, dict):
            sections[key] = value
        else:
            problems.append(ConfigProblem(label, f"plugins.{_shown(key)}",
                                          f"expected a [plugins.{_shown(key)}] table "
                                          f"or one of {sorted(PluginsConfig.model_fields)}",
                                          f"write its settings under a [plugins.{_shown(key)}] heading"))
    return core, sections, problems


def unique(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    """One problem per key (the first): a key refused by two checks is reported once."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for problem in problems:
        if (problem.file, problem.key) not in seen:
            seen.add((problem.file, problem.key))
            kept.append(problem)
    return kept


def _shown(key: Any) -> str:
    """A key as it can be printed on one line (control characters escaped)."""
    text = str(key)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _hostile_values(data: dict[str, Any], label: str) -> list[ConfigProblem]:
    """NUL characters anywhere; non-finite numbers and secrets in plugin sections; credentials anywhere."""
    problems: list[ConfigProblem] = []
    secrets_fix = f"secrets are read only from the environment ({', '.join(SECRET_ENV_VARS)}); remove this key"

    def walk(value: Any, path: list[str], in_plugin: bool) -> None:
        key = ".".join(path) or "(top level)"
        if isinstance(value, dict):
            for name, item in value.items():
                shown = _shown(name)
                if isinstance(name, str) and "\x00" in name:
                    problems.append(ConfigProblem(label, ".".join(path + [shown]), "the key contains a NUL character",
                                                  "remove it"))
                    continue
                if in_plugin and len(path) >= 2 and isinstance(name, str) and _SECRET_KEY_PATTERN.search(name):
                    problems.append(ConfigProblem(label, ".".join(path + [shown]),
                                                  "a secret does not belong in the config file", secrets_fix))
                    continue
                walk(item, path + [shown], in_plugin or (path == ["plugins"] and isinstance(item, dict)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, path + [str(index)], in_plugin)
        elif isinstance(value, str):
            if "\x00" in value:
                problems.append(ConfigProblem(label, key, "contains a NUL character", "remove it"))
                return
            for pattern, what in _CREDENTIAL_VALUES:
                if pattern.search(value):
                    problems.append(ConfigProblem(label, key,
                                                  f"holds {what}, a credential; secrets never go in the config file",
                                                  _credential_fix(path)))
                    return
        elif in_plugin and isinstance(value, float) and not math.isfinite(value):
            problems.append(ConfigProblem(label, key, f"{value} is not a finite number", "write a finite number"))

    walk(data, [], False)
    return problems


def _credential_fix(path: list[str]) -> str:
    if path[:2] == ["plugins", "webhook"]:
        return "set GOBOT_WEBHOOK_URL in the environment and remove this key"
    if path[:2] == ["plugins", "telegram"]:
        return "set TELEGRAM_TOKEN in the environment and remove it from here"
    return f"put it in the environment ({', '.join(SECRET_ENV_VARS)}) and remove it from here"


def runtime_problems(settings: Settings) -> list[ConfigProblem]:
    """What ``gobot start`` needs beyond valid values, checked before anything runs (and by ``gobot
    config check``): a state folder it can create or use — owner-only, writable — and secrets in the
    environment long enough to be masked safely. Leaves no trace."""
    problems = []
    reason = unusable_folder(settings.state_path)
    if reason:
        problems.append(_from_env(ConfigProblem(settings.file_label, "state_dir", f"{settings.state_path}: {reason}",
                                                "use a folder you own and can write "
                                                "(a relative path is relative to the config file)"),
                                  settings.file_label, settings.env_sources))
    return problems + secret_problems()


def located(settings: Settings, problems: list[ConfigProblem]) -> list[ConfigProblem]:
    """``problems`` with each one about a value from a ``GOBOT_..`` variable naming the variable."""
    return [_from_env(problem, settings.file_label, settings.env_sources, _core_key_annotation) for problem in problems]


def env_report(settings: Settings, plugin_configs: Mapping[str, BaseModel] | None = None) -> list[str]:
    """One line per value taken from the environment: ``VAR: key = value (was: file value | default)``."""
    lines = []
    for key, (var, raw) in sorted(settings.env_sources.items(), key=lambda item: item[1][0]):
        path = key.split(".")
        value: Any = raw
        try:
            if path[0] == "plugins" and len(path) == 3:
                config = (plugin_configs or {}).get(path[1])
                value = getattr(config, path[2]) if config is not None else env_value(raw)
            elif path[0] == "strategies":
                value = (settings.strategies or {}).get(path[1], {}).get(path[2], env_value(raw))
            else:
                value = settings
                for part in path:
                    value = getattr(value, part)
        except AttributeError:
            value = env_value(raw)
        lines.append(f"{var}: {key} = {_toml_value(value)}")
    return lines


def check_runnable(settings: Settings) -> None:
    """Raise ConfigError with every ``runtime_problems`` problem (``gobot start`` calls this)."""
    problems = runtime_problems(settings)
    if problems:
        raise ConfigError(problems)


def unusable_folder(path: Path) -> str | None:
    """Why gobot could not keep its files in ``path`` — create it, make it owner-only (``chmod 700``),
    write a file in it — or None. Whatever the probe creates is removed again."""
    created: list[Path] = []
    try:
        target = Path(os.path.abspath(path))
        missing, existing = [], target
        while not os.path.lexists(existing):
            missing.append(existing)
            existing = existing.parent
        if not existing.is_dir():
            return f"{existing} is {'a file' if existing.is_file() else 'not a folder'}"
        step = "create it"
        try:
            for folder in reversed(missing):
                folder.mkdir()
                created.append(folder)
            step = "make it owner-only (chmod)"
            os.chmod(target, 0o700 if created else stat.S_IMODE(target.stat().st_mode))
            step = "write a file in it"
            fd, probe = tempfile.mkstemp(dir=target, prefix=".gobot-check-")
            os.close(fd)
            os.unlink(probe)
        except (OSError, ValueError) as exc:
            return f"cannot {step}: {_reason(exc)}"
    except (OSError, ValueError) as exc:
        return f"cannot be used: {_reason(exc)}"
    finally:
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass
    return None


_MISSING = object()


def validate_plugin_section(settings: Settings, name: str, model: type[BaseModel]) -> BaseModel:
    """Validate ``[plugins.<name>]`` against the plugin's model; raise ConfigError naming each key
    (or the ``GOBOT_PLUGINS__<NAME>__<KEY>`` variable a value came from)."""
    section = dict(settings.plugin_sections.get(name, {}))
    prefix = f"plugins.{name}."
    # The variables' values still in place: a command's own flag may have replaced one since (it wins).
    sources = {key: (var, raw) for key, (var, raw) in settings.env_sources.items()
               if key.startswith(prefix) and section.get(key[len(prefix):], _MISSING) == env_value(raw)}

    def annotation_of(key: str) -> Any:
        field = model.model_fields.get(key[len(prefix):])
        return field.annotation if field is not None else None

    for key, (_var, raw) in sources.items():  # read again for the type the plugin declares
        section[key[len(prefix):]] = env_value(raw, annotation_of(key))
    try:
        return model.model_validate(section)
    except ValidationError as exc:
        problems = problems_from_validation(exc, model, settings.file_label, prefix=f"plugins.{name}")
        raise ConfigError(unique([_from_env(problem, settings.file_label, sources, annotation_of)
                                  for problem in problems])) from None


def problems_from_validation(
    exc: ValidationError, model: type[BaseModel], label: str, prefix: str = ""
) -> list[ConfigProblem]:
    """Turn pydantic's errors into ``file:key: message — fix`` problems."""
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = ".".join(([prefix] if prefix else []) + loc) or prefix or "(top level)"
        owner, field_name = _owner_of(model, error["loc"])
        if error["type"] == "extra_forbidden":
            problems.append(ConfigProblem(label, key, "unknown key", _unknown_key_fix(owner, field_name, model)))
        elif error["type"] == "model_type":  # e.g. ``trading = 3``: a section written as a value
            problems.append(ConfigProblem(label, key, f"expected a [{key}] table",
                                          f"write its keys under a [{key}] heading"))
        else:
            # A validator's own message ("'btc' is not a BASE/QUOTE symbol") without pydantic's "Value error, ".
            message = (str(error["ctx"]["error"]) if error["type"] == "value_error" and "error" in error.get("ctx", {})
                       else error["msg"])
            problems.append(ConfigProblem(label, key, message, _field_fix(owner, field_name)))
    return problems


def _owner_of(model: type[BaseModel], loc: tuple) -> tuple[type[BaseModel] | None, str]:
    """Walk nested models along ``loc``: the model that owns the last named field, and that name."""
    owner: type[BaseModel] | None = model
    current: type[BaseModel] | None = model
    name = ""
    for part in loc:
        if not isinstance(part, str):
            continue
        if current is None:
            break
        owner, name = current, part
        annotation = getattr(current.model_fields.get(part), "annotation", None)
        current = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return owner, name


def did_you_mean(name: str, choices: Any) -> str:
    """``"did you mean 'archiver'? "`` for the closest of ``choices`` (difflib), or ``""``."""
    close = difflib.get_close_matches(str(name), sorted(choices), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def _unknown_key_fix(owner: type[BaseModel] | None, name: str, root: type[BaseModel] | None = None) -> str:
    if _SECRET_KEY_PATTERN.search(name):
        env = ", ".join(SECRET_ENV_VARS)
        return f"secrets are read only from the environment ({env}); remove this key"
    valid = sorted(owner.model_fields) if owner else []
    valid = [v for v in valid if not (owner and owner.model_fields[v].exclude)]
    close = difflib.get_close_matches(name, valid, n=1)
    section = _section_with_key(root, name) if root is not owner and not close else None
    if section:
        return f"move it to [{section}]"
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}remove it; valid keys here: {', '.join(valid)}" if valid else f"{hint}remove it"


def _section_with_key(root: type[BaseModel] | None, name: str) -> str | None:
    """The section of ``root`` that has a key ``name`` (``loop_interval`` written under [trading])."""
    for section, field in (root.model_fields if root else {}).items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and name in annotation.model_fields:
            return section
    return None


def _field_fix(owner: type[BaseModel] | None, name: str) -> str:
    field = owner.model_fields.get(name) if owner else None
    if field is None:
        return ""
    default = field.get_default(call_default_factory=True)
    text = field.description or ""
    if default not in (None, ""):
        text = f"{text}; default {_toml_value(default)}" if text else f"default {_toml_value(default)}"
    return text


def _toml_value(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, e.g. a plugin's price table by model name
        keys = (k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else f'"{k}"' for k in value)
        return ("{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in zip(keys, value.values())) + " }"
                if value else "{}")
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) >= 1 else str(value)
    return str(value)


def commented_toml(model: type[BaseModel], heading: str | None, values: BaseModel | None = None,
                   notes: Mapping[str, str] | None = None) -> str:
    """A TOML section with each key's unit and meaning as a comment (``gobot init`` writes these);
    ``notes`` adds a second comment line to some keys (``gobot init --profile``: why the profile sets it)."""
    lines = [f"[{heading}]"] if heading else []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            continue
        value = getattr(values, name) if values is not None else field.get_default(call_default_factory=True)
        if field.description:
            lines.append(f"# {field.description}")
        if notes and name in notes:
            lines.append(f"# {notes[name]}")
        # TOML has no null: an unset optional key is shown commented out.
        lines.append(f"# {name} =" if value is None else f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def load_plugin_configs(settings: Settings, hooks: Any) -> dict[str, BaseModel]:
    """Validate every enabled plugin's ``[plugins.<name>]`` section; report all problems at once."""
    configs, problems = {}, []
    for plugin, model in hooks.collect_sync("gobot_config_model"):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise PluginError(plugin, "gobot_config_model must return a pydantic BaseModel subclass",
                              hook="gobot_config_model")
        try:
            configs[plugin] = validate_plugin_section(settings, plugin, model)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return configs
