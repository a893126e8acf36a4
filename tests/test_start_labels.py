"""`gobot start` says which mode really runs, and a start-up refusal is one line (issue 15, finding 8).

A testnet run without ``--live`` sends real testnet orders: it must say ``testnet``, never
``paper``. A plugin that refuses to start (keys missing, ``mode = "live"`` without ``--live``) is a
refusal, not a crash: one line on stderr naming the plugin and the fix, exit status 2. Through the
real CLI in a subprocess, with the binance plugin against the Binance test server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot_hookspecs import hookimpl
from servers.binance import API_KEY, API_SECRET, BinanceTestServer

KEYS = {"BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET}


@pytest.fixture
def server():
    with BinanceTestServer() as running:
        yield running


def binance_config(tmp_path, server, mode: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'''state_dir = "state"
[orchestrator]
loop_interval = 60
[trading]
symbols = ["BTC/USDT"]
[plugins]
enable = ["binance", "adaptive_rate_limit"]
disable = ["replay", "sma_rsi", "adjuster", "validator", "archiver", "kelly_size"]
[plugins.binance]
mode = "{mode}"
api_url = "{server.url}"
timeframe = "1m"
lookback_candles = 30
''', encoding="utf-8")
    return str(path)


def gobot(*args: str, cwd, keys: bool) -> subprocess.CompletedProcess:
    """``gobot ARGS`` in a subprocess, as a user runs it; the exchange keys only when ``keys``."""
    environment = {k: v for k, v in os.environ.items() if k not in ("GOBOT_CONFIG", *KEYS)}
    environment["COLUMNS"] = "200"
    if keys:
        environment.update(KEYS)
    return subprocess.run([sys.executable, "-m", "gobot", *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=120)


def audit(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]


def test_a_testnet_run_without_live_says_testnet_never_paper(tmp_path, server):
    done = gobot("start", "--config", binance_config(tmp_path, server, "testnet"), "--max-iterations", "1", "--quiet",
                 cwd=tmp_path, keys=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith(": testnet mode, plugins: adaptive_rate_limit, binance, "
                                                "circuit_breaker, console, drift, paper, risk_limits")
    assert "gobot testnet: run " in done.stderr  # the run_started alert
    assert "paper mode" not in done.stdout + done.stderr and "gobot paper" not in done.stdout + done.stderr
    assert [e["mode"] for e in audit(tmp_path) if e["event"] == "run_started"] == ["testnet"]


def test_binance_paper_mode_still_says_paper(tmp_path, server):
    done = gobot("start", "--config", binance_config(tmp_path, server, "paper"), "--max-iterations", "1", "--quiet",
                 cwd=tmp_path, keys=False)
    assert done.returncode == 0, done.stderr
    assert ": paper mode, plugins: " in done.stdout.splitlines()[0]
    assert "gobot paper: run " in done.stderr


@pytest.mark.parametrize("mode, keys, line", [
    ("testnet", False, "Error: plugin 'binance' in gobot_startup: start-up failed: [plugins.binance] mode = testnet "
                       "needs BINANCE_API_KEY and BINANCE_API_SECRET in the environment"),
    ("live", True, "Error: plugin 'binance' in gobot_startup: start-up failed: [plugins.binance] mode = live needs "
                   "`gobot start --live`"),
], ids=["testnet-without-keys", "live-without---live"])
def test_a_start_up_refusal_is_one_line_naming_plugin_and_fix_and_exit_status_2(tmp_path, server, mode, keys, line):
    done = gobot("start", "--config", binance_config(tmp_path, server, mode), "--max-iterations", "1", cwd=tmp_path,
                 keys=keys)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [line]
    assert done.stdout == ""  # no "Run ...: ... mode" line for a run that never started
    events = audit(tmp_path)
    assert [e["plugin"] for e in events if e["event"] == "start_refused"] == ["binance"]
    assert not [e for e in events if e["event"] in ("alert", "run_started", "run_stopped")]  # a refusal, not a crash


def test_the_replay_demo_says_paper(tmp_path, synthetic_data_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("GOBOT_CONFIG", *KEYS):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "config.toml"
    path.write_text(f'state_dir = "state"\n[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["start", "--config", str(path), "--max-iterations", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert ": paper mode, plugins: " in result.output


class SaysLive:
    """An exchange plugin of the old contract: it answers "live" whatever the mode."""

    @hookimpl
    def gobot_environment(self):
        return "live"


class SaysTestnet:
    @hookimpl
    def gobot_environment(self):
        return "testnet"


def test_without_live_no_run_is_called_live(replay_bot):
    assert replay_bot(plugins=[("exchange", SaysLive())]).environment == "paper"
    assert replay_bot(plugins=[("exchange", SaysTestnet())]).environment == "testnet"
    assert replay_bot(plugins=[("exchange", SaysLive())], state_dir=None, live=True, fresh=True).environment == "live"
