"""A close the exchange refuses before placing it (Binance's 4xx answers: -2010 NEW_ORDER_REJECTED
such as "Account has insufficient balance for requested action.", -1013 "Filter failure: ...")
comes after the plugin cancelled the position's stop and target. The position is still open, so
they are placed again for its amount (the next generation of client order ids), audited and
alerted with the cause; the next cycle's reconciliation finds them in place, and a later close
goes through and books the trade — on spot and on USD-M futures."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from gobot_hookspecs import Action
from servers.binance import BinanceTestServer, Fault
from servers.bots import Ideas, Recorder, binance_bot, keys
from servers.bots import run_cycles as run
from test_binance_book import assert_books_agree

REFUSALS = {
    "insufficient-balance": (-2010, "Account has insufficient balance for requested action."),
    "filter-failure": (-1013, "Filter failure: LOT_SIZE"),
}


def audit(tmp_path, event: str) -> list[dict]:
    lines = (tmp_path / "state" / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == event]


def protection_on_exchange(server: BinanceTestServer, futures: bool) -> dict[str, Decimal]:
    """The open stop and target on the exchange: client order id -> quantity."""
    if futures:
        return {a["clientAlgoId"]: a["quantity"] for a in server.open_algo_orders()}
    return {o["clientOrderId"]: o["origQty"] for o in server.open_orders()}


def refuse_next_close(server: BinanceTestServer, futures: bool, code: int, msg: str) -> None:
    """The next market order is answered 400 with Binance's error body, before anything happens."""
    server.inject(Fault(path="/fapi/v1/order" if futures else "/api/v3/order", method="POST", action="status",
                        when="before", status=400, code=code, msg=msg))


def close_refused_then_closed(tmp_path, server, futures: bool, refuse, later: int = 0):
    """Enter, close with ``refuse`` armed, look at the exchange ``later`` cycles after the refusal and
    one cycle after that, then close again; the bot, its recorder and what was seen."""
    recorder = Recorder()
    ideas = Ideas({"BTC/USDT": Action.LONG})
    bot = binance_bot(tmp_path / "state", server, ideas=ideas, recorder=recorder,
                      market="futures" if futures else "spot")
    seen: dict = {}

    def between(i):
        if i == 1:  # the entry is booked with its stop and target: close it, and have the close fail
            seen["held"] = bot.state.positions["BTC/USDT"].amount
            seen["before"] = protection_on_exchange(server, futures)
            ideas.wanted.clear()
            refuse()
            bot.ctx.close_positions("the test closes it")
        if i == 2 + later:
            seen["after"] = protection_on_exchange(server, futures)
            seen["position"] = bot.state.positions.get("BTC/USDT")
            seen["waiting"] = (dict(bot.state.intents), dict(bot.state.open_orders))
        if i == 3 + later:  # a cycle later the reconciliation found them in place: now the close goes through
            seen["reconciled"] = protection_on_exchange(server, futures)
            bot.ctx.close_positions("the test closes it again")

    run(bot, 6 + later, between)
    return bot, recorder, seen


def assert_protected_again_then_closed(bot, server, futures: bool, seen: dict) -> None:
    expected = Decimal("0.002") if futures else Decimal("0.00199")  # spot: the entry's commission was paid in BTC
    assert len(seen["before"]) == 2 and all(k.endswith(("-sl", "-tp")) for k in seen["before"])
    assert seen["position"] is not None and seen["position"].amount == seen["held"], "the position stays open"
    assert seen["waiting"] == ({}, {}), "the core waits for nothing: the close did not go through"
    assert {k[:-1] for k in seen["after"]} == set(seen["before"])
    assert all(k.endswith(("-sl2", "-tp2")) for k in seen["after"])
    assert set(seen["after"].values()) == {expected}, "stop and target for the amount held"
    assert seen["reconciled"] == seen["after"], "the next cycle found them in place (nothing placed twice)"
    [trade] = bot.state.trades
    assert (trade.exit_reason, trade.amount) == ("the test closes it again", seen["held"])
    assert "BTC/USDT" not in bot.state.positions
    assert protection_on_exchange(server, futures) == {}, "the close cancelled them; nothing left over"
    assert_books_agree(bot, server, futures=futures)


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
@pytest.mark.parametrize("market", ["spot", "futures"])
def test_a_refused_close_leaves_the_position_with_its_stop_and_target_and_a_later_close_books_it(
        tmp_path, monkeypatch, market, refusal):
    keys(monkeypatch)
    futures = market == "futures"
    code, msg = REFUSALS[refusal]
    with BinanceTestServer() as server:
        bot, recorder, seen = close_refused_then_closed(
            tmp_path, server, futures, lambda: refuse_next_close(server, futures, code, msg))
        closes = [o for o in server.state.orders.values() if o["type"] == "MARKET"]
    assert len(closes) == 2, "the refused close never reached the book: one entry, one close"
    [refused] = audit(tmp_path, "binance_close_refused")
    assert refused["cause"] == "rejected" and msg in refused["reason"] and refused["protected_again"]
    assert refused["amount"] == pytest.approx(seen["held"], abs=1e-5)
    [alert] = [a for a in recorder.alerts if a.kind == "close_refused"]
    assert msg in alert.text and "stop and target are on the exchange again" in alert.text
    assert not [a for a in recorder.alerts if a.kind in ("unprotected_position", "reconciliation")]
    assert [e.kind for e in recorder.errors] == ["rejected"]
    assert_protected_again_then_closed(bot, server, futures, seen)


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_a_close_never_placed_after_an_unconfirmed_send_gets_its_stop_and_target_back(tmp_path, monkeypatch, market):
    keys(monkeypatch)
    futures = market == "futures"
    path = "/fapi/v1/order" if futures else "/api/v3/order"
    with BinanceTestServer() as server:
        def drop_every_send():  # every attempt dropped before the exchange saw it: the outcome is unknown
            server.inject(Fault(path=path, method="POST", action="drop", when="before", times=3))

        bot, recorder, seen = close_refused_then_closed(tmp_path, server, futures, drop_every_send, later=1)
    [refused] = audit(tmp_path, "binance_close_refused")
    assert (refused["cause"], refused["protected_again"]) == ("not_placed", True)
    assert [a.kind for a in recorder.alerts if a.kind in ("order_not_placed", "close_refused")] == [
        "order_not_placed", "close_refused"]
    assert [e.kind for e in recorder.errors] == ["network"]
    assert_protected_again_then_closed(bot, server, futures, seen)
