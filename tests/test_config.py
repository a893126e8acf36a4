"""config.toml: where it is read from, and every mistake reported as ``file:key: message — fix``,
all at once, never as a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot.config import Settings, load_settings, tomllib
from gobot.errors import ConfigError
from gobot.host.plugin_manager import DEFAULT_PLUGINS


@pytest.fixture(autouse=True)
def no_config_around(tmp_path, monkeypatch):
    """Each test starts in an empty folder with no $GOBOT_CONFIG."""
    monkeypatch.delenv("GOBOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def problems_in(text, tmp_path):
    """The problems ``load_settings`` reports for a config file holding ``text``, as strings."""
    path = write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(str(path))
    return [str(problem) for problem in caught.value.problems]


def config_check(*args):
    return CliRunner().invoke(cli, ["config", "check", *args])


# -- the file -------------------------------------------------------------------------------


def test_missing_file_is_named_with_how_to_create_it():
    with pytest.raises(ConfigError) as caught:
        load_settings("nowhere.toml")
    assert str(caught.value) == ("nowhere.toml:(file): no such file — fix: create it with `gobot init` "
                                 "or pass --config PATH")


def test_toml_syntax_error_gives_the_line(tmp_path):
    [problem] = problems_in('state_dir = "state"\n[trading]\nsymbols = [BTC/USDT]\n', tmp_path)
    assert problem.startswith(f"{tmp_path / 'config.toml'}:(syntax): ")
    assert "line 3" in problem
    assert problem.endswith("— fix: fix the TOML syntax at that line")


# -- core keys ------------------------------------------------------------------------------


def test_unknown_key_suggests_the_close_one(tmp_path):
    [problem] = problems_in("[orchestrator]\nloop_intervall = 60\n", tmp_path)
    assert problem.startswith(f"{tmp_path / 'config.toml'}:orchestrator.loop_intervall: unknown key — fix: "
                              "did you mean 'loop_interval'? ")


def test_key_in_the_wrong_section_says_where_it_belongs(tmp_path):
    [problem] = problems_in("[trading]\nloop_interval = 60\n", tmp_path)
    assert problem.endswith("trading.loop_interval: unknown key — fix: move it to [orchestrator]")


def test_wrong_type_names_the_key_and_shows_the_default(tmp_path):
    [problem] = problems_in('[orchestrator]\nloop_interval = "fast"\n', tmp_path)
    assert problem == (
        f"{tmp_path / 'config.toml'}:orchestrator.loop_interval: Input should be a valid number, "
        "unable to parse string as a number"
        " — fix: seconds between cycles (simulated in replay); default 900"
    )


@pytest.mark.parametrize("value", ["0", "-5"])
def test_values_that_must_be_positive(tmp_path, value):
    [problem] = problems_in(f"[trading]\nmax_position_usd = {value}\n", tmp_path)
    assert problem.endswith(":trading.max_position_usd: Input should be greater than 0 — fix: largest notional of "
                            "one position, in the portfolio currency; default 10")


def test_symbol_must_be_base_slash_quote(tmp_path):
    [problem] = problems_in('[trading]\nsymbols = ["BTC/USDT", "ethusdt"]\n', tmp_path)
    assert problem.endswith(":trading.symbols: 'ethusdt' is not a BASE/QUOTE symbol such as 'BTC/USDT' — fix: "
                            "markets to trade, BASE/QUOTE; default [\"BTC/USDT\", \"ETH/USDT\"]")


def test_a_secret_in_the_file_is_sent_to_the_environment(tmp_path):
    [problem] = problems_in('[trading]\napi_key = "abc123"\n', tmp_path)
    assert (":trading.api_key: unknown key — fix: secrets are read only from the environment (BINANCE_API_KEY,"
            in problem)
    assert "abc123" not in problem


def test_a_section_written_as_a_value_asks_for_a_table(tmp_path):
    [problem] = problems_in("trading = 3\n", tmp_path)
    assert problem.endswith(":trading: expected a [trading] table — fix: write its keys under a [trading] heading")


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    problems = problems_in(
        '[orchestrator]\nloop_intervall = 60\nmax_daily_loss = -1\n[trading]\nsymbols = ["btc"]\n'
        '[server]\nport = 70000\n', tmp_path
    )
    keys = sorted(problem.split(":")[1] for problem in problems)
    assert keys == ["orchestrator.loop_intervall", "orchestrator.max_daily_loss", "server.port", "trading.symbols"]


# -- plugin sections ------------------------------------------------------------------------


def test_plugin_section_is_validated_against_the_plugins_model(tmp_path):
    write(tmp_path / "config.toml", "[plugins.paper]\nfee_percent = -1\n")
    result = config_check()
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "config.toml:plugins.paper.fee_percent: Input should be greater than or equal to 0 — fix: fee per fill, "
        "% of notional; default 0.1"
    ]


def test_section_of_a_plugin_that_is_not_installed_is_reported(tmp_path):
    write(tmp_path / "config.toml", "[plugins.pager_duty]\nchat = 1\n")
    result = config_check()
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "config.toml:plugins.pager_duty: no installed plugin has this name — fix: remove the section or install "
        "the plugin"
    ]


def test_a_scalar_under_plugins_is_reported(tmp_path):
    [problem] = problems_in("[plugins]\ntelegram = 3\n", tmp_path)
    assert problem.endswith(":plugins.telegram: expected a [plugins.telegram] table or one of ['disable', 'enable'] "
                            "— fix: write its settings under a [plugins.telegram] heading")


def test_config_check_reports_core_and_plugin_problems_together_one_per_line(tmp_path):
    write(tmp_path / "config.toml",
          "[orchestrator]\nloop_interval = 0\n[plugins.paper]\nfee_percent = -1\n[plugins.pager_duty]\n")
    result = config_check()
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert [line.split(":")[1] for line in lines] == ["orchestrator.loop_interval", "plugins.paper.fee_percent",
                                                      "plugins.pager_duty"]
    assert all(line.startswith("config.toml:") and " — fix: " in line for line in lines)


def test_config_check_names_a_broken_enabled_plugin(tmp_path, installed_plugin):
    installed_plugin("crasher", 'raise RuntimeError("boom")\n', dist="gobot-crasher")
    write(tmp_path / "config.toml", '[plugins]\nenable = ["crasher", "telegarm"]\n')
    result = config_check()
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "config.toml:plugins.crasher: plugin 'crasher' import failed: RuntimeError: boom — fix: fix or disable "
        "the plugin",
        "config.toml:plugins.enable: plugin 'telegarm' enabled but not installed (no such entry point) — fix: "
        "did you mean 'telegram'? check the name in `gobot plugins`",
    ]


def test_an_unknown_plugin_name_in_enable_suggests_the_installed_one(tmp_path):
    write(tmp_path / "config.toml", '[plugins]\nenable = ["archivr"]\n')
    result = config_check()
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "config.toml:plugins.enable: plugin 'archivr' enabled but not installed (no such entry point) — fix: "
        "did you mean 'archiver'? check the name in `gobot plugins`",
    ]


def test_a_section_of_a_misspelled_plugin_suggests_the_installed_one(tmp_path):
    write(tmp_path / "config.toml", '[plugins.telegarm]\nparse_mode = "HTML"\n')
    result = config_check()
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "config.toml:plugins.telegarm: no installed plugin has this name — fix: did you mean 'telegram'? "
        "rename the section, or remove it",
    ]


def test_a_misspelled_name_in_disable_is_warned_about_with_the_installed_one(tmp_path):
    """A name in disable that matches no plugin is ignored, as before (not an error), but said:
    a typo there leaves the plugin on."""
    write(tmp_path / "config.toml", '[plugins]\ndisable = ["kely_size"]\n')
    result = config_check()
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: config.toml:plugins.disable: 'kely_size' matches no installed plugin and is ignored — fix: "
        "did you mean 'kelly_size'? check the name in `gobot plugins`",
    ]


def test_config_check_on_a_valid_file_says_ok(tmp_path):
    write(tmp_path / "config.toml", "[trading]\nmax_position_usd = 5\n")
    result = config_check()
    assert result.exit_code == 0
    assert result.stdout.startswith(f"config.toml: OK ({len(DEFAULT_PLUGINS)} plugins enabled: adjuster, archiver,")


def test_config_check_never_prints_a_traceback(tmp_path):
    write(tmp_path / "broken.toml", "[trading\n")
    done = subprocess.run(
        [sys.executable, "-m", "gobot", "config", "check", "--config", "broken.toml"], cwd=tmp_path,
        capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith("broken.toml:(syntax): ")
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr


# -- where the config comes from ------------------------------------------------------------


@pytest.fixture
def three_configs(tmp_path, monkeypatch):
    """./config.toml, a file named by $GOBOT_CONFIG and one for --config, each with its own state_dir."""
    for name in ("cwd", "env", "flag"):
        (tmp_path / name).mkdir()
    write(tmp_path / "cwd" / "config.toml", 'state_dir = "from-cwd"\n')
    env = write(tmp_path / "env" / "gobot.toml", 'state_dir = "from-env"\n')
    flag = write(tmp_path / "flag" / "gobot.toml", 'state_dir = "from-flag"\n')
    monkeypatch.chdir(tmp_path / "cwd")
    return env, flag


def test_config_flag_wins_over_environment_and_cwd(three_configs, monkeypatch):
    env, flag = three_configs
    monkeypatch.setenv("GOBOT_CONFIG", str(env))
    assert load_settings(str(flag)).state_dir == "from-flag"


def test_environment_wins_over_cwd(three_configs, monkeypatch):
    env, _flag = three_configs
    monkeypatch.setenv("GOBOT_CONFIG", str(env))
    assert load_settings().state_dir == "from-env"


def test_config_toml_in_the_current_folder_is_used_next():
    write(Path("config.toml"), 'state_dir = "here"\n')
    settings = load_settings()
    assert (settings.state_dir, settings.source) == ("here", "config.toml")


def test_built_in_defaults_without_any_file():
    settings = load_settings()
    assert settings.source is None
    assert settings.model_dump() == Settings().model_dump()


def test_relative_state_dir_resolves_against_the_config_files_folder(tmp_path, monkeypatch):
    (tmp_path / "bot").mkdir()
    write(tmp_path / "bot" / "config.toml", 'state_dir = "state"\n')
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    settings = load_settings("../bot/config.toml")
    assert settings.state_path.resolve() == (tmp_path / "bot" / "state").resolve()


def test_absolute_state_dir_is_kept(tmp_path):
    write(tmp_path / "config.toml", f'state_dir = "{tmp_path / "abs"}"\n')
    assert load_settings("config.toml").state_path == tmp_path / "abs"


# -- gobot init -----------------------------------------------------------------------------


def test_init_output_is_valid_toml_that_means_the_defaults(tmp_path):
    result = CliRunner().invoke(cli, ["init", "--stdout"])
    assert result.exit_code == 0
    data = tomllib.loads(result.stdout)
    write(tmp_path / "config.toml", result.stdout)
    assert load_settings("config.toml").model_dump() == Settings().model_dump()
    assert sorted(name for name, value in data["plugins"].items() if isinstance(value, dict)) == [
        "adjuster", "archiver", "circuit_breaker", "console", "drift", "kelly_size", "paper", "replay",
        "risk_limits", "validator",
    ]


def test_init_output_passes_config_check_with_every_plugin_section(tmp_path):
    write(tmp_path / "written.toml", CliRunner().invoke(cli, ["init", "--stdout"]).stdout)
    result = config_check("--config", "written.toml")
    assert result.exit_code == 0, result.stderr
    assert f"OK ({len(DEFAULT_PLUGINS)} plugins enabled" in result.stdout


def test_init_plugin_sections_hold_each_plugins_defaults(tmp_path):
    from gobot.host.hook_caller import HookCaller
    from gobot.host.plugin_manager import build_plugin_set

    sections = tomllib.loads(CliRunner().invoke(cli, ["init", "--stdout"]).stdout)["plugins"]
    for name, model in HookCaller(build_plugin_set().pm).collect_sync("gobot_config_model"):
        assert model.model_validate(sections[name]) == model(), name


def test_init_writes_the_same_text_it_prints(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert (tmp_path / "config.toml").read_text(encoding="utf-8") == runner.invoke(cli, ["init", "--stdout"]).stdout


def test_init_does_not_overwrite_without_force(tmp_path):
    write(tmp_path / "config.toml", "# mine\n")
    result = CliRunner().invoke(cli, ["init"])
    from gobot.cli import exit_status

    assert exit_status(result.exception) == 2  # one line and status 2 through main()
    assert "exists; use --force" in str(result.exception)
    assert (tmp_path / "config.toml").read_text() == "# mine\n"


# -- what `gobot start` cannot run is refused by `config check` too (issue 16, findings 7 and 8) ---


def gobot_cli(*args, cwd, env=None, timeout=60):
    """``gobot ARGS`` as a real process (no $GOBOT_CONFIG, no secrets unless ``env`` sets them)."""
    import os

    from gobot.config import SECRET_ENV_VARS

    base = {k: v for k, v in os.environ.items() if k not in ("GOBOT_CONFIG", *SECRET_ENV_VARS)}
    return subprocess.run([sys.executable, "-m", "gobot", *args], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def check_and_start(tmp_path, text, env=None):
    """``config check`` and ``start`` on a config holding ``text``: (check's stderr lines, start's stderr lines)."""
    write(tmp_path / "config.toml", text)
    checked = gobot_cli("config", "check", "--config", "config.toml", cwd=tmp_path, env=env)
    started = gobot_cli("start", "--config", "config.toml", "--max-iterations", "1", "--quiet", cwd=tmp_path, env=env)
    assert checked.returncode == 2 and started.returncode == 2, (checked.stdout, checked.stderr, started.stderr[-2000:])
    assert "Traceback" not in checked.stderr + started.stderr
    assert started.stderr.startswith("Error: ")
    return checked.stderr.splitlines(), started.stderr.removeprefix("Error: ").splitlines()


@pytest.mark.parametrize("text, key, message", [
    ('state_dir = "/proc/self"\n', "state_dir",
     "/proc/self: cannot make it owner-only (chmod): Operation not permitted"),
    ('state_dir = "config.toml/state"\n', "state_dir", "{tmp}/config.toml/state: {tmp}/config.toml is a file"),
    (f'state_dir = "{"s" * 5000}"\n', "state_dir", "is 5000 bytes long; a path is at most 4095 bytes"),
    ('state_dir = "state\\u0000x"\n', "state_dir", "contains a NUL character"),
    ('[orchestrator]\nkill_switch_file = "k\\u0000"\n', "orchestrator.kill_switch_file", "contains a NUL character"),
    ("[trading]\nmax_position_usd = inf\n", "trading.max_position_usd", "Input should be a finite number"),
    ("[trading]\nmax_position_usd = 1e300\n", "trading.max_position_usd",
     "Input should be less than or equal to 1000000000000"),
    ("[trading]\ntake_profit_percent = 1e300\n", "trading.take_profit_percent",
     "Input should be less than or equal to 1000"),
    ('[trading]\nsymbols = ["BTC/USDT", "ETH/USDT", "BTC/USDT"]\n', "trading.symbols",
     "'BTC/USDT' listed more than once"),
    ("[orchestrator]\nloop_interval = 1e-9\n", "orchestrator.loop_interval",
     "Input should be greater than or equal to 0.01"),
    ("[orchestrator]\nmax_daily_loss = nan\n", "orchestrator.max_daily_loss", "Input should be a finite number"),
    ("[strategies.sma_rsi]\nfast = inf\n", "strategies.sma_rsi.fast", "Input should be a finite number"),
    ("[plugins.paper]\nfee_percent = nan\n", "plugins.paper.fee_percent", "nan is not a finite number"),
])
def test_config_check_refuses_what_start_cannot_run(tmp_path, text, key, message):
    checked, started = check_and_start(tmp_path, text)
    assert len(checked) == 1 and checked == started, (checked, started)
    assert checked[0].startswith(f"config.toml:{key}: {message.format(tmp=tmp_path)}") and " — fix: " in checked[0]
    if key == "state_dir":
        assert not (tmp_path / "state").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_the_state_folder_probe_leaves_nothing_behind_and_accepts_a_new_folder(tmp_path):
    write(tmp_path / "config.toml", 'state_dir = "a/b/state"\n')
    result = config_check("--config", "config.toml")
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "folder"])
def test_a_config_that_is_not_a_regular_file_is_refused_not_read_forever(tmp_path, kind):
    import os

    path = {"/dev/zero": "/dev/zero", "fifo": str(tmp_path / "fifo.toml"), "folder": str(tmp_path)}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    done = gobot_cli("config", "check", cwd=tmp_path, env={"GOBOT_CONFIG": path}, timeout=30)  # it hung forever
    started = gobot_cli("start", cwd=tmp_path, env={"GOBOT_CONFIG": path}, timeout=30)
    what = {"/dev/zero": "a character device", "fifo": "a FIFO (named pipe)", "folder": "a folder"}[kind]
    assert done.returncode == 2 and started.returncode == 2
    assert done.stderr.splitlines() == [f"{path}:(file): {what}, not a config file — fix: pass the path of a TOML file "
                                        "(`gobot init` writes one) with --config or GOBOT_CONFIG"]
    assert started.stderr.splitlines() == ["Error: " + done.stderr.splitlines()[0]]


def test_a_config_that_is_not_utf8_names_the_line(tmp_path):
    (tmp_path / "config.toml").write_bytes(b'state_dir = "s"\n[trading]\nsymbols = ["BTC/USDT"] # \xff\n')
    [problem] = problems_in_file(tmp_path / "config.toml")
    assert problem == f"{tmp_path / 'config.toml'}:(line 3): not UTF-8 text (byte 0xff) — fix: save the file as UTF-8"


def test_an_oversized_config_is_refused(tmp_path):
    write(tmp_path / "config.toml", "# " + "x" * (1024 * 1024) + "\n")
    [problem] = problems_in_file(tmp_path / "config.toml")
    assert ":(file): is 1048579 bytes; a config file is at most 1048576 bytes" in problem


def problems_in_file(path):
    with pytest.raises(ConfigError) as caught:
        load_settings(str(path))
    return [str(problem) for problem in caught.value.problems]


def test_a_dashboard_start_would_refuse_is_refused_by_check(tmp_path):
    checked, started = check_and_start(tmp_path, '[server]\nenabled = true\nhost = "0.0.0.0"\n')
    assert checked[0].startswith('config.toml:server.host: "0.0.0.0" is not a loopback address and '
                                 'GOBOT_DASHBOARD_TOKEN is not set')
    assert "GOBOT_DASHBOARD_TOKEN" in started[0]


@pytest.mark.parametrize("text, key, message, fix", [
    ('[plugins.telegram]\ntoken = "123456:abcdef"\n', "plugins.telegram.token",
     "a secret does not belong in the config file", "secrets are read only from the environment (BINANCE_API_KEY"),
    ('[plugins]\ndisable = ["binance"]\n[plugins.binance]\napi_secret = "s3cr3t"\n', "plugins.binance.api_secret",
     "a secret does not belong in the config file", "secrets are read only from the environment"),
    ('[plugins.someone_elses]\npassword = "hunter2"\n', "plugins.someone_elses.password",
     "a secret does not belong in the config file", "secrets are read only from the environment"),
    ('[plugins.webhook]\nurl = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"\n', "plugins.webhook.url",
     "holds a Slack webhook URL, a credential; secrets never go in the config file",
     "set GOBOT_WEBHOOK_URL in the environment and remove this key"),
    ('[plugins]\nenable = ["webhook"]\n[plugins.webhook]\nurl = "https://alerts.example.com/gobot"\n',
     "plugins.webhook.url",
     "a webhook URL is a credential (whoever has it can post to the channel): it is read from GOBOT_WEBHOOK_URL "
     "in the environment only",
     "set GOBOT_WEBHOOK_URL in the environment and remove this key"),
    ('[plugins.telegram]\napi_url = "https://api.telegram.org/bot123456789:AAFakeTokenForTests-abcdefghijklmnop/"\n',
     "plugins.telegram.api_url", "holds a Telegram bot token, a credential", "set TELEGRAM_TOKEN in the environment"),
])
def test_a_secret_in_any_plugin_section_is_refused_enabled_or_not(tmp_path, text, key, message, fix):
    checked, started = check_and_start(tmp_path, text)
    assert started == checked[:1], (checked, started)  # check also says no plugin is named someone_elses
    assert checked[0].startswith(f"config.toml:{key}: {message}") and f" — fix: {fix}" in checked[0]
    assert "s3cr3t" not in checked[0] and "hunter2" not in checked[0] and "XXXXXXXX" not in checked[0]


def test_no_declared_setting_looks_like_a_secret():
    """The secret-key rule refuses keys by name: no real setting of gobot or of an installed plugin may match it."""
    from importlib.metadata import entry_points

    from gobot.config import _SECRET_KEY_PATTERN
    from gobot.host.hook_caller import HookCaller
    from gobot.host.plugin_manager import build_plugin_set

    plugin_set = build_plugin_set(enable=sorted({ep.name for ep in entry_points(group="gobot")}))
    models = dict(HookCaller(plugin_set.pm).collect_sync("gobot_config_model"))
    names = {(plugin, name) for plugin, model in models.items() for name, field in model.model_fields.items()
             if not field.exclude}
    names |= {("core", name) for section in Settings.model_fields.values()
              if isinstance(section.annotation, type) and hasattr(section.annotation, "model_fields")
              for name in section.annotation.model_fields}
    assert ("vision", "max_tokens_per_day") in names
    assert [n for n in names if _SECRET_KEY_PATTERN.search(n[1])] == []


def test_init_writes_no_webhook_url_key(tmp_path):
    result = CliRunner().invoke(cli, ["init", "--stdout", "-p", "webhook"])
    section = result.output.split("[plugins.webhook]")[1]
    assert "\nurl" not in section and "format = " in section
