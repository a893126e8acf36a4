"""One CLI convention (issue 17), checked over every command gobot has — its own and the enabled
plugins' — found by walking click's command tree, so a new command is covered without a new test.

Exit status: 0 success, 1 runtime failure, 2 usage or configuration error (a refusal included).
Every command: ``--help`` exits 0; an unknown option exits 2; a command that reads the config
exits 2 with one line (no traceback) when the config has a bad key; and where a runtime failure
can be provoked cheaply, it exits 1.
"""

from __future__ import annotations

import sys

import click
import pytest
from click.testing import CliRunner

from gobot.cli import cli, main

#: Values for required options and arguments, so a command gets as far as reading its config.
SAMPLES = {"symbols": "BTC/USDT", "since": "2025-01-01", "start": "2025-01-01", "reason": "test", "name": "probe",
           "kind": "signal"}

#: Commands that read the config and whose job is to judge it: every problem on its own line (not
#: one "Error:" line), exit status 2 like any command given that config.
JUDGES_THE_CONFIG = {("config", "check")}


def walk(group: click.Group, ctx: click.Context,
         path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += walk(command, click.Context(command, parent=ctx, info_name=name), (*path, name))
    return found


def _every_builtin_enabled() -> str:
    """A config file enabling every plugin shipped with gobot, so the commands they add are walked too."""
    import tempfile
    from pathlib import Path

    from gobot.host.plugin_manager import CORE_DISTRIBUTION, entry_points

    names = sorted({ep.name for ep in entry_points() if ep.dist is not None and ep.dist.name == CORE_DISTRIBUTION})
    import atexit
    import shutil

    folder = tempfile.mkdtemp(prefix="gobot-cli-walk-")
    atexit.register(shutil.rmtree, folder, True)
    path = Path(folder) / "config.toml"
    path.write_text(f"[plugins]\nenable = {names!r}\n".replace("'", '"'), encoding="utf-8")
    return str(path)


#: $GOBOT_CONFIG while walking and invoking: plugin commands are found from it.
EVERY_PLUGIN = _every_builtin_enabled()


def commands() -> list[tuple[tuple[str, ...], click.Command]]:
    with CliRunner().isolation(env={"GOBOT_CONFIG": EVERY_PLUGIN}):
        return walk(cli, click.Context(cli, info_name="gobot"))


COMMANDS = commands()
IDS = [" ".join(path) for path, _ in COMMANDS]


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``gobot ARGS`` through ``main`` (what the shell sees), in this process: (status, stdout, stderr)."""
    runner = CliRunner()
    with runner.isolation(env=env) as (out, err, _mixed):
        argv, sys.argv = sys.argv, ["gobot", *args]
        try:
            main()
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        finally:
            sys.argv = argv
            sys.stdout.flush()
            sys.stderr.flush()
        return code, out.getvalue().decode(), err.getvalue().decode()


def reads_config(command: click.Command) -> bool:
    return any(param.name == "config_path" for param in command.params)


def required(command: click.Command) -> list[str]:
    """The least arguments that let the command parse: its required options and arguments."""
    args: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        assert param.name in SAMPLES, f"add a sample value for {param.name!r} to SAMPLES"
        args += [SAMPLES[param.name]] if isinstance(param, click.Argument) else [param.opts[-1], SAMPLES[param.name]]
    return args


@pytest.fixture(autouse=True)
def empty_folder(tmp_path, monkeypatch):
    for name in ("GOBOT_CONFIG", "BINANCE_API_KEY", "BINANCE_API_SECRET", "OPENAI_API_KEY", "TELEGRAM_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def broken_config(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('state_dir = "state"\n[orchestrator]\nloop_intervall = 60\n', encoding="utf-8")
    return path


def test_the_walk_finds_every_command():
    names = set(IDS)
    assert {"start", "status", "kill", "state restore", "data download", "data synth", "risk status", "risk reset",
            "alerts test", "alerts kinds", "plugins new", "config check", "backtest", "optimize", "watchdog", "report",
            "vision", "vision replay"} <= names  # report: the archiver's (on by default); vision: off by default


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=IDS)
def test_help_exits_0(path):
    code, out, err = invoke(*path, "--help", env={"GOBOT_CONFIG": EVERY_PLUGIN})
    assert code == 0, err
    assert out.startswith("Usage: ") and f"{' '.join(path)} [OPTIONS]" in out.splitlines()[0]


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=IDS)
def test_an_unknown_option_exits_2(path):
    code, _out, err = invoke(*path, "--no-such-option", env={"GOBOT_CONFIG": EVERY_PLUGIN})
    assert code == 2, err
    assert "No such option '--no-such-option'" in err and "Traceback" not in err


CONFIG_READERS = [(p, c) for p, c in COMMANDS if reads_config(c) and p not in JUDGES_THE_CONFIG]


@pytest.mark.parametrize("path,command", CONFIG_READERS, ids=[" ".join(p) for p, _ in CONFIG_READERS])
def test_a_bad_config_key_exits_2_with_one_line(path, command, broken_config):
    code, _out, err = invoke(*path, "--config", str(broken_config), *required(command),
                             env={"GOBOT_CONFIG": EVERY_PLUGIN})
    assert code == 2, err
    assert err.splitlines() == [f"Error: {broken_config}:orchestrator.loop_intervall: unknown key — fix: did you mean "
                                "'loop_interval'? (known keys: see `gobot init`)"] or (
        len(err.splitlines()) == 1
        and err.startswith(f"Error: {broken_config}:orchestrator.loop_intervall: unknown key")), err


@pytest.mark.parametrize("path,command", CONFIG_READERS, ids=[" ".join(p) for p, _ in CONFIG_READERS])
def test_a_bad_config_from_the_environment_exits_2_with_one_line(path, command, broken_config):
    code, _out, err = invoke(*path, *required(command), env={"GOBOT_CONFIG": str(broken_config)})
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith(
        f"Error: {broken_config}:orchestrator.loop_intervall: unknown key"), err


def test_config_check_lists_every_problem_and_exits_2(broken_config):
    code, out, err = invoke("config", "check", "--config", str(broken_config))
    assert code == 2 and "loop_intervall" in out + err


# -- runtime failures: exit status 1 ---------------------------------------------------------------


def _existing_plugin_folder(tmp_path):
    from gobot.cli.scaffold import Scaffold

    (tmp_path / Scaffold("probe", "signal").distribution).mkdir()
    return ("plugins", "new", "probe", "--kind", "signal")


RUNTIME_FAILURES = {
    "validate": lambda tmp_path: ("validate",),  # no testnet history: not ready
    "alerts test": lambda tmp_path: ("alerts", "test", "--disable", "console"),  # no channel delivered anything
    "watchdog": lambda tmp_path: ("watchdog", "--once"),  # no heartbeat
    "report": lambda tmp_path: ("report", "--database-url", f"sqlite:///{tmp_path / 'none.db'}"),  # no archive
    # the exchange is unreachable: a plugin failing at work, not a set-up problem
    "data download": lambda tmp_path: ("data", "download", "--symbol", "BTC/USDT", "--from", "2025-01-01",
                                       "--to", "2025-01-02", "--api-url", "http://127.0.0.1:9",
                                       "--out", str(tmp_path / "data")),
}


def test_refusing_to_overwrite_is_a_refusal_and_exits_2(tmp_path):
    """`gobot init` on an existing config.toml and `gobot plugins new` on an existing folder refuse,
    as `gobot start` refuses with the kill switch on: what was asked cannot be done as asked."""
    (tmp_path / "config.toml").write_text("# mine\n", encoding="utf-8")
    for command in (("init", "--config", str(tmp_path / "config.toml")), _existing_plugin_folder(tmp_path)):
        code, out, err = invoke(*command)
        assert code == 2 and ("exists" in err) and "Traceback" not in out + err, (command, out, err)


@pytest.mark.parametrize("name", sorted(RUNTIME_FAILURES))
def test_a_runtime_failure_exits_1(name, tmp_path):
    assert name in IDS, f"{name} is no longer a command"
    code, out, err = invoke(*RUNTIME_FAILURES[name](tmp_path))
    assert code == 1, out + err
    assert "Traceback" not in out + err


def test_a_plugin_failing_at_work_is_1_and_failing_to_set_up_is_2():
    from gobot.cli import exit_status
    from gobot.errors import ConfigError, ConfigProblem, PluginError, StartRefused

    assert exit_status(PluginError("binance", "ExchangeNotAvailable", hook="gobot_download_candles")) == 1
    assert exit_status(PluginError("binance", "ExchangeNotAvailable", hook="gobot_execute_order")) == 1
    assert exit_status(PluginError("binance", "start-up failed: no keys", hook="gobot_startup")) == 2
    assert exit_status(PluginError("crasher", "import failed")) == 2
    assert exit_status(PluginError("broken", "ImportError: numpy missing", hook="gobot_register_strategies")) == 2
    assert exit_status(PluginError("broken", "ZeroDivisionError: no equity", hook="gobot_size_position")) == 1
    assert exit_status(ConfigError([ConfigProblem("c.toml", "x", "unknown key")])) == 2
    assert exit_status(StartRefused("the kill switch is on")) == 2


def test_a_full_disk_is_a_runtime_failure(tmp_path, monkeypatch):
    import errno

    from gobot.cli import control

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "state" / "KILL"))

    monkeypatch.setattr(control, "ensure_private_dir", full)
    code, _out, err = invoke("kill")
    assert code == 1 and err.startswith(f"Error: {tmp_path / 'state' / 'KILL'}: No space left on device"), err
    assert len(err.splitlines()) == 1


def test_an_unknown_command_with_a_broken_config_names_the_config_problem(broken_config):
    code, _out, err = invoke("report", env={"GOBOT_CONFIG": str(broken_config)})
    assert code == 2 and err.startswith(f"Error: {broken_config}:orchestrator.loop_intervall: unknown key"), err


# -- one name per idea ---------------------------------------------------------------------------------

#: A synonym may only be an alias of the one name gobot uses for the idea.
SYNONYMS = {"--since": "--from", "--until": "--to", "--start": "--from", "--end": "--to", "--begin": "--from",
            "--listen": "--host", "--bind": "--host", "--conf": "--config", "--config-file": "--config"}


@pytest.mark.parametrize("path,command", COMMANDS, ids=IDS)
def test_one_name_per_idea(path, command):
    for param in command.params:
        names = [name for name in param.opts if name.startswith("--")]
        for name in names:
            if name in SYNONYMS:
                assert SYNONYMS[name] in names, (f"{' '.join(path)}: {name} without {SYNONYMS[name]}, "
                                                 f"gobot's name for it")


def test_data_download_keeps_since_and_until_as_aliases():
    [command] = [c for p, c in COMMANDS if p == ("data", "download")]
    options = {p.name: p.opts for p in command.params}
    assert options["since"][:2] == ["--from", "--since"] and options["until"][:2] == ["--to", "--until"]


# -- shell completion (docs/operations.md) -------------------------------------------------------------


def test_clicks_shell_completion_completes_commands_plugin_commands_and_options(tmp_path):
    import os
    import subprocess
    from pathlib import Path

    gobot = str(Path(sys.executable).parent / "gobot")
    env = {k: v for k, v in os.environ.items() if k != "GOBOT_CONFIG"}
    script = subprocess.run([gobot], env={**env, "_GOBOT_COMPLETE": "bash_source"}, capture_output=True, text=True,
                            cwd=tmp_path)
    assert script.returncode == 0 and "_gobot_completion()" in script.stdout

    def complete(words: str) -> list[str]:
        done = subprocess.run([gobot], capture_output=True, text=True, cwd=tmp_path,
                              env={**env, "_GOBOT_COMPLETE": "bash_complete", "COMP_WORDS": words,
                                   "COMP_CWORD": str(len(words.split()) - 1)})
        assert done.returncode == 0, done.stderr
        return [line.split(",", 1)[1] for line in done.stdout.splitlines()]

    assert complete("gobot re") == ["report", "resume"]  # `report` is the archiver plugin's
    assert complete("gobot data download --f") == ["--from"]
