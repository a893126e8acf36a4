"""The command line as a user meets it: fast help, an honest plugin list, and refusals that are
one readable line (exit status 2), never a traceback."""

import json
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot.errors import StartRefused
from gobot.host.plugin_manager import DEFAULT_PLUGINS

CRASHES_ON_IMPORT = 'raise RuntimeError("cannot reach the exchange at import time")\n'


@pytest.fixture(autouse=True)
def no_config_around(tmp_path, monkeypatch):
    """Each test runs in an empty folder, with no $GOBOT_CONFIG and no exchange keys."""
    for name in ("GOBOT_CONFIG", "BINANCE_API_KEY", "BINANCE_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def config(tmp_path, synthetic_data_dir):
    """A config file whose state and data live in this test's folders; extra TOML may follow."""

    def write(extra: str = "") -> str:
        path = tmp_path / "config.toml"
        path.write_text(f'state_dir = "state"\n{extra}\n[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n',
                        encoding="utf-8")
        return str(path)

    return write


def gobot(*args: str, cwd, pythonpath=None, env=None) -> subprocess.CompletedProcess:
    """``gobot ARGS`` in a subprocess, as a user runs it (through ``main``, wide terminal)."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("GOBOT_CONFIG", "BINANCE_API_KEY", "BINANCE_API_SECRET")}
    environment["COLUMNS"] = "200"
    if pythonpath:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), environment.get("PYTHONPATH")]))
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "gobot", *args], cwd=cwd, env=environment, capture_output=True,
                          text=True)


# -- help -----------------------------------------------------------------------------------


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("start", "status", "plugins", "init", "config", "kill", "resume", "pause", "unpause", "data"):
        assert f"\n  {command} " in result.output


def test_help_imports_no_heavy_module(tmp_path):
    code = (
        "import sys\n"
        "from gobot.cli import cli\n"
        "try:\n"
        "    cli.main(['--help'], prog_name='gobot')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = ('gobot.run.bot', 'rich', 'apscheduler')\n"
        "print('LOADED', sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Commands:" in done.stdout
    assert done.stdout.splitlines()[-1] == "LOADED []"


def test_plugin_commands_appear_without_reloading_the_cli(tmp_path, installed_plugin):
    installed_plugin(
        "hello",
        """
        import click
        from gobot_hookspecs import hookimpl

        @hookimpl
        def gobot_register_commands(cli):
            @cli.command()
            def hello():
                "Say hello."
                click.echo("hello from a plugin")
        """,
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["hello"]).exit_code == 2  # not enabled yet: no such command
    (tmp_path / "config.toml").write_text('[plugins]\nenable = ["hello"]\n', encoding="utf-8")
    assert re.search(r"^  hello +Say hello\.$", runner.invoke(cli, ["--help"]).output, re.MULTILINE)
    assert runner.invoke(cli, ["hello"]).output == "hello from a plugin\n"


def test_a_commands_exit_status_reaches_the_shell(tmp_path, installed_plugin):
    site = installed_plugin(
        "doctor",
        """
        import click
        from gobot_hookspecs import hookimpl

        @hookimpl
        def gobot_register_commands(cli):
            @cli.command()
            @click.pass_context
            def doctor(ctx):
                "Exit 3 when unhealthy."
                ctx.exit(3)
        """,
    )
    (tmp_path / "config.toml").write_text('[plugins]\nenable = ["doctor"]\n', encoding="utf-8")
    assert gobot("doctor", cwd=tmp_path, pythonpath=site).returncode == 3


# -- gobot plugins ----------------------------------------------------------------------------


def test_plugins_json_lists_every_builtin_with_status_distribution_and_hooks():
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert set(DEFAULT_PLUGINS) <= set(rows)
    for name in DEFAULT_PLUGINS:
        assert rows[name]["status"] == "enabled"
        assert rows[name]["distribution"] == "gobot-trading"
        assert all(hook.startswith("gobot_") for hook in rows[name]["hooks"]) and rows[name]["hooks"]
    assert "gobot_risk_check" in rows["risk_limits"]["hooks"]


def test_plugins_json_shows_what_disable_did():
    rows = {row["name"]: row
            for row in json.loads(CliRunner().invoke(cli, ["plugins", "--json", "--disable", "console"]).output)}
    assert (rows["console"]["status"], rows["console"]["hooks"]) == ("disabled", [])


def test_plugins_reads_at_80_columns_when_not_on_a_terminal(tmp_path):
    """Piped (no terminal): every line within 80 columns, every hook whole on its own line."""
    done = gobot("plugins", cwd=tmp_path, env={"COLUMNS": "80"})  # what rich assumes with no terminal
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and max(len(line) for line in lines) <= 80
    shown = {cell.strip() for line in lines for cell in line.split("│") if cell.strip()}
    rows = json.loads(gobot("plugins", "--json", cwd=tmp_path).stdout)
    hooks = {h.removeprefix("gobot_") for row in rows for h in row["hooks"]}
    assert hooks <= shown  # none folded in the middle


def test_plugins_table_shows_a_failed_plugin_with_its_reason(tmp_path, installed_plugin):
    site = installed_plugin("crasher", CRASHES_ON_IMPORT, dist="gobot-crasher", version="0.2")
    done = gobot("plugins", "-p", "crasher", cwd=tmp_path, pythonpath=site)
    assert done.returncode == 0, done.stderr
    name, dist = [line for line in done.stdout.splitlines() if "crasher" in line]  # the distribution beneath the name
    assert "gobot-crasher 0.2" in dist
    assert "failed: import failed: RuntimeError: cannot reach the exchange at import time" in name
    assert "paper" in done.stdout  # the other plugins are still listed


# -- gobot start refusals ---------------------------------------------------------------------


def test_start_warns_about_a_section_no_plugin_reads_with_the_closest_name(tmp_path):
    (tmp_path / "config.toml").write_text('[orchestrator]\nmax_iterations = 1\n[plugins.telegarm]\nchat_id_env = "X"\n',
                                          encoding="utf-8")
    done = gobot("start", "--fresh", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert ("warning: config.toml:plugins.telegarm: no installed plugin has this name and the section is ignored "
            "— fix: did you mean 'telegram'? rename or remove it") in done.stderr



def test_start_with_a_broken_plugin_is_one_line_naming_plugin_and_distribution(tmp_path, config, installed_plugin):
    site = installed_plugin("crasher", CRASHES_ON_IMPORT, dist="gobot-crasher")
    path = config('[plugins]\nenable = ["crasher"]')
    done = gobot("start", "--config", path, "--max-iterations", "2", cwd=tmp_path, pythonpath=site)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "Error: plugin 'crasher' (distribution gobot-crasher): import failed: RuntimeError: "
        "cannot reach the exchange at import time"
    ]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state").exists()  # nothing started


def test_start_live_without_a_risk_plugin_is_refused(config):
    result = CliRunner().invoke(cli, ["start", "--config", config(), "--live", "--disable", "risk_limits",
                                       "--disable", "circuit_breaker", "--disable", "drift", "--max-iterations", "2"])
    assert isinstance(result.exception, StartRefused)
    assert "--live needs at least one enabled risk plugin" in str(result.exception)


def test_start_live_without_exchange_keys_names_them(config):
    result = CliRunner().invoke(cli, ["start", "--config", config(), "--live", "--max-iterations", "2"])
    assert isinstance(result.exception, StartRefused)
    assert str(result.exception) == ("--live needs BINANCE_API_KEY, BINANCE_API_SECRET in the environment "
                                     "(never in config.toml)")


def test_start_live_names_only_the_missing_key(config, monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", "test-key")
    result = CliRunner().invoke(cli, ["start", "--config", config(), "--live", "--max-iterations", "2"])
    assert "--live needs BINANCE_API_SECRET in the environment" in str(result.exception)


def test_start_refusal_is_one_line_and_exit_status_2(tmp_path, config):
    done = gobot("start", "--config", config(), "--live", "--max-iterations", "2", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["Error: --live needs BINANCE_API_KEY, BINANCE_API_SECRET in the environment "
                                        "(never in config.toml)"]


def test_start_paper_runs_the_requested_cycles(tmp_path, config):
    result = CliRunner().invoke(cli, ["start", "--config", config(), "--max-iterations", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Summary (max_iterations (2) reached): 2 cycles" in result.output
    assert (tmp_path / "state" / "state.json").exists()


def test_usage_errors_keep_clicks_exit_status(tmp_path):
    done = gobot("start", "--max-iterations", "-1", cwd=tmp_path)
    assert done.returncode == 2
    assert "Invalid value for '--max-iterations'" in done.stderr
    assert "Traceback" not in done.stderr
