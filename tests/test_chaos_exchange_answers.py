"""Malformed exchange answers never trade on bad data and never stop the loop.

One bot (the real ``binance`` plugin, ccxt and rate limiter) trades against the loopback Binance
server, LONG and SHORT in turn so every cycle sends an order. For each hypothesis case the server
answers one endpoint — market data, order placement, order lookup, positions, balances — with a
corrupted payload: a field dropped, a field of the wrong type, NaN, infinity, a negative or zero
number, or the whole body replaced. The order itself still happens on the exchange, as it would
when only the answer is garbled. After each corrupted cycle:

- the cycle finished (the loop goes on);
- every order the bot sent in it was priced from sane data (its reference price within 10% of the
  exchange's), every position it holds has a finite, positive amount and entry price, and its
  equity is finite;

and once the faults stop, a few clean cycles bring the bot's position back to the exchange's: no
order was lost or doubled. Cases: ``count(120, 1500)`` per market type.
"""

from __future__ import annotations

import asyncio
import copy
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos_support import FULL, count, record_figures
from gobot_hookspecs import Action, Signal, hookimpl

PRICE = 50000.0
LOT_STEP = 0.00001  # the loopback server's BTCUSDT lot step
ENDPOINTS = {
    "spot": [("GET", "/api/v3/klines"), ("GET", "/api/v3/ticker/24hr"), ("GET", "/api/v3/depth"),
             ("POST", "/api/v3/order"), ("GET", "/api/v3/order"), ("GET", "/api/v3/account"),
             ("GET", "/api/v3/myTrades"), ("GET", "/api/v3/openOrders"), ("POST", "/api/v3/orderList/oco")],
    "futures": [("GET", "/fapi/v1/klines"), ("GET", "/fapi/v1/ticker/24hr"), ("GET", "/fapi/v1/depth"),
                ("GET", "/fapi/v1/premiumIndex"), ("GET", "/fapi/v1/openInterest"), ("POST", "/fapi/v1/order"),
                ("GET", "/fapi/v1/order"), ("POST", "/fapi/v1/algoOrder"), ("GET", "/fapi/v1/algoOrder"),
                ("GET", "/fapi/v3/positionRisk")],
}
BAD_VALUES = [None, "", "abc", "NaN", float("nan"), float("inf"), -1, "-50000", 0, "0", 1e30, True, [], {}]

#: fees make every flip a small loss: the breaker (and the loss limits) would stop the trading this test needs
BREAKER_OFF = {"circuit_breaker_threshold": 10**6, "max_consecutive_losses": 10**6, "failure_threshold": 10**6}
bad_values = st.sampled_from(BAD_VALUES)
#: (path into the payload, what to do there): each int picks a child (modulo its size)
corruptions = st.one_of(
    st.tuples(st.lists(st.integers(0, 50), min_size=0, max_size=2), st.just("drop"), st.none()),
    st.tuples(st.lists(st.integers(0, 50), min_size=1, max_size=3), st.just("set"), bad_values),
    st.tuples(st.just([]), st.just("replace"), st.sampled_from([{}, [], None, "garbage", 0, {"code": 0}])),
)


def corrupt(payload: Any, corruption: tuple[list[int], str, Any]) -> Any:
    """``payload`` with one place corrupted (see ``corruptions``)."""
    path, action, value = corruption
    if action == "replace":
        return value
    payload = copy.deepcopy(payload)
    parent, key = None, None
    node = payload
    for choice in path:
        if isinstance(node, dict) and node:
            key = sorted(node)[choice % len(node)]
        elif isinstance(node, list) and node:
            key = choice % len(node)
        else:
            break
        parent, node = node, node[key]
    if parent is None:  # the top level itself
        if action == "drop" and isinstance(payload, list):
            return []
        return value if action == "set" else payload
    if action == "drop":
        del parent[key]
    else:
        parent[key] = value
    return payload


class Flip:
    """LONG on odd cycles, SHORT on even ones (every cycle sends an order); HOLD when ``holding``."""

    holding = False

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        action = Action.HOLD if self.holding else Action.LONG if ctx.iteration % 2 else Action.SHORT
        return [Signal(symbol=s.symbol, action=action, confidence=0.9, rationale="fuzz flip") for s in snapshots]


def sane(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


@pytest.mark.slow
@pytest.mark.parametrize("market", ["spot", "futures"])
def test_malformed_exchange_answers_never_trade_on_bad_data_nor_stop_the_loop(tmp_path, monkeypatch, market):
    from servers.binance import BinanceTestServer, Fault
    from servers.bots import Recorder, binance_bot, keys

    keys(monkeypatch)
    flip, recorder = Flip(), Recorder()
    figures = {"cases": 0, "answers corrupted": 0, "orders sent": 0}
    risk = {"symbol_cooldown_minutes": 0, "max_trades_per_day": 0, "low_liquidity_hours": [],
            "max_total_exposure_usd": 1000, "daily_loss_limit_usd": 10**6, "weekly_loss_limit_usd": 10**6}
    with BinanceTestServer() as server:
        bot = binance_bot(tmp_path / "state", server, ideas=flip, recorder=recorder, market=market, request_timeout=1,
                          recv_window_ms=300,
                          config={"plugins": {"risk_limits": risk, "circuit_breaker": BREAKER_OFF,
                                              # minutes of fuzzing send more than an hour's weight budget
                                              "adaptive_rate_limit": {"requests_per_hour": 10**7}}})
        loop = asyncio.new_event_loop()
        loop.run_until_complete(bot.startup())
        try:
            # make test: the same 120 cases every run (derandomized); make chaos: 1,500 new ones each time
            @settings(max_examples=count(120, 1500), deadline=None, suppress_health_check=list(HealthCheck),
                      database=None, derandomize=not FULL)
            @given(endpoint=st.sampled_from(ENDPOINTS[market]), corruption=corruptions, times=st.integers(1, 3))
            def one_cycle(endpoint, corruption, times):
                method, path = endpoint
                fault = Fault(path=path, method=method, action="mangle", times=times,
                              callback=lambda payload: corrupt(payload, corruption))
                server.inject(fault)
                try:
                    report = loop.run_until_complete(bot.run_cycle())  # raising here = the loop stopped
                finally:
                    with server.lock:
                        if fault in server.faults:
                            server.faults.remove(fault)
                figures["cases"] += 1
                figures["answers corrupted"] += fault.hits
                figures["orders sent"] += len(report.orders)
                for order in report.orders:
                    intent = bot.state.intents.get(order.client_order_id)
                    if intent is not None:  # opens and closes alike
                        assert sane(intent.reference_price) and abs(intent.reference_price / PRICE - 1) < 0.1, intent
                        assert sane(intent.amount), intent
                for position in bot.state.positions.values():
                    assert sane(position.amount) and sane(position.entry_price), position
                    assert abs(position.entry_price / PRICE - 1) < 0.1, position
                assert math.isfinite(bot.portfolio.equity())

            one_cycle()
            flip.holding = True  # the faults are over: the bot collects what it is owed
            for _ in range(4):
                loop.run_until_complete(bot.run_cycle())
        finally:
            loop.run_until_complete(bot.shutdown("fuzz over"))
            loop.close()
        position = bot.state.positions.get("BTC/USDT")
        in_state = 0.0 if position is None else position.amount * (1 if position.direction is Action.LONG else -1)
        # Every fill reported once: the fills the bot heard of add up to what the account holds.
        heard = sum(f.amount if f.side.value == "buy" else -f.amount for f in recorder.fills)
        on_exchange = float(server.position("BTCUSDT") if market == "futures" else server.balance("BTC"))
        discrepancy = abs(heard - on_exchange) > 1e-9
        if market == "futures":
            discrepancy |= abs(in_state - on_exchange) > 1e-9
        else:  # spot: a sell rounds down to the lot step, so a closed position may leave dust below one step
            discrepancy |= not 0 <= on_exchange - in_state < LOT_STEP * (len(bot.state.trades) + 1)
        coids = [o["clientOrderId"] for o in server.state.orders.values()]
    print(f"{market}: {figures}; position in state {in_state:g}, fills heard {heard:g}, "
          f"on the exchange {on_exchange:g}")
    record_figures(f"exchange answer fuzz ({market})", cases=figures["cases"], corrupted=figures["answers corrupted"],
                   orders=figures["orders sent"], trades_on_bad_data=0, discrepancies=int(discrepancy))
    assert len(coids) == len(set(coids)), "an order was placed twice"
    assert figures["answers corrupted"] >= figures["cases"] // 3  # the faults did land
    assert figures["orders sent"] >= figures["cases"] // 4  # and the bot kept trading through them
    assert not discrepancy, "the bot's position and the exchange's differ"

