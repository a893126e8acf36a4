"""Funding payments on perpetual futures: booked once by their exchange id, in cash, on the open position
and in the trade that closes it (``Trade.funding``, part of ``Trade.pnl``)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest

from gobot.run.portfolio import Portfolio
from gobot.run.state import BotState
from gobot_hookspecs import Action, Fill, Funding, Side, Signal, hookimpl
from gobot_hookspecs.money import trade_rate
from gobot_plugins.drift import store
from gobot_plugins.drift.attribution import PARTS
from servers.binance import BinanceTestServer
from servers.bots import MovableWallClock, binance_bot, keys

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


# -- end to end: a testnet futures bot against the loopback Binance server ----------------------------------


class HoldLong:
    """Goes long once when told (wide stop and target: the position outlives the funding times)."""

    def __init__(self) -> None:
        self.want = False

    @hookimpl
    def gobot_generate_ideas(self, snapshots):
        action, self.want = (Action.LONG if self.want else Action.HOLD), False
        return [Signal(symbol=s.symbol, action=action, confidence=0.9, strategy="hold", strategy_version=1,
                       rationale="scripted", stop_loss=s.price * 0.95, take_profit=s.price * 1.12)
                for s in snapshots]


def funding_lines(state_dir) -> list[dict]:
    lines = (json.loads(line) for line in (state_dir / "audit.jsonl").read_text().splitlines())
    return [line for line in lines if line.get("event") == "funding"]


def test_a_futures_position_through_two_funding_times_and_a_restart_books_each_once_to_the_cent(
        tmp_path, monkeypatch):
    keys(monkeypatch)
    ideas, clock = HoldLong(), MovableWallClock()
    plugins = {"risk_limits": {"max_total_exposure_usd": 1000, "low_liquidity_hours": [], "symbol_cooldown_minutes": 0,
                               "max_trades_per_day": 0, "volatility_multiplier": 0},
               "drift": {"band_candles": 1000, "min_band_trades": 5, "history_hours": 0}}
    config = {"plugins": plugins, "backtest": {"fee_percent": 0.1, "slippage_percent": 0.0}}
    state_dir = tmp_path / "state"
    with BinanceTestServer() as server:
        def bot():
            return binance_bot(state_dir, server, ideas=ideas, config=config, plugins=[("clock", clock)],
                               market="futures")

        def advance(minutes: int) -> None:
            clock.offset += timedelta(minutes=minutes)
            server.market_offset_ms += minutes * 60_000

        def wallet() -> float:
            return float(server.futures_wallet)

        async def first_run():
            b = bot()
            await b.startup()
            try:
                ideas.want = True
                await b.run_cycle()  # the entry fills
                advance(2)
                await b.run_cycle()  # the twin's entry candle closed; the first funding check finds nothing
                paid = float(server.pay_funding("BTCUSDT", 0.001))  # a long pays a positive rate
                advance(61)
                await b.run_cycle()
                assert b.state.cash == pytest.approx(wallet(), abs=0.005)
                assert b.state.positions["BTC/USDT"].funding == pytest.approx(paid, abs=1e-9)
                return paid
            finally:
                await b.shutdown("test restart")  # the run is not finished: the next Bot resumes it

        async def second_run():
            b = bot()
            await b.startup()
            try:
                received = float(server.pay_funding("BTCUSDT", -0.002))  # and receives a negative one
                advance(61)
                await b.run_cycle()
                assert b.state.cash == pytest.approx(wallet(), abs=0.005)
                advance(61)
                await b.run_cycle()  # the newest payment comes again (startTime is inclusive): not booked twice
                assert b.state.cash == pytest.approx(wallet(), abs=0.005)
                position = b.state.positions["BTC/USDT"]
                server.set_price("BTCUSDT", position.take_profit * 1.001)
                advance(1)
                await b.run_cycle()  # the target fills; the twin exits on the same candle
                assert "BTC/USDT" not in b.state.positions
                assert b.state.cash == pytest.approx(wallet(), abs=0.005)
                trade = b.state.trades[-1]
                late = float(server.pay_funding("BTCUSDT", 0.0005, held=trade.amount))  # booked after the close
                advance(61)
                await b.run_cycle()  # the last check after the close: to cash, never dropped
                assert b.state.cash == pytest.approx(wallet(), abs=0.005) and late < 0
                advance(61)
                await b.run_cycle()  # flat since the last check: no more asking
                return received, trade
            finally:
                await b.shutdown("test over")

        paid = asyncio.run(first_run())
        received, trade = asyncio.run(second_run())
        assert paid < 0 < received
        assert trade.funding == pytest.approx(paid + received, abs=1e-9)
        gross = (trade.exit_price - trade.entry_price) * trade.amount
        assert trade.pnl == pytest.approx(gross - trade.fees + paid + received, abs=1e-9)
        # once an hour while held (the first when the entry is booked), at the close, once after it, then never
        assert server.count("GET", "/fapi/v1/income") == 6
        lines = funding_lines(state_dir)
        assert [line["funding"]["amount"] for line in lines][:2] == pytest.approx([paid, received])
        assert [line["position"] is None for line in lines] == [False, False, True] and len(lines) == 3
        [row] = [r for r in store.trades(state_dir) if r["kind"] == "matched"]
        assert row["funding"] == pytest.approx(paid + received, abs=1e-9)
        assert row["live_pnl"] == pytest.approx(trade.pnl, abs=1e-9)
        assert abs(sum(row[part] for part in PARTS) - row["gap"]) < 0.005  # the parts add up to the gap to the cent
        assert abs(row["funding_other"]) < 1e-9  # everything else the fills and fees explain


def test_a_trades_rate_to_the_portfolio_currency_leaves_its_funding_out():
    state = BotState(run_id="r", cash=1000.0, initial_capital=1000.0, last_prices={"ETH/BTC": 0.05,
                                                                                     "BTC/USDT": 50000.0})
    book = Portfolio(state, "USDT", ["ETH/BTC", "BTC/USDT"])
    book.apply_fill(Fill(order_id="1", client_order_id="e", symbol="ETH/BTC", side=Side.BUY, purpose="open",
                         amount=1.0, price=0.05, fee=0.00005, time=T0), None)
    book.apply_funding(funding("f", -0.0001, 1, symbol="ETH/BTC"))  # 5 USDT at 50,000
    state.last_prices["BTC/USDT"] = 60000.0
    trade = book.apply_fill(Fill(order_id="2", client_order_id="e", symbol="ETH/BTC", side=Side.SELL,
                                 purpose="close", amount=1.0, price=0.06, fee=0.00006, time=T0), None)
    assert trade.funding == pytest.approx(-5.0)
    assert trade_rate(trade, "USDT") == pytest.approx(60000.0)
