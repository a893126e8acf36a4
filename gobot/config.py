"""config.toml: the core settings models, loading with precedence, and errors as ``file:key: message — fix``.

Every plugin's settings live in ``[plugins.<name>]`` and are validated against the model the
plugin declares (``gobot_config_model``). Secrets never live here: only in the environment.
"""

from __future__ import annotations

import difflib
import enum
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from .errors import ConfigError, ConfigProblem, PluginError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_CONFIG_NAME = "config.toml"
CONFIG_ENV = "GOBOT_CONFIG"

#: Environment variables that hold secrets. They are read from the environment only and are
#: masked in logs, alerts, state and the audit log (``gobot.secrets``). A chat id is not a secret.
SECRET_ENV_VARS = (
    "BINANCE_API_KEY",
    "BINANCE_API_SECRET",
    "OPENAI_API_KEY",
    "TELEGRAM_TOKEN",
    "GOBOT_DASHBOARD_TOKEN",
    "GOBOT_WEBHOOK_URL",
)
_SECRET_KEY_PATTERN = re.compile(r"(api_?key|secret|token|password|passphrase)", re.IGNORECASE)


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TradingConfig(Section):
    initial_capital_usd: float = Field(100.0, gt=0, description="starting paper balance, USD")
    max_position_usd: float = Field(10.0, gt=0, description="largest notional of one position, USD")
    stop_loss_percent: float = Field(
        2.0, gt=0, lt=100, description="stop distance from entry when a signal gives none, % (positive)"
    )
    take_profit_percent: float = Field(
        4.0, gt=0, description="take-profit distance from entry when a signal gives none, % (positive)"
    )
    symbols: list[str] = Field(
        default_factory=lambda: ["BTC/USDT", "ETH/USDT"], min_length=1, description="markets to trade, BASE/QUOTE"
    )
    auto_execute: bool = Field(True, description="false = signals only: orders are proposed (alert + audit), not sent")

    @field_validator("symbols")
    @classmethod
    def _symbols_look_like_pairs(cls, symbols: list[str]) -> list[str]:
        for symbol in symbols:
            if not re.fullmatch(r"[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?", symbol):
                raise ValueError(f"'{symbol}' is not a BASE/QUOTE symbol such as 'BTC/USDT'")
        return symbols


class OrchestratorConfig(Section):
    loop_interval: float = Field(900.0, gt=0, description="seconds between cycles (simulated in replay)")
    max_iterations: int = Field(50, ge=0, description="cycles per run; 0 = no limit")
    daily_profit_target: float = Field(
        50.0, gt=0, description="ends the run when today's P&L reaches +this, USD (positive)"
    )
    max_daily_loss: float = Field(100.0, gt=0, description="ends the run when today's P&L reaches -this, USD (positive)")
    kill_switch_enabled: bool = Field(True, description="honour the kill switch file")
    kill_switch_file: str = Field("", description="path of the kill switch file; empty = <state_dir>/KILL")


class PluginsConfig(Section):
    enable: list[str] = Field(default_factory=list, description="plugins to enable besides the built-in defaults")
    disable: list[str] = Field(default_factory=list, description="plugins to switch off (blocked before import)")


class ServerConfig(Section):
    enabled: bool = Field(False, description="serve health and dashboard endpoints")
    host: str = Field("127.0.0.1", description="address to bind; non-loopback needs GOBOT_DASHBOARD_TOKEN")
    port: int = Field(8765, ge=0, le=65535, description="TCP port; 0 = any free port (printed at start-up)")
    stall_seconds: float = Field(
        0.0, ge=0, description="/health turns unhealthy after this long without a completed cycle, seconds; 0 = 3 × loop_interval, at least 60"
    )


class WatchdogConfig(Section):
    heartbeat_interval: float = Field(
        30.0, gt=0, le=60, description="seconds between the running bot's heartbeat.json writes (at most 60)"
    )
    stale_after: float = Field(
        180.0, gt=0, description="`gobot watchdog` alerts when the heartbeat is older than this, seconds"
    )
    check_interval: float = Field(15.0, gt=0, description="seconds between two checks of `gobot watchdog`")
    repeat_after: float = Field(
        3600.0, ge=0, description="repeat the stale alert this often while the heartbeat stays stale, seconds; 0 = once"
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
    data_dir: str = Field("data", description="folder of candle CSV files and markets.json, relative to the config file")
    timeframe: str = Field("5m", description="candle size to test on (a finer file is resampled up)")
    fill: str = Field("next_open", description="next_open: a decision at a close fills at the next open; close: at that close")
    fee_percent: float | None = Field(None, ge=0, lt=100, description="fee per fill, %; unset = [plugins.paper] fee_percent")
    slippage_percent: float | None = Field(
        None, ge=0, lt=100, description="market and stop fills move against you by this, %; unset = [plugins.paper] slippage_percent"
    )
    start_equity_usd: float | None = Field(None, gt=0, description="starting equity, USD; unset = [trading] initial_capital_usd")
    sizing: str = Field("plugins", description="plugins (the sizer plugin, as live), all-in, a percent of equity (\"25%\") or USD (\"100\")")
    risk: str = Field("plugins", description="plugins: every risk plugin judges each entry, as live; none: no risk checks")
    allow_short: bool = Field(True, description="false: a SHORT signal only closes a long")

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
    objective: str = Field("sharpe", description="what to maximise: sharpe, sortino, calmar, profit_factor, ... or \"0.5*sharpe + 0.5*calmar\"")
    objectives: list[str] = Field(
        default_factory=list, description="multi-objective instead, e.g. [\"sharpe\", \"max_drawdown_pct\"] (drawdown is minimised)"
    )
    sampler: str = Field("tpe", description="Optuna sampler: tpe, random, or nsga2 (multi-objective)")
    max_iterations: int = Field(50, ge=1, description="trials (candidate parameter sets) per study, counting resumed ones")
    min_trades: int = Field(10, ge=0, description="a candidate needs this many trades in sample and out of sample")
    folds: int = Field(3, ge=1, le=20, description="walk-forward folds: rolling in-sample/out-of-sample window pairs")
    out_of_sample_percent: float = Field(25.0, gt=0, le=100, description="each out-of-sample window, % of the in-sample window")
    min_oos_ratio: float = Field(
        0.5, ge=0, description="overfitting guard: out-of-sample / in-sample objective must reach this"
    )
    target_win_rate: float = Field(0.60, ge=0, le=1, description="design target (out of sample) that ends the loop, 0-1")
    target_profit_factor: float = Field(1.5, ge=0, description="design target (out of sample) that ends the loop")
    target_max_drawdown_pct: float = Field(10.0, gt=0, description="design target (out of sample) that ends the loop, %")
    target_trades: int = Field(100, ge=0, description="design target (out of sample) that ends the loop, trades")
    storage: str = Field("", description="Optuna storage URL shared by workers (postgresql+psycopg://...); empty = sqlite in state_dir")
    study: str = Field("", description="study name (resume or share a study by name); empty = from strategy, data and objective")
    jobs: int = Field(1, ge=1, description="worker processes on this machine")
    seed: int | None = Field(None, description="sampler seed, for repeatable searches")
    llm_ideas: bool = Field(False, description="also ask a model (openai SDK) for the next parameter change")
    llm_every: int = Field(5, ge=1, description="ask the model before every n-th trial")
    llm_model: str = Field("gpt-4o-mini", description="model name for LLM ideas")
    llm_base_url: str = Field("", description="OpenAI-compatible base URL; empty = OpenAI (key in OPENAI_API_KEY)")
    scheduled: bool = Field(False, description="gobot start (wall clock) runs the optimizer on the schedule below")
    schedule: str = Field("weekly", description="weekly, daily, or a crontab line such as \"0 3 * * 0\" (UTC)")
    schedule_candles: int = Field(5000, ge=100, description="candles per symbol a scheduled run optimises on")
    auto_apply: bool = Field(False, description="apply a scheduled run's accepted winner as a new strategy version")

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


class Settings(Section):
    """The whole core configuration. ``plugin_sections`` holds raw ``[plugins.<name>]`` tables."""

    state_dir: str = Field("gobot_state", description="state, audit log, progress.json and database; relative to the config file")
    trading: TradingConfig = Field(default_factory=TradingConfig)
    orchestrator: OrchestratorConfig = Field(default_factory=OrchestratorConfig)
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    strategies: dict[str, dict[str, float]] | None = Field(
        None, description="strategy parameters by strategy, [strategies.<name>] tables; unset = the declared defaults"
    )

    # Not read from the file: where it came from, and the plugin sections (validated later).
    source: str | None = Field(None, exclude=True)
    base_dir: str = Field(".", exclude=True)
    plugin_sections: dict[str, dict[str, Any]] = Field(default_factory=dict, exclude=True)

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


def load_settings(flag: str | None = None) -> Settings:
    """Read and validate the core sections of the config (plugin sections come later)."""
    path = find_config_path(flag)
    if path is None:
        return Settings()
    return settings_from_dict(read_config(path), str(path), base_dir=str(path.resolve().parent))


def read_config(path: Path) -> dict[str, Any]:
    """The parsed TOML of ``path``; a missing, unreadable or malformed file is a ConfigError."""
    label = str(path)
    if not path.exists():
        raise ConfigError([ConfigProblem(label, "(file)", "no such file", "create it with `gobot init` or pass --config PATH")])
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(label, "(syntax)", str(exc), "fix the TOML syntax at that line")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(label, "(file)", f"cannot read: {exc}", "check the path and permissions")]) from None


def settings_from_dict(data: dict[str, Any], label: str = "config.toml", base_dir: str = ".") -> Settings:
    """Validate a parsed config mapping; every problem is reported, not just the first."""
    data = dict(data)
    plugins = data.get("plugins", {})
    problems: list[ConfigProblem] = []
    sections: dict[str, dict[str, Any]] = {}
    if isinstance(plugins, dict):
        core_plugins = {}
        for key, value in plugins.items():
            if key in PluginsConfig.model_fields:
                core_plugins[key] = value
            elif isinstance(value, dict):
                sections[key] = value
            else:
                problems.append(
                    ConfigProblem(
                        label,
                        f"plugins.{key}",
                        f"expected a [plugins.{key}] table or one of {sorted(PluginsConfig.model_fields)}",
                        f"write its settings under a [plugins.{key}] heading",
                    )
                )
        data["plugins"] = core_plugins
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, Settings, label))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    settings.source = label
    settings.base_dir = base_dir
    settings.plugin_sections = sections
    return settings


def validate_plugin_section(settings: Settings, name: str, model: type[BaseModel]) -> BaseModel:
    """Validate ``[plugins.<name>]`` against the plugin's model; raise ConfigError naming each key."""
    try:
        return model.model_validate(settings.plugin_sections.get(name, {}))
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(exc, model, settings.file_label, prefix=f"plugins.{name}")) from None


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
            problems.append(ConfigProblem(label, key, f"expected a [{key}] table", f"write its keys under a [{key}] heading"))
        else:
            # A validator's own message ("'btc' is not a BASE/QUOTE symbol") without pydantic's "Value error, ".
            message = str(error["ctx"]["error"]) if error["type"] == "value_error" and "error" in error.get("ctx", {}) else error["msg"]
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
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in zip(keys, value.values())) + " }" if value else "{}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) >= 1 else str(value)
    return str(value)


def commented_toml(model: type[BaseModel], heading: str | None, values: BaseModel | None = None) -> str:
    """A TOML section with each key's unit and meaning as a comment (``gobot init`` writes these)."""
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
        # TOML has no null: an unset optional key is shown commented out.
        lines.append(f"# {name} =" if value is None else f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def load_plugin_configs(settings: Settings, hooks: Any) -> dict[str, BaseModel]:
    """Validate every enabled plugin's ``[plugins.<name>]`` section; report all problems at once."""
    configs, problems = {}, []
    for plugin, model in hooks.collect_sync("gobot_config_model"):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise PluginError(plugin, "gobot_config_model must return a pydantic BaseModel subclass", hook="gobot_config_model")
        try:
            configs[plugin] = validate_plugin_section(settings, plugin, model)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return configs
