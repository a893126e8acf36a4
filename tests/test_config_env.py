"""Settings from the environment: ``GOBOT_<SECTION>__<KEY>`` and ``GOBOT_PLUGINS__<NAME>__<KEY>``
override config.toml and are validated the same way; a problem names the variable.

Precedence, highest first: a command-line flag, the variable, the file, the default."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gobot.cli import cli
from gobot.config import SECRET_ENV_VARS, Settings, env_value, load_settings, settings_from_dict
from gobot.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(tmp_path, monkeypatch):
    """An empty folder, no $GOBOT_CONFIG and no override variable from the surrounding shell."""
    import os

    for name in list(os.environ):
        if name.startswith("GOBOT_") and ("__" in name or name == "GOBOT_STATE_DIR") or name == "GOBOT_CONFIG":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def problems(environ, data=None):
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(data or {}, "config.toml", environ=environ)
    return [str(problem) for problem in caught.value.problems]


# -- precedence -----------------------------------------------------------------------------------


def test_a_variable_wins_over_the_file_and_the_file_over_the_default(tmp_path):
    path = write(tmp_path / "config.toml", "[trading]\nmax_position_usd = 5\ninitial_capital_usd = 500\n")
    settings = load_settings(str(path), environ={"GOBOT_TRADING__MAX_POSITION_USD": "25"})
    assert settings.trading.max_position_usd == 25  # the variable
    assert settings.trading.initial_capital_usd == 500  # the file
    assert settings.trading.stop_loss_percent == 2  # the default
    assert settings.env_sources == {"trading.max_position_usd": ("GOBOT_TRADING__MAX_POSITION_USD", "25")}


def test_variables_apply_without_any_file():
    settings = load_settings(None, environ={"GOBOT_ORCHESTRATOR__LOOP_INTERVAL": "60"})
    assert settings.orchestrator.loop_interval == 60 and settings.source is None and settings.file_label == "(defaults)"


def test_the_process_environment_is_read_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("GOBOT_TRADING__SYMBOLS", '["SOL/USDT"]')
    assert load_settings().trading.symbols == ["SOL/USDT"]


def test_a_command_line_flag_wins_over_the_variable(tmp_path, monkeypatch, synthetic_data_dir):
    write(tmp_path / "config.toml",
          f'[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n[orchestrator]\nmax_iterations = 5\n')
    monkeypatch.setenv("GOBOT_ORCHESTRATOR__MAX_ITERATIONS", "3")
    monkeypatch.setenv("GOBOT_STATE_DIR", str(tmp_path / "from-env"))
    result = CliRunner().invoke(cli, ["start", "--quiet", "--max-iterations", "2"])
    assert result.exit_code == 0, result.output
    assert "max_iterations (2) reached" in result.output  # the flag, not the variable's 3 nor the file's 5
    assert (tmp_path / "from-env" / "state.json").exists() or list((tmp_path / "from-env" / "runs").glob("*.json"))
    result = CliRunner().invoke(cli, ["start", "--quiet"])
    assert "max_iterations (3) reached" in result.output  # the variable over the file


def test_plugin_enable_from_the_environment_replaces_the_files_list(tmp_path):
    path = write(tmp_path / "config.toml", '[plugins]\nenable = ["webhook"]\n')
    settings = load_settings(str(path), environ={"GOBOT_PLUGINS__ENABLE": '["vision", "charts"]'})
    assert settings.plugins.enable == ["vision", "charts"]


# -- values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("25", 25), ("2.5", 2.5), ("true", True), ("false", False), ('["BTC/USDT", "ETH/USDT"]', ["BTC/USDT", "ETH/USDT"]),
    ('"quoted"', "quoted"), ("127.0.0.1", "127.0.0.1"), ("gpt-4o", "gpt-4o"), ("", ""), ("5m", "5m"),
    ("1\nextra = 2", "1\nextra = 2"),  # one value per variable: a second line is text, not a second key
])
def test_a_value_is_a_toml_literal_else_plain_text(raw, expected):
    assert env_value(raw) == expected


def test_a_text_setting_takes_the_text_as_it_is_even_when_it_looks_like_a_number():
    settings = settings_from_dict({}, environ={"GOBOT_OPTIMIZER__STUDY": "2026", "GOBOT_BACKTEST__SIZING": "100",
                                               "GOBOT_SERVER__HOST": "0.0.0.0", "GOBOT_SERVER__PORT": "9000"})
    assert settings.optimizer.study == "2026" and settings.backtest.sizing == "100"
    assert settings.server.host == "0.0.0.0" and settings.server.port == 9000


def test_strategy_parameters_and_the_state_folder(tmp_path):
    settings = settings_from_dict({}, environ={"GOBOT_STRATEGIES__SMA_RSI__FAST": "12",
                                               "GOBOT_STATE_DIR": "/var/lib/gobot"})
    assert settings.strategies == {"sma_rsi": {"fast": 12.0}} and settings.state_dir == "/var/lib/gobot"


def test_an_empty_state_dir_variable_is_refused_not_taken_as_the_config_files_folder():
    assert problems({"GOBOT_STATE_DIR": ""}) == [
        "(environment):GOBOT_STATE_DIR: is empty — fix: give the folder (an absolute path in a container), or unset it",
    ]


def test_other_gobot_variables_are_not_overrides():
    settings = settings_from_dict({}, environ={"GOBOT_CONFIG": "x.toml", "GOBOT_DASHBOARD_TOKEN": "a" * 20,
                                               "GOBOT_OPTIMIZER_STORAGE": "sqlite://", "GOBOT_TEST_KILL_POINT": "x"})
    assert settings.env_sources == {} and settings.model_dump() == Settings().model_dump()


# -- errors name the variable ---------------------------------------------------------------------


def test_a_bad_value_names_the_variable_in_the_usual_style():
    assert problems({"GOBOT_TRADING__MAX_POSITION_USD": "-1"}) == [
        "(environment):GOBOT_TRADING__MAX_POSITION_USD: Input should be greater than 0 — fix: largest notional of "
        "one position, in the portfolio currency; default 10",
    ]


def test_a_list_written_as_plain_text_says_how_to_write_it():
    [problem] = problems({"GOBOT_TRADING__SYMBOLS": "BTC/USDT"})
    assert problem.startswith("(environment):GOBOT_TRADING__SYMBOLS: Input should be a valid list — fix: "
                              "markets to trade")
    assert "the value is read as TOML" in problem


def test_a_bad_value_in_a_list_and_a_non_finite_number_name_their_variables():
    assert problems({"GOBOT_TRADING__SYMBOLS": '["btc"]', "GOBOT_ORCHESTRATOR__LOOP_INTERVAL": "inf"}) == [
        "(environment):GOBOT_TRADING__SYMBOLS: 'btc' is not a BASE/QUOTE symbol such as 'BTC/USDT' — fix: "
        "markets to trade, BASE/QUOTE; default [\"BTC/USDT\", \"ETH/USDT\"]",
        "(environment):GOBOT_ORCHESTRATOR__LOOP_INTERVAL: Input should be a finite number — fix: seconds between "
        "cycles (simulated in replay); default 900",
    ]


def test_unknown_sections_and_keys_suggest_the_closest_variable():
    assert problems({"GOBOT_TRADNG__SYMBOLS": "[]", "GOBOT_TRADING__MAX_POSITON_USD": "1",
                     "GOBOT_PLUGINS__ENABEL": "[]"}) == [
        "(environment):GOBOT_PLUGINS__ENABEL: not a [plugins] key or a plugin's setting — fix: did you mean "
        "GOBOT_PLUGINS__ENABLE? "
        "use GOBOT_PLUGINS__ENABLE, GOBOT_PLUGINS__DISABLE, or GOBOT_PLUGINS__<NAME>__<KEY> for a plugin's setting",
        "(environment):GOBOT_TRADING__MAX_POSITON_USD: [trading] has no key 'max_positon_usd' — fix: did you mean "
        "GOBOT_TRADING__MAX_POSITION_USD? unset it; valid keys here: auto_execute, currency, initial_capital_usd, "
        "max_position_usd, stop_loss_percent, symbols, take_profit_percent",
        "(environment):GOBOT_TRADNG__SYMBOLS: no config section 'tradng' — fix: did you mean GOBOT_TRADING__SYMBOLS? "
        "sections: backtest, optimizer, orchestrator, plugins, server, strategies, strategy_versions, trading, "
        "watchdog "
        "(GOBOT_<SECTION>__<KEY>); unset it",
    ]


def test_a_name_of_the_wrong_shape_is_refused():
    assert [p.split(" — ")[0] for p in problems({"GOBOT_TRADING__": "1", "GOBOT_TRADING__SYMBOLS__X": "1",
                                                 "GOBOT_STRATEGIES__FAST": "1"})] == [
        "(environment):GOBOT_STRATEGIES__FAST: a strategy parameter needs the strategy and the parameter",
        "(environment):GOBOT_TRADING__: an empty name between the '__' separators",
        "(environment):GOBOT_TRADING__SYMBOLS__X: [trading] keys take one name after the section",
    ]


def test_file_and_environment_problems_are_reported_together(tmp_path):
    path = write(tmp_path / "config.toml", "[orchestrator]\nloop_interval = 0\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(str(path), environ={"GOBOT_SERVER__PORT": "70000"})
    assert [(p.file, p.key) for p in caught.value.problems] == [
        (str(path), "orchestrator.loop_interval"), ("(environment)", "GOBOT_SERVER__PORT"),
    ]


# -- secrets stay in their own variables ----------------------------------------------------------


@pytest.mark.parametrize("var", ["GOBOT_PLUGINS__TELEGRAM__BOT_TOKEN", "GOBOT_PLUGINS__BINANCE__API_KEY",
                                 "GOBOT_PLUGINS__VISION__API_KEY", "GOBOT_SERVER__TOKEN",
                                 "GOBOT_PLUGINS__ARCHIVER__PASSWORD"])
def test_an_override_of_a_key_named_like_a_secret_is_refused(var):
    assert problems({var: "0123456789abcdefghij"}) == [
        f"(environment):{var}: a secret is not read from a GOBOT_<SECTION>__<KEY> variable, as it is not read "
        "from the config file "
        f"— fix: secrets are read only from their own variables ({', '.join(SECRET_ENV_VARS)}); unset this one",
    ]


def test_a_credential_value_is_refused_whatever_the_key():
    assert problems({"GOBOT_PLUGINS__WEBHOOK__FORMAT": "https://hooks.slack.com/services/T0/B0/xyz"}) == [
        "(environment):GOBOT_PLUGINS__WEBHOOK__FORMAT: holds a Slack webhook URL, a credential; secrets never go "
        "in the config file "
        "— fix: set GOBOT_WEBHOOK_URL in the environment and unset this variable",
    ]


# -- plugin sections ------------------------------------------------------------------------------


def test_a_plugin_setting_is_validated_against_the_plugins_model_and_names_the_variable(tmp_path, monkeypatch):
    write(tmp_path / "config.toml", '[plugins]\nenable = ["charts", "vision"]\n[plugins.vision]\nmodel = "llava"\n')
    monkeypatch.setenv("GOBOT_PLUGINS__VISION__MAX_OUTPUT_TOKENS", "5")
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "(environment):GOBOT_PLUGINS__VISION__MAX_OUTPUT_TOKENS: Input should be greater than or equal to 50 — fix: "
        "longest answer, tokens (a cut-off answer is HOLD); default 600",
    ]


def test_a_plugin_text_setting_keeps_its_text_and_a_number_is_a_number(tmp_path):
    from gobot.config import validate_plugin_section
    from gobot_plugins.vision.config import VisionConfig

    settings = settings_from_dict({}, environ={"GOBOT_PLUGINS__VISION__MODEL": "4",
                                               "GOBOT_PLUGINS__VISION__TEMPERATURE": "0.5",
                                               "GOBOT_PLUGINS__VISION__TIMEFRAMES": '["5m", "15m"]'})
    config = validate_plugin_section(settings, "vision", VisionConfig)
    assert (config.model, config.temperature, config.timeframes) == ("4", 0.5, ["5m", "15m"])


def test_a_variable_for_a_plugin_that_is_not_installed_suggests_the_installed_one(monkeypatch):
    monkeypatch.setenv("GOBOT_PLUGINS__TELEGARM__PARSE_MODE", "HTML")
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "(environment):GOBOT_PLUGINS__TELEGARM__PARSE_MODE: no installed plugin is called 'telegarm' — fix: "
        "did you mean GOBOT_PLUGINS__TELEGRAM__PARSE_MODE? unset it, or install the plugin",
    ]


def test_an_unknown_plugin_in_enable_from_the_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("GOBOT_PLUGINS__ENABLE", '["archivr"]')
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.stderr.splitlines() == [
        "(environment):GOBOT_PLUGINS__ENABLE: plugin 'archivr' enabled but not installed (no such entry point) — fix: "
        "did you mean 'archiver'? check the name in `gobot plugins`",
    ]


# -- gobot config check shows what came from the environment --------------------------------------


def test_config_check_lists_the_values_from_the_environment(tmp_path, monkeypatch):
    write(tmp_path / "config.toml", "[trading]\nmax_position_usd = 5\n")
    monkeypatch.setenv("GOBOT_TRADING__MAX_POSITION_USD", "25")
    monkeypatch.setenv("GOBOT_TRADING__SYMBOLS", '["BTC/USDT"]')
    monkeypatch.setenv("GOBOT_STATE_DIR", str(tmp_path / "state"))
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("config.toml: OK (")
    assert lines[1:] == [
        "From the environment (over the file; a command-line flag wins over both): 3 value(s)",
        f'  GOBOT_STATE_DIR: state_dir = "{tmp_path / "state"}"',
        "  GOBOT_TRADING__MAX_POSITION_USD: trading.max_position_usd = 25",
        '  GOBOT_TRADING__SYMBOLS: trading.symbols = ["BTC/USDT"]',
    ]


def test_config_check_without_variables_prints_no_environment_part(tmp_path):
    write(tmp_path / "config.toml", "[trading]\nmax_position_usd = 5\n")
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 1


# -- hostile values -------------------------------------------------------------------------------

CORE_KEYS = [(section, key) for section, model in
             ((name, field.annotation) for name, field in Settings.model_fields.items()
              if hasattr(field.annotation, "model_fields"))
             for key in model.model_fields]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(CORE_KEYS), st.one_of(
    st.text(max_size=20).filter(lambda t: "\x00" not in t),
    st.sampled_from(["", "nan", "inf", "-inf", "1e999", "[", "[1, 2", '["BTC/USDT", "BTC/USDT"]', "{a = 1}", "true",
                     "0", "-1", "1e300", "2026-01-01", "'single'", '"double"', "s" * 5000, "x\ny = 1"]),
)), max_size=4))
def test_any_value_of_any_variable_is_accepted_or_refused_naming_the_variable(pairs):
    environ = {f"GOBOT_{section.upper()}__{key.upper()}": raw for (section, key), raw in pairs}
    try:
        settings_from_dict({}, "config.toml", environ=environ)
    except ConfigError as exc:
        for problem in exc.problems:
            assert problem.file == "(environment)" and problem.key in environ, str(problem)
