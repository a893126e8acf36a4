"""Funding payments on perpetual futures: booked once by their exchange id, in cash, on the open position
and in the trade that closes it (``Trade.funding``, part of ``Trade.pnl``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gobot.run.portfolio import Portfolio
from gobot.run.state import BotState
from gobot_hookspecs import Fill, Funding, Side

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def fill(purpose: str, side: Side, price: float, minutes: int, amount: float = 0.002) -> Fill:
    return Fill(order_id="1", client_order_id="c1", symbol="BTC/USDT", side=side, purpose=purpose, amount=amount,
                price=price, fee=0.1, time=T0 + timedelta(minutes=minutes))


def funding(id_: str, amount: float, minutes: int, symbol: str = "BTC/USDT") -> Funding:
    return Funding(id=id_, symbol=symbol, amount=amount, time=T0 + timedelta(minutes=minutes))


def test_funding_moves_cash_once_rides_on_the_position_and_ends_in_the_trades_pnl():
    state = BotState(run_id="r", cash=1000.0, initial_capital=1000.0)
    book = Portfolio(state)
    book.apply_fill(fill("open", Side.BUY, 50000, 0), None)
    assert book.apply_funding(funding("a", -0.25, 60))[0]
    assert book.apply_funding(funding("a", -0.25, 60)) == (False, None)  # the same id again: nothing
    new, position = book.apply_funding(funding("b", 0.05, 540))
    assert new and position.funding == pytest.approx(-0.2) and state.cash == pytest.approx(1000 - 0.1 - 0.2)
    trade = book.apply_fill(fill("close", Side.SELL, 50100, 600), None)
    assert trade.funding == pytest.approx(-0.2)
    assert trade.pnl == pytest.approx(0.002 * 100 - 0.2 - 0.2)  # gross - fees + funding
    assert state.cash == pytest.approx(1000 + trade.pnl)


def test_funding_without_a_position_goes_to_cash_and_a_partial_close_takes_its_share():
    state = BotState(run_id="r", cash=1000.0, initial_capital=1000.0)
    book = Portfolio(state)
    assert book.apply_funding(funding("x", 0.5, 0)) == (True, None) and state.cash == pytest.approx(1000.5)
    book.apply_fill(fill("open", Side.SELL, 50000, 1, amount=0.004), None)
    book.apply_funding(funding("y", 0.4, 2))
    trade = book.apply_fill(fill("close", Side.BUY, 50000, 3, amount=0.001), None)
    assert trade.funding == pytest.approx(0.1) and state.positions["BTC/USDT"].funding == pytest.approx(0.3)


def test_booked_ids_are_forgotten_a_month_after_the_newest():
    state = BotState(run_id="r", cash=0.0, initial_capital=0.0)
    book = Portfolio(state)
    book.apply_funding(funding("old", 1, 0))
    book.apply_funding(funding("new", 1, 60 * 24 * 31))
    assert set(state.funding_booked) == {"new"}
