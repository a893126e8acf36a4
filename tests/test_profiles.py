"""Strategy profiles (conservative, aggressive, scalping): each one, applied over the bundled config.toml,
validates like a file, gives a reason for every value, runs on paper, and reads the same in the CLI and in
docs/risk.md."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot.config import load_plugin_configs, read_config, settings_from_dict
from gobot.host.hook_caller import HookCaller
from gobot.host.plugin_manager import build_plugin_set
from gobot.host.strategy_params import configured_params
from gobot.profiles import (
    CAPITAL_KEYS,
    PAPER_FEE_PERCENT,
    PAPER_SLIPPAGE_PERCENT,
    PROFILES,
    apply_profile,
    get_profile,
    profiles_markdown,
)
from gobot_hookspecs.candles import TIMEFRAMES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from gobot_plugins.sma_cross.strategy import SmaCrossStrategy
from gobot_plugins.sma_rsi.strategy import SmaRsiStrategy

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = {"sma_rsi": SmaRsiStrategy, "sma_cross": SmaCrossStrategy}
BUNDLED = read_config(ROOT / "config.toml")
NAMES = list(PROFILES)


def profile_settings(name: str, tmp_path: Path, data_dir: Path | None = None, capital: float | None = None):
    """The bundled config.toml with the profile over it, its state in ``tmp_path`` (and candles in ``data_dir``)."""
    data = json.loads(json.dumps(BUNDLED))  # a deep copy
    data["state_dir"] = str(tmp_path / "state")
    if data_dir is not None:
        data["plugins"]["replay"]["data_dir"] = str(data_dir)
    if capital is not None:
        data["trading"]["initial_capital_usd"] = capital
    return settings_from_dict(apply_profile(data, get_profile(name)), "config.toml", base_dir=str(ROOT))


@pytest.fixture(autouse=True)
def no_config_around(tmp_path, monkeypatch):
    for name in ("GOBOT_CONFIG", "BINANCE_API_KEY", "BINANCE_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_a_profile_over_the_bundled_config_validates_every_section(name, tmp_path):
    settings = profile_settings(name, tmp_path)
    profile = get_profile(name)
    sections = sorted(settings.plugin_sections)
    plugin_set = build_plugin_set(enable=sections)  # every section's plugin, enabled or not by default
    plugin_set.raise_for_failures()
    configs = load_plugin_configs(settings, HookCaller(plugin_set.pm))
    for key, value in profile.flat().items():
        path = key.split(".")
        if path[0] == "plugins":
            assert getattr(configs[path[1]], path[2]) == value, key
        elif path[0] == "strategies":
            assert configured_params(settings, STRATEGIES[path[1]]())[path[2]] == value, key
        else:
            assert getattr(getattr(settings, path[0]), path[1]) == value, key
    for timeframe in (configs["replay"].timeframe, configs["binance"].timeframe, settings.backtest.timeframe):
        assert timeframe in TIMEFRAMES
    # The bundled data is 5m candles and the replay only resamples up: no profile asks for finer.
    assert TIMEFRAMES[configs["replay"].timeframe] >= TIMEFRAMES["5m"]
    # One cycle per candle of the profile's timeframe.
    assert settings.orchestrator.loop_interval == TIMEFRAMES[configs["replay"].timeframe]


@pytest.mark.parametrize("name", NAMES)
def test_every_value_has_a_concrete_reason(name):
    profile = get_profile(name)
    assert set(profile.reasons) == set(profile.flat())
    for key, reason in profile.reasons.items():
        assert len(reason) >= 20 and "placeholder" not in reason, key


def test_the_profiles_set_the_same_keys_so_they_compare_row_by_row():
    keys = [list(profile.flat()) for profile in PROFILES.values()]
    assert all(each == keys[0] for each in keys)


def test_risk_a_trade_is_what_the_reasons_say():
    risk = {name: profile.risk_per_trade_pct() for name, profile in PROFILES.items()}
    assert 0.4 <= risk["conservative"] <= 0.6  # ~0.5 % of capital
    assert 1.7 <= risk["aggressive"] <= 2.3  # ~2 %
    assert risk["scalping"] < risk["conservative"] < risk["aggressive"]
    assert PROFILES["conservative"].values["plugins"]["kelly_size"]["fraction"] == 0.25  # quarter Kelly
    assert PROFILES["aggressive"].values["plugins"]["kelly_size"]["fraction"] == 0.5  # half Kelly


def test_the_paper_costs_the_reasons_count_are_the_paper_models_defaults():
    from gobot_plugins.paper import PaperConfig

    assert PaperConfig().fee_percent == PAPER_FEE_PERCENT
    assert PaperConfig().slippage_percent == PAPER_SLIPPAGE_PERCENT


def test_scalping_targets_clear_the_round_trip_costs_several_times():
    trading = PROFILES["scalping"].values["trading"]
    worst_round_trip = 2 * PAPER_FEE_PERCENT + 2 * PAPER_SLIPPAGE_PERCENT
    assert trading["take_profit_percent"] >= 3 * worst_round_trip
    assert trading["stop_loss_percent"] > worst_round_trip


@pytest.mark.parametrize("name", NAMES)
def test_each_profiles_stop_and_target_pass_its_own_reward_risk_check(name):
    values = PROFILES[name].values
    ratio = values["trading"]["take_profit_percent"] / values["trading"]["stop_loss_percent"]
    assert ratio >= values["plugins"]["risk_limits"]["min_reward_risk"] - 1e-9


def test_amounts_are_shares_of_capital_and_scale_with_it(tmp_path):
    settings = profile_settings("conservative", tmp_path, capital=1000)
    assert settings.trading.max_position_usd == 200  # 20 % of 1,000
    assert settings.orchestrator.max_daily_loss == 30
    assert settings.trading.stop_loss_percent == 2.5  # a percent is not an amount
    section = settings.plugin_sections["risk_limits"]
    assert section["max_total_exposure_usd"] == 400 and section["daily_loss_limit_usd"] == 15
    assert {key.split(".")[-1] for key in CAPITAL_KEYS} <= {
        key.split(".")[-1] for key in PROFILES["conservative"].flat()}


def test_variables_win_over_the_profile_and_its_amounts_follow_the_capital_they_set(tmp_path):
    from gobot.config import load_settings

    path = tmp_path / "config.toml"
    path.write_text("[trading]\nstop_loss_percent = 9\ntake_profit_percent = 30\n", encoding="utf-8")
    environ = {"GOBOT_TRADING__TAKE_PROFIT_PERCENT": "2", "GOBOT_TRADING__INITIAL_CAPITAL_USD": "500"}
    settings = load_settings(str(path), environ=environ, profile=get_profile("scalping"))
    assert settings.trading.stop_loss_percent == 0.6  # the profile over the file
    assert settings.trading.take_profit_percent == 2  # the variable over the profile
    assert settings.trading.max_position_usd == 200  # 40 % of the capital the variable sets


def test_a_profile_applies_without_a_config_file():
    from gobot.config import load_settings

    settings = load_settings(None, environ={}, profile=get_profile("conservative"))
    assert settings.orchestrator.loop_interval == 3600
    assert settings.plugin_sections["replay"]["timeframe"] == "1h"
    assert settings.strategies == {"sma_rsi": {"fast": 12, "slow": 36, "rsi_period": 14, "rsi_long_max": 65,
                                               "rsi_short_min": 35}, "sma_cross": {"fast": 12, "slow": 36}}


def test_applying_a_profile_joins_lists_and_leaves_the_data_alone():
    data = {"plugins": {"enable": ["sma_cross"], "risk_limits": {"max_trades_per_day": 99, "timezone": "UTC"}}}
    merged = apply_profile(data, get_profile("aggressive"))
    assert data["plugins"]["risk_limits"]["max_trades_per_day"] == 99
    assert merged["plugins"]["risk_limits"]["max_trades_per_day"] == 12
    assert merged["plugins"]["risk_limits"]["timezone"] == "UTC"
    assert merged["plugins"]["enable"] == ["sma_cross"]


def test_an_unknown_profile_names_the_choices():
    with pytest.raises(KeyError, match="conservative, aggressive, scalping"):
        get_profile("yolo")


@pytest.mark.parametrize("name", NAMES)
def test_a_short_paper_run_of_each_profile_completes(name, tmp_path, synthetic_data_dir):
    from gobot.run.bot import Bot
    from gobot.run.runner import Runner

    settings = profile_settings(name, tmp_path, synthetic_data_dir)
    # sma_cross too (off by default): the profile's parameters for it run as well.
    plugin_set = build_plugin_set(enable=[*settings.plugins.enable, "sma_cross"], disable=settings.plugins.disable)
    bot = Bot(settings, plugin_set)
    outcome = asyncio.run(Runner(bot, 4, handle_signals=False).run())
    assert outcome.cycles_run == 4, outcome.reason
    times = [row.time for row in bot.state.cycles]
    steps = {(later - earlier).total_seconds() for earlier, later in zip(times, times[1:])}
    assert steps == {settings.orchestrator.loop_interval}
    params = {strategy: version.params for strategy, version in bot.state.strategies.items()}
    profile = get_profile(name).values["strategies"]
    assert {key: params["sma_rsi"][key] for key in profile["sma_rsi"]} == profile["sma_rsi"]
    assert {key: params["sma_cross"][key] for key in profile["sma_cross"]} == profile["sma_cross"]


# -- the command line ------------------------------------------------------------------------


def test_init_with_a_profile_writes_its_values_with_their_reasons():
    result = CliRunner().invoke(cli, ["init", "--profile", "scalping", "--stdout"])
    assert result.exit_code == 0, result.output
    text = result.output
    written = tomllib.loads(text)
    profile = get_profile("scalping")
    for key, value in profile.flat().items():
        table = written
        for part in key.split("."):
            table = table[part]
        assert table == value, key
        assert f"# profile scalping: {profile.reasons[key]}\n" in text, key
    assert "Profile 'scalping'" in text


def test_init_with_a_profile_writes_a_file_config_check_accepts(tmp_path):
    path = tmp_path / "config.toml"
    assert CliRunner().invoke(cli, ["init", "--profile", "conservative", "--config", str(path)]).exit_code == 0
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output


def test_config_check_with_a_profile_says_so():
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(ROOT / "config.toml"),
                                      "--profile", "aggressive"])
    assert result.exit_code == 0, result.output
    assert "with profile aggressive: OK" in result.output


@pytest.mark.parametrize("command", [["start"], ["init", "--stdout"], ["config", "check"], ["profiles"]])
def test_an_unknown_profile_is_a_usage_error_naming_the_choices(command):
    args = [*command, "yolo"] if command == ["profiles"] else [*command, "--profile", "yolo"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "'yolo' is not one of 'conservative', 'aggressive', 'scalping'" in result.output


def test_start_runs_one_profile_and_names_it(tmp_path, synthetic_data_dir):
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "state"\n[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["start", "--config", str(config), "--profile", "aggressive",
                                      "--max-iterations", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "paper mode, profile aggressive, plugins:" in result.output


def test_a_run_resumes_only_under_the_profile_it_started_with(tmp_path, synthetic_data_dir):
    """Another profile would change the run's timeframe, limits and strategy mid-run: refused with the fix."""
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "state"\n[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n', encoding="utf-8")
    first = CliRunner().invoke(cli, ["start", "--config", str(config), "--profile", "aggressive",
                                     "--max-iterations", "2", "--quiet"])
    assert first.exit_code == 0, first.output
    state_file = tmp_path / "state" / "state.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    assert state["profile"] == "aggressive"
    state["finished"], state["finish_reason"] = False, ""  # as a run stopped by a signal leaves it
    state_file.write_text(json.dumps(state), encoding="utf-8")
    for other in (["--profile", "scalping"], []):
        refused = CliRunner().invoke(cli, ["start", "--config", str(config), *other, "--max-iterations", "1"])
        assert refused.exit_code != 0
        assert "was started with --profile aggressive; resume it with --profile aggressive" in str(refused.exception)
    resumed = CliRunner().invoke(cli, ["start", "--config", str(config), "--profile", "aggressive",
                                       "--max-iterations", "1", "--quiet"])
    assert resumed.exit_code == 0 and "paper mode, profile aggressive) after cycle 2" in resumed.output


def test_profiles_lists_every_value_and_reason_side_by_side():
    result = CliRunner().invoke(cli, ["profiles"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for name in NAMES:
        assert name in result.output
    assert "plugins.risk_limits.max_trades_per_day" in result.output
    assert "0.56 % of capital" in result.output  # conservative's risk a trade
    as_json = json.loads(CliRunner().invoke(cli, ["profiles", "scalping", "--json"]).output)
    entry = as_json["scalping"]["values"]["trading.take_profit_percent"]
    assert entry == {"value": 1.2, "reason": get_profile("scalping").reasons["trading.take_profit_percent"]}


def test_docs_risk_md_lists_every_profile_value_as_gobot_profiles_does():
    text = (ROOT / "docs" / "risk.md").read_text(encoding="utf-8")
    start, end = "<!-- profiles:start -->\n", "<!-- profiles:end -->"
    assert start in text and end in text, "docs/risk.md needs its Profiles tables between the markers"
    shown = text.split(start, 1)[1].split(end, 1)[0]
    assert shown == profiles_markdown(), ("docs/risk.md's profile tables differ from gobot/profiles.py: "
                                          "paste `gobot profiles --markdown` between the markers")
