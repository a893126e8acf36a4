"""The backtester's execution rules, stated as specifications: fills, fees, slippage, stops and
targets (the stop first when a candle touches both), gaps, shorts, one shared cash balance, market
precision, and that sizing and risk are asked only at entry decisions."""

from __future__ import annotations

import numpy as np
import pytest

from gobot.research.backtest.engine import ExecutionSettings, Sizing, run
from gobot.research.market_data import MarketRules, Series, find_gaps
from gobot_hookspecs import Action, ParamSpec, Signal

MINUTE = 60_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def series(rows, symbol="BTC/USDT", start=T0, step=MINUTE, timestamps=None, market=None) -> Series:
    """Candles from ``(open, high, low, close)`` rows, one a minute (or at ``timestamps``)."""
    rows = np.asarray(rows, dtype=float)
    ts = np.asarray(timestamps if timestamps is not None else [start + i * step for i in range(len(rows))],
                    dtype=np.int64)
    return Series(symbol=symbol, timeframe="1m", timestamp=ts, open=rows[:, 0], high=rows[:, 1], low=rows[:, 2],
                  close=rows[:, 3], volume=np.ones(len(rows)), market=market or MarketRules(), gaps=find_gaps(ts, step))


class Scripted:
    """A strategy that says what a test tells it, per bar index (the newest candle's position)."""

    parameters = {"x": ParamSpec(default=1, low=0, high=2)}

    def __init__(self, script: dict[int, Action], name="scripted", confidence=0.9, stop=None, target=None):
        self.script, self.name, self.confidence, self.stop, self.target = script, name, confidence, stop, target

    def signal(self, symbol, candles, params):
        action = self.script.get(len(candles) - 1, Action.HOLD)
        if action is Action.HOLD:
            return Signal(symbol=symbol, action=action, confidence=0.0)
        return Signal(symbol=symbol, action=action, confidence=self.confidence, stop_loss=self.stop,
                      take_profit=self.target)


def plain(**overrides) -> ExecutionSettings:
    values = dict(fee_percent=0.0, slippage_percent=0.0, stop_loss_percent=None, take_profit_percent=None,
                  start_equity=1000.0, sizing=Sizing("all_in"))
    values.update(overrides)
    return ExecutionSettings(**values)


FLAT = [(100, 101, 99, 100)] * 10


def test_a_decision_fills_at_the_next_open_with_slippage_against_you_and_a_fee_per_fill():
    rows = list(FLAT)
    rows[3] = (110, 111, 109, 110)  # the fill candle's open
    rows[6] = (120, 121, 119, 120)
    strategy = Scripted({2: Action.LONG, 5: Action.SHORT})
    result = run(strategy, {}, [series(rows)], plain(fee_percent=0.1, slippage_percent=1.0, allow_short=False))
    (trade,) = result.trades
    assert trade.entry_price == pytest.approx(110 * 1.01)
    assert trade.exit_price == pytest.approx(120 * 0.99)
    amount = 1000 / (110 * 1.01 * 1.001)  # all-in, net of the entry fee
    assert trade.amount == pytest.approx(amount)
    fees = amount * 110 * 1.01 * 0.001 + amount * 120 * 0.99 * 0.001
    assert trade.fees == pytest.approx(fees)
    assert trade.pnl == pytest.approx(amount * (120 * 0.99 - 110 * 1.01) - fees)
    assert (trade.entry_bar, trade.exit_bar, trade.exit_reason) == (3, 6, "signal")
    assert result.end_equity == pytest.approx(1000 + trade.pnl)


def test_fill_at_close_fills_on_the_decision_candle():
    rows = list(FLAT)
    rows[2] = (100, 106, 99, 105)
    rows[5] = (100, 111, 99, 110)
    result = run(Scripted({2: Action.LONG, 5: Action.SHORT}), {}, [series(rows)],
                 plain(fill="close", allow_short=False))
    (trade,) = result.trades
    assert (trade.entry_price, trade.exit_price, trade.entry_bar, trade.exit_bar) == (105, 110, 2, 5)


def test_an_opposite_signal_exits_without_reversing_and_the_next_signal_opens_the_other_way():
    strategy = Scripted({1: Action.LONG, 3: Action.SHORT, 4: Action.SHORT})
    result = run(strategy, {}, [series(FLAT)], plain())
    first, second = result.trades[0], result.simulation.open_positions[0]
    assert (first.direction, first.entry_bar, first.exit_bar) == (Action.LONG, 2, 4)
    assert (second.direction, second.entry_bar) == (-1, 5)  # decided at 4's close, after the exit


def test_a_signal_in_the_held_direction_is_ignored():
    result = run(Scripted({1: Action.LONG, 2: Action.LONG, 3: Action.LONG, 6: Action.SHORT}), {}, [series(FLAT)],
                 plain(allow_short=False))
    assert [(t.entry_bar, t.exit_bar) for t in result.trades] == [(2, 7)]


def test_the_stop_counts_when_one_candle_touches_both_stop_and_target():
    rows = list(FLAT)
    rows[4] = (100, 110, 90, 100)  # touches the stop (98) and the target (104)
    result = run(Scripted({2: Action.LONG}), {}, [series(rows)], plain(stop_loss_percent=2, take_profit_percent=4))
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_price, trade.exit_bar) == ("stop_loss", 98.0, 4)


def test_stops_are_checked_inside_the_entry_candle():
    rows = list(FLAT)
    rows[3] = (100, 100.5, 97, 99)  # the fill candle itself falls through the stop
    result = run(Scripted({2: Action.LONG}), {}, [series(rows)], plain(stop_loss_percent=2))
    (trade,) = result.trades
    assert (trade.entry_bar, trade.exit_bar, trade.exit_reason) == (3, 3, "stop_loss")


def test_a_candle_opening_beyond_the_stop_fills_at_its_open_with_slippage():
    rows = list(FLAT)
    rows[5] = (95, 96, 94, 95)  # gaps down through the stop at 98
    result = run(Scripted({2: Action.LONG}), {}, [series(rows)], plain(stop_loss_percent=2, slippage_percent=0.5))
    (trade,) = result.trades
    assert trade.exit_price == pytest.approx(95 * 0.995)


def test_a_take_profit_fills_at_its_price_and_stops_come_from_the_decision_close():
    rows = list(FLAT)
    rows[2] = (100, 101, 99, 100)  # decision close 100 -> target 104
    rows[3] = (102, 103, 101, 102)  # fill at 102: the target stays 104, as in a live intent
    rows[5] = (103, 108, 102, 107)
    result = run(Scripted({2: Action.LONG}), {}, [series(rows)], plain(take_profit_percent=4))
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_price, trade.exit_bar) == ("take_profit", 104.0, 5)


def test_a_signal_may_bring_its_own_stop_and_target():
    rows = list(FLAT)
    rows[5] = (100, 101, 96.5, 97)
    result = run(Scripted({2: Action.LONG}, stop=97.0, target=130.0), {}, [series(rows)], plain(stop_loss_percent=2))
    assert result.trades[0].exit_price == 97.0
    assert result.trades[0].initial_stop_loss == 97.0


def test_a_short_gains_when_the_price_falls_and_its_stop_is_above():
    rows = list(FLAT)
    rows[6] = (90, 91, 89, 90)
    result = run(Scripted({2: Action.SHORT, 5: Action.LONG}), {}, [series(rows)], plain(fee_percent=0.1))
    trade = result.trades[0]
    assert trade.direction is Action.SHORT
    assert trade.pnl == pytest.approx(trade.amount * (100 - 90) - trade.fees)
    stopped = run(Scripted({2: Action.SHORT}), {}, [series([(100, 103, 99, 100)] * 6)], plain(stop_loss_percent=2))
    assert stopped.trades[0].exit_reason == "stop_loss" and stopped.trades[0].exit_price == 102.0


def test_an_open_position_at_the_end_is_marked_to_the_last_close_without_an_exit_fee():
    rows = list(FLAT)
    rows[-1] = (100, 121, 99, 120)
    result = run(Scripted({2: Action.LONG}), {}, [series(rows)], plain(fee_percent=0.1))
    pos = result.simulation.open_positions[0]
    assert result.trades == []
    assert result.end_equity == pytest.approx(1000 - pos.entry_fee + pos.amount * (120 - 100))
    assert result.simulation.equity[-1] == pytest.approx(result.end_equity)


def test_a_gap_is_reported_and_never_filled_in_an_order_fills_at_the_next_candle_that_exists():
    ts = [T0 + i * MINUTE for i in (0, 1, 2, 3, 9, 10, 11)]  # five minutes missing after 03
    rows = [(100, 101, 99, 100)] * 4 + [(130, 131, 129, 130)] * 3
    data = series(rows, timestamps=ts)
    assert [(g.after_ms, g.missing) for g in data.gaps] == [(ts[3], 5)]
    result = run(Scripted({3: Action.LONG, 5: Action.SHORT}), {}, [data], plain(allow_short=False))
    (trade,) = result.trades
    assert (trade.entry_price, trade.opened_at.minute) == (130, 9)
    assert len(result.simulation.timeline) == 7  # the curve has a point per real candle only


def test_symbols_share_one_cash_balance():
    a = series(FLAT, "BTC/USDT")
    b = series(FLAT, "ETH/USDT")
    everything = run(Scripted({2: Action.LONG}), {}, [a, b], plain())
    assert len(everything.simulation.open_positions) == 1  # the first took all the margin
    assert everything.simulation.vetoes["no margin available for a position"] == 1
    half = run(Scripted({2: Action.LONG}), {}, [a, b], plain(sizing=Sizing("percent", 50)))
    assert sorted(p.symbol for p in half.simulation.open_positions) == ["BTC/USDT", "ETH/USDT"]
    assert sum(p.amount * p.entry_price for p in half.simulation.open_positions) == pytest.approx(1000)


def test_the_portfolio_equity_curve_adds_up_both_symbols():
    a = series([(100, 101, 99, 100)] * 3 + [(110, 111, 109, 110)] * 3, "BTC/USDT")
    b = series([(50, 51, 49, 50)] * 3 + [(45, 46, 44, 45)] * 3, "ETH/USDT")
    result = run(Scripted({1: Action.LONG}), {}, [a, b], plain(sizing=Sizing("fixed", 500)))
    amounts = {p.symbol: p.amount for p in result.simulation.open_positions}
    expected = 1000 + amounts["BTC/USDT"] * (110 - 100) + amounts["ETH/USDT"] * (45 - 50)
    assert result.simulation.equity[-1] == pytest.approx(expected)
    assert result.end_equity == pytest.approx(expected)


def test_amounts_round_down_to_the_market_step_and_small_orders_are_refused():
    stepped = run(Scripted({2: Action.LONG}), {}, [series(FLAT, market=MarketRules(amount_step=0.3))], plain())
    assert stepped.simulation.open_positions[0].amount == pytest.approx(9.9)  # 10 rounded down to a multiple of 0.3
    small = run(Scripted({2: Action.LONG}), {}, [series(FLAT, market=MarketRules(min_notional=5000))], plain())
    assert small.simulation.open_positions == []
    assert "notional below the market's minimum 5000" in small.simulation.vetoes


class CountingGate:
    """Sizes every entry at 100 and vetoes low confidence: counts how often it is asked."""

    def __init__(self):
        self.asked = []

    def decide(self, request, book):
        self.asked.append(request.bar)
        if request.confidence < 0.5:
            return None, ["confidence too low"]
        return 100.0, []


def test_sizing_and_risk_are_asked_only_at_entry_decisions_never_per_candle():
    script = {i: Action.LONG for i in range(5, 200, 40)} | {i: Action.SHORT for i in range(25, 200, 40)}
    data = series([(100, 101, 99, 100)] * 200)
    gate = CountingGate()
    result = run(Scripted(script, confidence=0.9), {}, [data], plain(allow_short=False), gate=gate)
    assert gate.asked == sorted(i for i, a in script.items() if a is Action.LONG)
    assert len(result.trades) == 5 and all(t.amount * 100 == pytest.approx(100) for t in result.trades)
    vetoing = CountingGate()
    vetoed = run(Scripted(script, confidence=0.2), {}, [data], plain(allow_short=False), gate=vetoing)
    assert vetoed.trades == [] and vetoed.simulation.vetoes["confidence too low"] == 5


def test_a_window_trades_only_inside_it_but_sees_the_history_before():
    script = {2: Action.LONG, 4: Action.SHORT, 6: Action.LONG, 8: Action.SHORT}
    result = run(Scripted(script), {}, [series(FLAT)], plain(allow_short=False), start_ms=T0 + 5 * MINUTE,
                 end_ms=T0 + 10 * MINUTE)
    assert [(t.entry_bar, t.exit_bar) for t in result.trades] == [(7, 9)]
    assert result.simulation.timeline[0] == T0 + 5 * MINUTE


def test_settings_refuse_unknown_rules():
    with pytest.raises(ValueError, match="next_open or close"):
        ExecutionSettings(fill="tomorrow")
    with pytest.raises(ValueError, match="25%"):
        Sizing.parse("lots")
    assert (Sizing.parse("all-in").kind, Sizing.parse("25%").value, Sizing.parse(100).kind) == ("all_in", 25.0, "fixed")


def test_the_gate_finishes_an_async_call_that_waits_and_hands_back_its_answer_or_error():
    """Calls that never wait run without a loop iteration; one that waits is finished by the loop, as a task."""
    import asyncio

    from gobot.research.backtest.gate import _drive

    loop = asyncio.new_event_loop()

    async def answer_at_once():
        return asyncio.get_running_loop() is loop

    async def wait_then_answer(fail: bool):
        await asyncio.sleep(0)
        future = asyncio.get_running_loop().create_future()
        loop.call_soon(future.set_result, 41)
        value = await future
        if fail:
            raise ValueError("vetoed")
        return value + 1, asyncio.current_task() is not None

    try:
        assert _drive(answer_at_once(), loop) is True
        assert _drive(wait_then_answer(False), loop) == (42, True)
        with pytest.raises(ValueError, match="vetoed"):
            _drive(wait_then_answer(True), loop)
        assert _drive(answer_at_once(), loop) is True  # the loop is usable again, and not left running
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()
    finally:
        loop.close()


def test_the_gate_answers_a_call_that_yields_something_else_than_a_future_with_an_error_inside_it():
    import asyncio
    import types

    from gobot.research.backtest.gate import _drive

    @types.coroutine
    def bad_yield():
        yield "not a future"

    async def caught():
        try:
            await bad_yield()
        except RuntimeError as exc:
            return str(exc)

    loop = asyncio.new_event_loop()
    try:
        assert "not a future" in _drive(caught(), loop)
    finally:
        loop.close()


def test_a_backtest_asked_from_the_cycles_event_loop_runs_the_gates_own_loop_and_gives_the_cycle_its_loop_back():
    import asyncio

    from gobot.run.context import _off_the_loop

    async def waits():
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(future.set_result, "judged")
        return await future

    def backtest():
        own = asyncio.new_event_loop()
        try:
            return own.run_until_complete(waits())
        finally:
            own.close()

    async def cycle():
        loop = asyncio.get_running_loop()
        answer = _off_the_loop(backtest)
        await asyncio.sleep(0)  # the cycle's loop runs on
        return answer, asyncio.get_running_loop() is loop

    assert asyncio.run(cycle()) == ("judged", True)
