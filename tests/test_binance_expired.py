"""A market order the exchange ends before all of it fills (Binance's EXPIRED: a thin book, no
liquidity, its time in force): what filled is the position with its exchange-side stop, the rest is
booked as ended with its cause, and the core stops waiting — at placement or at a later sync, on
spot and on USD-M futures. Each order is sent once (one client order id, one order on the exchange)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from gobot_hookspecs import Action, hookimpl
from servers.binance import BinanceTestServer
from servers.bots import Ideas, binance_bot, keys
from servers.bots import run_cycles as run
from test_binance_book import assert_books_agree


class Orders:
    """Every order the core hands to ``gobot_on_order`` (what the archive books: its first one per order)."""

    def __init__(self) -> None:
        self.seen: list = []

    @hookimpl
    def gobot_on_order(self, order):
        self.seen.append(order)


def audit(tmp_path, event: str) -> list[dict]:
    lines = (tmp_path / "state" / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == event]


def entry_orders(server: BinanceTestServer) -> list[dict]:
    with server.lock:
        return [dict(o) for o in server.state.orders.values() if o["type"] == "MARKET"]


def stop_quantities(server: BinanceTestServer, futures: bool) -> list[Decimal]:
    if futures:
        return [a["quantity"] for a in server.open_algo_orders() if a["orderType"] == "STOP_MARKET"]
    return [o["origQty"] for o in server.open_orders() if re.search(r"-sl\d*$", o["clientOrderId"])]


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_an_entry_that_expires_unfilled_is_booked_ended_and_the_next_signal_trades(tmp_path, monkeypatch, market):
    keys(monkeypatch)
    with BinanceTestServer() as server:
        server.fill_ratio = Decimal(0)  # no liquidity: the market order expires with nothing filled
        orders = Orders()
        ideas = Ideas({"BTC/USDT": Action.LONG})  # still wanted after the miss
        bot = binance_bot(tmp_path / "state", server, ideas=ideas, market=market, plugins=[("orders", orders)])
        after: dict = {}

        def between(i):
            if i == 0:
                after.update(intents=dict(bot.state.intents), open_orders=dict(bot.state.open_orders))
                server.fill_ratio = Decimal(1)

        run(bot, 3, between)
        assert after == {"intents": {}, "open_orders": {}}, "the core waits for nothing after the miss"
        missed, entered = entry_orders(server)
        assert missed["status"] == "EXPIRED" and entered["status"] == "FILLED"
        assert missed["clientOrderId"] != entered["clientOrderId"], "the new signal is a new order"
        assert [o.status for o in orders.seen if o.client_order_id == missed["clientOrderId"]] == ["canceled"]
        [booked] = [o for o in orders.seen if o.client_order_id == missed["clientOrderId"]]
        assert booked.reason == "expired on the exchange, nothing filled"
        [ended] = audit(tmp_path, "binance_order_ended")
        assert (ended["client_order_id"], ended["cause"], ended["filled"], ended["unfilled"]) == (
            missed["clientOrderId"], "expired", 0.0, 0.002)
        [core] = [e for e in audit(tmp_path, "order") if e["order"]["client_order_id"] == missed["clientOrderId"]]
        assert core["order"]["status"] == "canceled"
        assert bot.state.positions["BTC/USDT"].amount > 0 and len(stop_quantities(server, market == "futures")) == 1
        assert bot.state.intents == {} and bot.state.open_orders == {}
        assert_books_agree(bot, server, futures=market == "futures")


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_an_entry_that_partly_fills_then_expires_is_a_position_with_its_stop_and_the_rest_booked(tmp_path, monkeypatch,
                                                                                                 market):
    keys(monkeypatch)
    futures = market == "futures"
    with BinanceTestServer() as server:
        server.fill_ratio = Decimal("0.5")
        orders = Orders()
        ideas = Ideas({"BTC/USDT": Action.LONG})
        bot = binance_bot(tmp_path / "state", server, ideas=ideas, market=market, plugins=[("orders", orders)])

        def between(i):
            if i == 0:
                ideas.wanted.clear()
                server.fill_ratio = Decimal(1)

        run(bot, 3, between)
        [entry] = entry_orders(server)
        assert entry["status"] == "EXPIRED" and entry["executedQty"] == Decimal("0.001")
        held = bot.state.positions["BTC/USDT"].amount
        assert held == pytest.approx(0.001 if futures else 0.000999)  # spot: the commission is paid in BTC
        assert stop_quantities(server, futures) == [Decimal("0.001") if futures else Decimal("0.00099")]
        [booked] = [o for o in orders.seen if o.client_order_id == entry["clientOrderId"]]
        assert booked.status == "filled"
        assert booked.reason == "expired on the exchange with 0.001 of 0.002 filled, 0.001 not"
        [ended] = audit(tmp_path, "binance_order_ended")  # once, though the sync reads the same answer again
        assert (ended["cause"], ended["filled"], ended["unfilled"]) == ("expired", 0.001, 0.001)
        assert bot.state.intents == {} and bot.state.open_orders == {}
        assert_books_agree(bot, server, futures=futures)


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_an_entry_that_rests_then_expires_unfilled_is_reported_ended_by_the_sync(tmp_path, monkeypatch, market):
    keys(monkeypatch)
    with BinanceTestServer() as server:
        server.hold_market_orders = True  # the answer says NEW: the outcome comes later
        orders = Orders()
        ideas = Ideas({"BTC/USDT": Action.LONG})
        bot = binance_bot(tmp_path / "state", server, ideas=ideas, market=market, plugins=[("orders", orders)])
        waiting: list = []

        def between(i):
            if i == 0:
                waiting.extend(bot.state.intents)
                ideas.wanted.clear()
                server.expire_held()

        run(bot, 2, between)
        [entry] = entry_orders(server)
        assert waiting == [entry["clientOrderId"]], "while the order rests, the core waits for it"
        assert bot.state.intents == {} and bot.state.open_orders == {} and bot.state.positions == {}
        ended = [o for o in orders.seen if o.client_order_id == entry["clientOrderId"]]
        assert [(o.status, o.reason) for o in ended] == [("open", ""),
                                                          ("canceled", "expired on the exchange, nothing filled")]
        [booked] = audit(tmp_path, "binance_order_ended")
        assert (booked["cause"], booked["unfilled"]) == ("expired", 0.002)
        assert len(audit(tmp_path, "order_ended")) == 1
        assert_books_agree(bot, server, futures=market == "futures")


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_a_close_that_expires_unfilled_leaves_the_position_with_its_stop_placed_again(tmp_path, monkeypatch, market):
    keys(monkeypatch)
    futures = market == "futures"
    with BinanceTestServer() as server:
        orders = Orders()
        ideas = Ideas({"BTC/USDT": Action.LONG})
        bot = binance_bot(tmp_path / "state", server, ideas=ideas, market=market, plugins=[("orders", orders)])
        held: list = []

        def between(i):
            if i == 1:  # the entry's fill is booked: close it, in a book with no buyer
                held.append(bot.state.positions["BTC/USDT"].amount)
                ideas.wanted.clear()
                bot.ctx.close_positions("the test closes it")
                server.fill_ratio = Decimal(0)
            if i == 2:
                server.fill_ratio = Decimal(1)

        run(bot, 4, between)
        entry, close = entry_orders(server)
        assert close["status"] == "EXPIRED" and close["executedQty"] == 0
        [booked] = [o for o in orders.seen if o.client_order_id == close["clientOrderId"]]
        assert (booked.purpose, booked.status, booked.reason) == ("close", "canceled",
                                                                   "expired on the exchange, nothing filled")
        assert bot.state.positions["BTC/USDT"].amount == held[0], "the position stays, as on the exchange"
        assert bot.state.intents == {} and bot.state.open_orders == {}
        expected = Decimal("0.002") if futures else Decimal("0.00199")
        assert stop_quantities(server, futures) == [expected], "its stop is on the exchange again"
        assert_books_agree(bot, server, futures=futures)
