"""The operator's commands end to end: start, status, kill/resume, pause/unpause."""

import json

from click.testing import CliRunner

from gobot.cli import cli
from gobot.errors import StartRefused


def config_file(tmp_path, data_dir):
    path = tmp_path / "config.toml"
    path.write_text(f'state_dir = "state"\n[plugins.replay]\ndata_dir = "{data_dir}"\n')
    return str(path)


def test_start_prints_the_cycle_table_and_summary(tmp_path, synthetic_data_dir):
    result = CliRunner().invoke(cli, ["start", "--config", config_file(tmp_path, synthetic_data_dir),
                                      "--max-iterations", "30"])
    assert result.exit_code == 0, result.output
    assert "per cycle" in result.output and "Summary (max_iterations (30) reached): 30 cycles" in result.output
    assert "win rate" in result.output and "max drawdown" in result.output


def test_status_reports_the_run(tmp_path, synthetic_data_dir):
    config = config_file(tmp_path, synthetic_data_dir)
    runner = CliRunner()
    assert json.loads(runner.invoke(cli, ["status", "--config", config, "--json"]).output)["run"] is None
    runner.invoke(cli, ["start", "--config", config, "--max-iterations", "4", "--quiet"])
    status = json.loads(runner.invoke(cli, ["status", "--config", config, "--json"]).output)
    assert status["iteration"] == 4 and status["finished"]
    assert status["last_cycle"]["iteration"] == 4 and set(status["last_cycle"]["phase_ms"]) >= {"scan", "report"}
    human = " ".join(runner.invoke(cli, ["status", "--config", config]).output.split())
    assert "after 4 cycles" in human and "Last cycle #4" in human


def test_kill_refuses_start_until_resume(tmp_path, synthetic_data_dir):
    config = config_file(tmp_path, synthetic_data_dir)
    runner = CliRunner()
    assert "Kill switch on" in runner.invoke(cli, ["kill", "--config", config]).output
    refused = runner.invoke(cli, ["start", "--config", config, "--max-iterations", "2"])
    assert isinstance(refused.exception, StartRefused) and "gobot resume" in str(refused.exception)
    assert "removed" in runner.invoke(cli, ["resume", "--config", config]).output
    assert runner.invoke(cli, ["start", "--config", config, "--max-iterations", "2", "--quiet"]).exit_code == 0


def test_pause_and_unpause(tmp_path, synthetic_data_dir):
    config = config_file(tmp_path, synthetic_data_dir)
    runner = CliRunner()
    runner.invoke(cli, ["pause", "--config", config])
    assert json.loads(runner.invoke(cli, ["status", "--config", config, "--json"]).output)["paused"] is True
    runner.invoke(cli, ["start", "--config", config, "--max-iterations", "25", "--quiet"])
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["trades"] == [] and state["positions"] == {}
    runner.invoke(cli, ["unpause", "--config", config])
    assert json.loads(runner.invoke(cli, ["status", "--config", config, "--json"]).output)["paused"] is False


def test_a_built_in_is_replaced_from_the_command_line(tmp_path, synthetic_data_dir, installed_plugin):
    """`gobot start --disable fixed_size -p half_size`: the third-party sizer answers instead."""
    import os
    import subprocess
    import sys

    site = installed_plugin("half_size", '''
        from gobot_hookspecs import hookimpl

        @hookimpl
        def gobot_size_position(ctx):
            return ctx.config.trading.max_position_usd / 2
    ''')
    env = {**os.environ, "PYTHONPATH": str(site)}
    config = config_file(tmp_path, synthetic_data_dir)
    done = subprocess.run([sys.executable, "-m", "gobot", "start", "--config", config, "--max-iterations", "30",
                           "--quiet", "--disable", "fixed_size", "-p", "half_size"], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    notionals = [t["amount"] * t["entry_price"] for t in state["trades"]]
    assert notionals and all(abs(n - 5.0) < 0.05 for n in notionals), notionals


def test_start_host_and_port_choose_where_the_server_listens(tmp_path, synthetic_data_dir, monkeypatch):
    """`gobot start --serve --host ADDR --port N` (--host or --port alone imply --serve)."""
    import socket

    monkeypatch.delenv("GOBOT_DASHBOARD_TOKEN", raising=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = config_file(tmp_path, synthetic_data_dir)
    result = CliRunner().invoke(cli, ["start", "--config", config, "--host", "127.0.0.1", "--port", str(port),
                                      "--max-iterations", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"Dashboard: http://127.0.0.1:{port}/" in result.stderr
    public = CliRunner().invoke(cli, ["start", "--config", config, "--serve", "--host", "0.0.0.0",
                                      "--max-iterations", "2"])
    assert public.exit_code != 0 and "GOBOT_DASHBOARD_TOKEN" in str(public.exception)
    assert CliRunner().invoke(cli, ["start", "--config", config, "--port", "70000"]).exit_code == 2
