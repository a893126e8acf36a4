"""One fill model: over random markets, stops, targets, fees and slippage, several symbols, long and
short, the ``paper`` executor in a real bot on the replay clock and the backtester make the same
trades to the cent (both fill through ``gobot_hookspecs.fills``; this holds the rest of each side
to it: the backtester's numpy search for the touching candle, its event order, paper's book)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from chaos_support import FULL, count
from gobot.research.backtest.engine import ExecutionSettings, Signals, SimpleGate, Sizing, simulate
from gobot.research.market_data import load_series
from gobot.run.bot import Bot
from gobot.testing import replay_settings
from gobot_hookspecs import Action, Position, RiskVerdict, Signal, fills, hookimpl

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
STEP = 300_000  # 5m candles, one per cycle
TICK = 0.25  # prices on a grid, so a candle often touches a stop or a target exactly
NOTIONAL = 1000.0  # big enough that a fee or slippage rule drifting in one copy shows in the cents
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
WARMUP = 2  # the first cycle sees two candles: the first decision is at bar 1


class Script:
    """The scripted strategy, sizer and risk check: signals at given bars, a fixed notional, every
    entry approved (the property is about fills: sizing and risk have their own tests)."""

    def __init__(self, ideas: dict[tuple[str, int], tuple[int, float | None, float | None]]):
        self.ideas = ideas

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        signals = []
        for snap in snapshots:
            idea = self.ideas.get((snap.symbol, snap.candles.timestamp[-1]))
            if idea is not None:
                direction, stop, target = idea
                signals.append(Signal(symbol=snap.symbol, action=Action.LONG if direction > 0 else Action.SHORT,
                                      confidence=0.9, stop_loss=stop, take_profit=target))
        return signals

    @hookimpl
    def gobot_size_position(self, ctx, signal):
        return NOTIONAL

    @hookimpl
    def gobot_risk_check(self, ctx, intent):
        return RiskVerdict(approved=True)


@st.composite
def candles(draw, n: int) -> list[tuple[int, int, int, int]]:
    """``n`` valid candles in ticks (low <= open, close <= high), gaps between them included."""
    gap = st.just(0) | st.integers(-3, 3) | st.integers(-30, 30)
    wick = st.integers(0, 4) | st.integers(0, 30)  # a long one may reach both a stop and a target
    rows, close = [], draw(st.integers(300, 500))
    for _ in range(n):
        open_ = max(160, close + draw(gap))
        close = max(160, open_ + draw(st.integers(-8, 8)))
        rows.append((open_, max(open_, close) + draw(wick), min(open_, close) - draw(wick), close))
    return rows


@st.composite
def ideas(draw, rows: list[tuple[int, int, int, int]]) -> dict[int, tuple[int, float | None, float | None]]:
    """Signals at some bars: a direction, and a stop and a target on either side of the decision close
    or none (then ``[trading]``'s percentages)."""
    script = {}
    for bar in range(WARMUP - 1, len(rows)):
        if not draw(st.booleans()):
            continue
        direction = draw(st.sampled_from((1, -1)))
        close = rows[bar][3]
        stop = draw(st.none() | st.integers(1, 60).map(lambda k: (close - direction * k) * TICK))  # noqa: B023
        target = draw(st.none() | st.integers(1, 80).map(lambda k: (close + direction * k) * TICK))  # noqa: B023
        script[bar] = (direction, stop, target)
    return script


@st.composite
def markets(draw) -> dict:
    n = draw(st.integers(6, 24))
    symbols = SYMBOLS[: draw(st.integers(1, len(SYMBOLS)))]
    data = {}
    for symbol in symbols:
        rows = draw(candles(n))
        data[symbol] = (rows, draw(ideas(rows)))
    return {
        "data": data,
        "fee_percent": draw(st.sampled_from((0.0, 0.04, 0.1, 0.25))),
        "slippage_percent": draw(st.sampled_from((0.0, 0.05, 0.3))),
        "stop_loss_percent": draw(st.sampled_from((0.5, 2.0, 5.0))),
        "take_profit_percent": draw(st.sampled_from((1.0, 4.0, 8.0))),
    }


def write_market(folder, market: dict) -> dict[tuple[str, int], tuple[int, float | None, float | None]]:
    """The candles as replay CSV files in ``folder``; returns the ideas keyed by (symbol, bar time)."""
    folder.mkdir(parents=True)
    script = {}
    for symbol, (rows, ideas_at) in market["data"].items():
        lines = ["timestamp_ms,open,high,low,close,volume"]
        lines += [f"{T0 + i * STEP},{o * TICK!r},{h * TICK!r},{lo * TICK!r},{c * TICK!r},1"
                  for i, (o, h, lo, c) in enumerate(rows)]
        (folder / f"{symbol.replace('/', '_')}-5m.csv").write_text("\n".join(lines) + "\n")
        script.update({(symbol, T0 + bar * STEP): idea for bar, idea in ideas_at.items()})
    return script


def paper_bot(folder, market, script, plugin_set_factory, run_bot, cycles: int | None = None) -> Bot:
    """A real bot trading on paper over the market, run to its end (or for ``cycles`` cycles)."""
    config = {
        "trading": {"symbols": list(market["data"]), "initial_capital_usd": 1e6, "max_position_usd": NOTIONAL,
                    "stop_loss_percent": market["stop_loss_percent"],
                    "take_profit_percent": market["take_profit_percent"]},
        "orchestrator": {"loop_interval": STEP / 1000, "max_iterations": 0, "daily_profit_target": 1e9,
                         "max_daily_loss": 1e9},
        "plugins": {"replay": {"warmup_candles": WARMUP, "lookback_candles": 4},
                    "paper": {"fee_percent": market["fee_percent"], "slippage_percent": market["slippage_percent"]}},
    }
    settings_ = replay_settings(folder / "state", folder / "data", config)
    disable = ["sma_rsi", "adjuster", "validator", "risk_limits", "circuit_breaker", "kelly_size", "archiver",
               "console"]
    bot = Bot(settings_, plugin_set_factory(disable=disable, plugins=[("script", Script(script))]))
    run_bot(bot, cycles)
    return bot


def backtest(folder, market, script):
    """The backtester's simulation of the same script over the same files."""
    series, signals = [], []
    for symbol in market["data"]:
        s = load_series(folder / "data", symbol, "5m")
        action, stops, targets = np.zeros(len(s), np.int8), np.full(len(s), np.nan), np.full(len(s), np.nan)
        for bar, ts in enumerate(s.timestamp.tolist()):
            idea = script.get((symbol, ts))
            if idea is not None:
                action[bar] = idea[0]
                stops[bar] = math.nan if idea[1] is None else idea[1]
                targets[bar] = math.nan if idea[2] is None else idea[2]
        series.append(s)
        signals.append(Signals(action, np.where(action != 0, 0.9, 0.0), stops, targets))
    execution = ExecutionSettings(fee_percent=market["fee_percent"], slippage_percent=market["slippage_percent"],
                                  stop_loss_percent=market["stop_loss_percent"],
                                  take_profit_percent=market["take_profit_percent"], start_equity=1e6,
                                  sizing=Sizing("fixed", NOTIONAL))
    return simulate(series, signals, execution, SimpleGate(execution.sizing))


def same_trades(bot: Bot, simulation) -> None:
    """The same closed trades to the cent, and the same positions still open."""
    cent = pytest.approx
    live = sorted(bot.state.trades, key=lambda t: (t.opened_at, t.symbol))
    tested = sorted(simulation.trades, key=lambda t: (t.opened_at, t.symbol))
    assert [(t.symbol, t.direction, t.opened_at, t.closed_at, t.exit_reason) for t in tested] == \
           [(t.symbol, t.direction, t.opened_at, t.closed_at, t.exit_reason) for t in live]
    for a, b in zip(tested, live):
        money = (b.entry_price, b.exit_price, b.fees, b.pnl)
        assert (a.entry_price, a.exit_price, a.fees, a.pnl) == cent(money, abs=0.005)
        assert a.amount == cent(b.amount, rel=1e-12)
    # one open position concept: the backtester's OpenPosition as the contract's Position equals both
    # the core's position and the one paper keeps in its state, resting stop and target included
    tested_open = {p.symbol: p.to_position() for p in simulation.open_positions}
    watched = bot.state.plugin_state.get("paper", {}).get("watch", {})
    for held in (bot.state.positions, {symbol: Position.model_validate(p) for symbol, p in watched.items()}):
        assert sorted(held) == sorted(tested_open)
        for symbol, b in held.items():
            a = tested_open[symbol]
            assert (a.direction, a.opened_at) == (b.direction, b.opened_at)
            numbers = (b.amount, b.entry_price, b.entry_fee, b.stop_loss, b.take_profit)
            assert (a.amount, a.entry_price, a.entry_fee, a.stop_loss, a.take_profit) == cent(numbers, abs=0.005)


def test_the_paper_bot_and_the_backtester_make_the_same_trades(tmp_path, plugin_set_factory, run_bot):
    examples = itertools.count()
    seen = dict.fromkeys(("trades", "stop_loss", "take_profit", "signal", "short", "gap", "both", "entry candle",
                          "still open"), 0)

    # make test: the same examples every run (derandomized); make chaos: more, new ones each time.
    # The fixtures are factories with no per-test state, so the inner test may share them. No
    # shrinking: each example runs a bot, and shrinking a failure took minutes; the example is printed.
    @settings(max_examples=count(12, 200), deadline=None, derandomize=not FULL, database=None,
              phases=[Phase.explicit, Phase.generate], print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(market=markets())
    def one_market(market):
        folder = tmp_path / f"example-{next(examples)}"
        script = write_market(folder / "data", market)
        bot = paper_bot(folder, market, script, plugin_set_factory, run_bot)
        simulation = backtest(folder, market, script)
        same_trades(bot, simulation)
        seen["still open"] += len(simulation.open_positions)
        for trade in simulation.trades:
            seen["trades"] += 1
            seen[trade.exit_reason] += 1
            seen["short"] += trade.direction is Action.SHORT
            seen["entry candle"] += trade.exit_reason != "signal" and trade.entry_bar == trade.exit_bar
            if trade.exit_reason == fills.STOP_LOSS:
                open_, high, low, _ = (x * TICK for x in market["data"][trade.symbol][0][trade.exit_bar])
                direction, stop = (1 if trade.direction is Action.LONG else -1), trade.initial_stop_loss
                seen["gap"] += open_ < stop if direction > 0 else open_ > stop
                seen["both"] += fills.target_touched(direction, target_of(market, trade), high, low)

    one_market()
    # the examples must exercise every rule, or the property says little
    assert all(seen[key] > 0 for key in seen), seen


def target_of(market: dict, trade) -> float:
    """The take-profit a trade rested with: its signal's, else ``[trading]``'s percentage of the decision close."""
    rows, ideas_at = market["data"][trade.symbol]
    decision = trade.entry_bar - 1  # filled at the next open
    target = ideas_at[decision][2]
    direction = 1 if trade.direction is Action.LONG else -1
    if target is not None:
        return target
    return rows[decision][3] * TICK * (1 + direction * market["take_profit_percent"] / 100)


def test_a_bot_resumed_from_a_state_file_of_the_older_paper_format_closes_the_same_way(
        tmp_path, plugin_set_factory, run_bot):
    """Before paper kept the contract's Position, its open positions were saved as
    ``{"long", "amount", "stop", "target", "coid"}``; a bot resumed on such a file stops out alike."""
    rows = [(400, 402, 398, 400)] * 3 + [(401, 403, 399, 401), (402, 404, 400, 401), (390, 392, 386, 388),
                                         (388, 390, 387, 389)]  # bought at bar 3's open; bar 5 gaps through the stop
    market = {"data": {"BTC/USDT": (rows, {2: (1, 396 * TICK, 420 * TICK)})}, "fee_percent": 0.1,
              "slippage_percent": 0.05, "stop_loss_percent": 2.0, "take_profit_percent": 4.0}
    script = write_market(tmp_path / "whole" / "data", market)
    whole = paper_bot(tmp_path / "whole", market, script, plugin_set_factory, run_bot)
    [expected] = whole.state.trades
    assert expected.exit_reason == "stop_loss"

    folder = tmp_path / "resumed"
    write_market(folder / "data", market)
    first = paper_bot(folder, market, script, plugin_set_factory, run_bot, cycles=3)
    state_file = first.store.state_file
    state = json.loads(state_file.read_text())
    [(symbol, position)] = state["plugin_state"]["paper"]["watch"].items()
    state["plugin_state"]["paper"]["watch"][symbol] = {
        "long": position["direction"] == "LONG", "amount": position["amount"], "stop": position["stop_loss"],
        "target": position["take_profit"], "coid": position["client_order_id"]}
    state["finished"], state["finish_reason"] = False, ""  # as a run stopped by a signal leaves it
    state_file.write_text(json.dumps(state))
    resumed = paper_bot(folder, market, script, plugin_set_factory, run_bot)
    assert resumed.resumed_from == 3
    [trade] = resumed.state.trades
    fields = ("symbol", "direction", "amount", "entry_price", "exit_price", "opened_at", "closed_at", "fees", "pnl",
              "exit_reason")
    assert [getattr(trade, name) for name in fields] == [getattr(expected, name) for name in fields]

