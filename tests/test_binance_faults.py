"""The binance plugin when the exchange misbehaves: never a duplicate, never a lost order.

Timeouts, dropped connections and 5xx answers are ambiguous (the order may exist), so the plugin
looks the order up by its client order id before sending again; the test server, like Binance,
accepts a repeated client order id once the first order is filled, so only that look prevents a
double execution. 429 backs off, 418 halts with a CRITICAL alert and a ``banned`` execution error,
and a restart after a crash in the middle of a cycle reconciles and re-runs it without a duplicate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gobot_hookspecs import Action
from servers.binance import API_KEY, API_SECRET, BinanceTestServer, Fault
from servers.bots import Ideas, Recorder, binance_bot, keys
from servers.bots import run_cycles as run

ORDER = "/api/v3/order"


@pytest.fixture
def server():
    with BinanceTestServer() as running:
        yield running


def entries(server) -> list[dict]:
    return [o for o in server.filled_orders("BTCUSDT") if o["side"] == "BUY"]


def test_a_timeout_then_a_retry_places_no_duplicate(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    # The exchange executes the order 0.6 s late; the client gave up after 0.3 s.
    server.inject(Fault(path=ORDER, method="POST", action="delay", delay=0.6))
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}), request_timeout=0.3)
    run(bot, 2)
    assert len(entries(server)) == 1
    # found by its client order id; the fee (paid in BTC) comes from the order's trades
    assert len(bot.state.positions) == 1 and bot.state.positions["BTC/USDT"].amount == pytest.approx(0.002 - 0.000002)


@pytest.mark.parametrize("fault", [
    Fault(path=ORDER, method="POST", action="drop", when="after"),
    Fault(path=ORDER, method="POST", action="status", status=503, when="after"),
    Fault(path=ORDER, method="POST", action="status", status=503, text=True, when="after"),
    Fault(path=ORDER, method="POST", action="status", status=502, when="before"),
    Fault(path=ORDER, method="POST", action="drop", when="before"),
], ids=["dropped-after", "503-json-after", "503-text-after", "502-json-before", "dropped-before"])
def test_dropped_connections_and_5xx_recover_with_exactly_one_order(tmp_path, server, monkeypatch, fault):
    keys(monkeypatch)
    server.inject(fault)
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}))
    reports = run(bot, 2)
    assert len(entries(server)) == 1
    assert [o.status for o in reports[0].orders] == ["filled"]
    assert "BTC/USDT" in bot.state.positions
    assert server.count("POST", ORDER) == 1  # processed once (a request that never arrived was sent again)


def test_an_order_that_could_not_be_confirmed_is_found_and_reported_next_cycle(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    # The order executes but its answer is lost, and every look-up fails during this cycle.
    server.inject(Fault(path=ORDER, method="POST", action="drop", when="after"),
                  # after the first look
                  Fault(path=ORDER, method="GET", action="drop", when="before", times=20, skip=1))
    recorder = Recorder()
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}), recorder=recorder,
                      max_attempts=2)

    def heal(i):
        server.faults.clear()

    reports = run(bot, 2, heal)
    assert reports[0].orders == [] and [e.kind for e in recorder.errors] == ["network"]
    assert any(a.kind == "execution_error" and a.severity.value == "CRITICAL" for a in recorder.alerts)
    assert len(entries(server)) == 1
    assert [f.client_order_id for f in reports[1].fills] == [entries(server)[0]["clientOrderId"]]
    assert "BTC/USDT" in bot.state.positions  # not lost


@pytest.mark.parametrize("path, garble", [
    ("/api/v3/myTrades", lambda trades: [dict(t, commission="abc") for t in trades]),  # the BTC commission lost
    # in no asset the exchange lists
    ("/api/v3/myTrades", lambda trades: [dict(t, commissionAsset="abc") for t in trades]),
    ("/api/v3/myTrades", lambda trades: [dict(t, qty="1e30") for t in trades]),  # more filled than ordered
    (ORDER, lambda order: dict(order, cummulativeQuoteQty="1e30")),  # an average price of 5e32
], ids=["commission-unreadable", "commission-asset-unknown", "fill-larger-than-order", "absurd-price"])
def test_a_garbled_fill_is_asked_for_again_and_booked_once_as_it_happened(tmp_path, server, monkeypatch, path, garble):
    """Found by the answer fuzz: a fill is booked only once its look-up adds up."""
    keys(monkeypatch)
    # The placing answer (which lists the commissions) is lost, so the fill comes from look-ups;
    # the first two readable answers of ``path`` are garbled (a GET of the order: after the look before sending).
    server.inject(Fault(path=ORDER, method="POST", action="drop", when="after"),
                  Fault(path=path, method="GET", action="mangle", callback=garble, times=2,
                        skip=1 if path == ORDER else 0))
    recorder = Recorder()
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}), recorder=recorder)
    reports = run(bot, 3)
    assert not server.faults, "the garbled answers were asked for"
    [entry] = entries(server)
    [fill] = [f for f in recorder.fills if f.client_order_id == entry["clientOrderId"]]
    assert fill.amount == pytest.approx(0.002 - 0.000002)  # the commission, paid in BTC, deducted
    assert fill.price == pytest.approx(float(entry["fills"][0]["price"]))
    assert [o.price for r in reports for o in r.orders] in ([None], [pytest.approx(fill.price)])
    position = bot.state.positions["BTC/USDT"]
    assert position.amount == pytest.approx(fill.amount) and position.entry_price == pytest.approx(fill.price)


@pytest.mark.parametrize("path, garble", [
    ("/api/v3/ticker/24hr", lambda t: dict(t, lastPrice="1e30")),
    ("/api/v3/depth", lambda d: dict(d, bids=[["60000", "1"]])),  # a crossed book
], ids=["ticker-absurd", "book-crossed"])
def test_market_answers_that_disagree_give_no_snapshot_and_no_trade(tmp_path, server, monkeypatch, path, garble,
                                                                    caplog):
    """Found by the answer fuzz: a close was once sent on a ticker price of 1e30."""
    keys(monkeypatch)
    server.inject(Fault(path=path, method="GET", action="mangle", callback=garble))
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}))
    reports = run(bot, 2)
    assert [len(r.orders) for r in reports] == [0, 1]  # the next, clean cycle trades
    assert "the answers disagree" in caplog.text


def test_a_fill_far_from_a_wrong_sent_price_is_believed_once_its_trades_agree(tmp_path, server, monkeypatch):
    """The other side of the check above: when the price an order was sent at was itself wrong
    (here ticker and order book agree on ten times the price), the real fill must not wait forever."""
    keys(monkeypatch)
    ideas, recorder = Ideas({"BTC/USDT": Action.LONG}), Recorder()
    bot = binance_bot(tmp_path / "state", server, ideas=ideas, recorder=recorder)

    def tenfold(i):
        if i == 0:  # the long is open: close it (spot SHORT) on prices ten times too high
            ideas.wanted["BTC/USDT"] = Action.SHORT
            server.inject(Fault(path="/api/v3/ticker/24hr", method="GET", action="mangle",
                                callback=lambda t: dict(t, lastPrice="500000")),
                          Fault(path="/api/v3/depth", method="GET", action="mangle",
                                callback=lambda d: dict(d, bids=[["499999", "1"]], asks=[["500001", "1"]])))

    reports = run(bot, 3, tenfold)
    [close] = [o for o in server.filled_orders("BTCUSDT") if o["side"] == "SELL"]
    [fill] = [f for f in recorder.fills if f.client_order_id == close["clientOrderId"]]
    assert bot.state.trades[-1].exit_price == pytest.approx(fill.price) == pytest.approx(50000, rel=0.01)
    # cycle 1 hears the entry's fill and sends the close; cycle 2 doubts its fill, asks its trades, believes it
    assert [[f.purpose for f in r.fills] for r in reports[1:]] == [["open"], ["close"]]
    assert "BTC/USDT" not in bot.state.positions


def test_a_429_backs_off_for_retry_after_and_the_bot_recovers(tmp_path, monkeypatch):
    keys(monkeypatch)
    with BinanceTestServer(window_seconds=1, weight_limit=400, ban_after_429s=5) as server:
        recorder = Recorder()
        bot = binance_bot(tmp_path / "state", server, recorder=recorder)

        def crowd(i):
            if i == 0:  # another program on this IP uses the whole window
                with server.lock:
                    window = server._weight["spot"]
                    now = time.time()
                    window.start, window.used = now - now % server.window_seconds, server.weight_limit

        run(bot, 3, crowd)
        assert server.status_counts.get(429, 0) >= 1
        assert bot.ctx.rate_limiter.stats["status_429"] >= 1
        assert any(a.kind == "rate_limited" for a in recorder.alerts)
        assert server.status_counts.get(418, 0) == 0  # it backed off instead of earning a ban
        assert len(bot.state.cycles) == 3


def test_a_418_halts_trading_alerts_and_reports_a_ban_the_circuit_breaker_hears(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    recorder = Recorder()
    ideas = Ideas()
    bot = binance_bot(tmp_path / "state", server, ideas=ideas, recorder=recorder)

    def ban(i):
        if i == 0:
            server.banned_until = time.time() + 30  # e.g. another bot on this IP got it banned
            ideas.wanted["BTC/USDT"] = Action.LONG

    reports = run(bot, 3, ban)
    assert server.status_counts.get(418, 0) >= 1
    assert [a for a in recorder.alerts if a.kind == "exchange_ban" and a.severity.value == "CRITICAL"]
    assert "banned" in [e.kind for e in recorder.errors]
    assert bot.state.plugin_state["circuit_breaker"]["state"] == "OPEN"  # the breaker heard it
    assert server.count("POST", ORDER) == 0  # nothing non-critical was sent during the ban
    assert all(not r.orders for r in reports)


RESTART_PLUGIN = textwrap.dedent(
    """
    from gobot_hookspecs import Action, Signal, hookimpl

    @hookimpl
    def gobot_generate_ideas(snapshots):
        return [Signal(symbol=s.symbol, action=Action.LONG, confidence=0.9) for s in snapshots]
    """
)


@pytest.mark.slow
def test_a_restart_after_a_crash_mid_order_reconciles_and_places_no_duplicate(tmp_path, server, installed_plugin):
    site = installed_plugin("always_long", RESTART_PLUGIN)
    config = tmp_path / "config.toml"
    config.write_text(textwrap.dedent(f"""
        state_dir = "state"
        [trading]
        symbols = ["BTC/USDT"]
        max_position_usd = 100
        initial_capital_usd = 10000
        [orchestrator]
        loop_interval = 1
        [plugins]
        enable = ["binance", "adaptive_rate_limit", "always_long"]
        disable = ["replay", "sma_rsi", "adjuster", "validator", "archiver", "kelly_size", "charts", "vision"]
        [plugins.risk_limits]
        max_total_exposure_usd = 1000
        low_liquidity_hours = []
        [plugins.binance]
        mode = "testnet"
        api_url = "{server.url}"
        timeframe = "1m"
        lookback_candles = 30
        recv_window_ms = 1000
        retry_backoff = 0.05
    """))
    env = os.environ | {"BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET,
                        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    gobot = [str(Path(sys.executable).parent / "gobot"), "start", "--config", str(config), "--max-iterations", "2",
             "--quiet"]
    # The first process sends the entry and its OCO, then dies before cycle 1 is persisted.
    crashed = subprocess.run(gobot, env=env | {"GOBOT_TEST_KILL_POINT": "before_persist:1"}, capture_output=True,
                             text=True, timeout=120)
    assert crashed.returncode == -9, crashed.stderr
    assert len(entries(server)) == 1 and len(server.open_orders()) == 2
    resumed = subprocess.run(gobot, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert len(entries(server)) == 1  # cycle 1 re-ran with the same client order id: found, not re-sent
    assert server.count("POST", "/api/v3/orderList/oco") == 1
    audit = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    differences = [e for e in audit if e["event"] == "binance_reconciled"][-1]["differences"]
    assert any("not in the bot's state" in d for d in differences)
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert list(state["positions"]) == ["BTC/USDT"]
