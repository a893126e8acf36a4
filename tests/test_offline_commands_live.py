"""Offline operator commands with a live configuration (``[plugins.binance] mode = "live"``): they read
or reset the persisted state and open no exchange session, so they need neither ``--live`` nor the
keys; ``gobot start`` still refuses real orders without ``--live`` and the keys from the environment.

The exchange in the configuration is a closed port: a command that tried to reach it would fail."""

from __future__ import annotations

import json
import socket
import textwrap

import pytest
from click.testing import CliRunner

from gobot.cli import cli, exit_status
from risk_helpers import DESIGN_BREAKER, notify, trade
from servers.binance import BinanceTestServer
from servers.bots import binance_bot


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_config(tmp_path, monkeypatch):
    """A hard-stopped circuit breaker persisted by a (never started) binance bot, and a live config for it."""
    for key in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "GOBOT_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    server = BinanceTestServer()  # only its address: never started
    bot = binance_bot(tmp_path / "state", server, config={"plugins": {"circuit_breaker": DESIGN_BREAKER}})
    for _ in range(5):
        notify(bot, "gobot_on_trade_closed", trade=trade(pnl=-1.0, closed_at=bot.clock.now()))
    bot.persist()
    breaker = "".join(f"{k} = {v}\n" for k, v in DESIGN_BREAKER.items())
    path = tmp_path / "live.toml"
    path.write_text(textwrap.dedent("""
        state_dir = "state"
        [trading]
        symbols = ["BTC/USDT"]
        max_position_usd = 100
        initial_capital_usd = 10000
        [plugins]
        enable = ["binance", "adaptive_rate_limit"]
        disable = ["replay", "sma_rsi", "adjuster", "validator", "archiver", "kelly_size", "charts", "vision"]
        [plugins.risk_limits]
        low_liquidity_hours = []
        [plugins.binance]
        mode = "live"
    """) + f'api_url = "http://127.0.0.1:{closed_port()}"\n[plugins.circuit_breaker]\n{breaker}', encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_risk_reset_with_a_live_config_resets_the_state_without_an_exchange_session(tmp_path, live_config):
    result = invoke("risk", "reset", "--config", str(live_config), "--reason", "reviewed the five losses")
    assert result.exit_code == 0, result.output
    assert "circuit_breaker: HARD_STOP -> CLOSED" in result.output
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["plugin_state"]["circuit_breaker"]["state"] == "CLOSED"
    events = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    assert [e["reason"] for e in events if e["event"] == "risk_reset"] == ["reviewed the five losses"]
    assert "risk_reset" in [e["alert"]["kind"] for e in events if e["event"] == "alert"]
    assert not [e for e in events if e["event"] == "binance_reconciled"], "no exchange session was opened"


@pytest.mark.parametrize("args", [["risk", "status", "--json"], ["status", "--json"]])
def test_status_commands_with_a_live_config_read_the_state(live_config, args):
    result = invoke(*args, "--config", str(live_config))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)


@pytest.mark.parametrize("args", [["validate", "--json"], ["validate", "--live", "--json"]])
def test_validate_with_a_live_config_judges_the_state(live_config, args):
    result = invoke(*args, "--config", str(live_config))
    assert result.exit_code == 1, result.output  # not ready: a report, not a refusal to run
    assert json.loads(result.output)


def test_start_with_the_same_live_config_still_needs_live_and_the_keys(live_config):
    refused = invoke("start", "--config", str(live_config), "--max-iterations", "1").exception
    assert "mode = live needs `gobot start --live`" in str(refused) and exit_status(refused) == 2
    refused = invoke("start", "--live", "--skip-validation", "--config", str(live_config),
                     "--max-iterations", "1").exception
    assert "BINANCE_API_KEY, BINANCE_API_SECRET in the environment" in str(refused) and exit_status(refused) == 2
