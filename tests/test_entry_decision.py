"""The entry decision is written once (``gobot.host.entry``): the same signal, with the same real
plugins (fixed_size, risk_limits, circuit_breaker), sized and judged in a live bot's cycle and in the
backtester's ``PluginGate``, gives the same notional, stop, target and veto reasons."""

from __future__ import annotations

import pytest

from gobot.research.backtest.engine import Book, EntryRequest
from gobot.research.backtest.setup import BacktestSetup
from gobot.research.market_data import load_series
from gobot_hookspecs import Action, Signal, hookimpl

#: every plugin that would add ideas, strategies or adjustments of its own to the scripted ones
OTHERS = ["sma_rsi", "sma_cross", "kelly_size", "adjuster", "validator", "archiver", "console"]


class Scripted:
    """Ideas for the first cycle at the market's own prices, and a risk check that abstains but
    remembers every intent it is shown; registered as the strategy a backtest names."""

    name = "scripted"
    parameters: dict = {}

    def __init__(self, ideas: dict[str, tuple[Action, float, float | None, float | None]]):
        self.ideas = ideas  # symbol -> (action, confidence, stop and target as a factor of the price, or None)
        self.snapshots: dict = {}
        self.signals: list[Signal] = []
        self.intents: list = []
        self.reports: list = []

    def signal(self, symbol, candles, params):
        return Signal(symbol=symbol, action=Action.HOLD, confidence=0.0)

    @hookimpl
    def gobot_register_strategies(self, register):
        register(self)

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        if ctx.iteration != 1:
            return []
        ideas = []
        for snap in snapshots:
            action, confidence, stop, target = self.ideas[snap.symbol]
            self.snapshots[snap.symbol] = snap
            ideas.append(Signal(symbol=snap.symbol, action=action, confidence=confidence,
                                stop_loss=snap.price * stop if stop else None,
                                take_profit=snap.price * target if target else None))
        self.signals = ideas
        return ideas

    @hookimpl
    def gobot_risk_check(self, intent):
        self.intents.append(intent)

    @hookimpl
    def gobot_on_cycle_end(self, report):
        self.reports.append(report)


class WordySizer:
    """Sizes ETH/USDT with a word instead of a number; lets the next sizer answer for the others."""

    @hookimpl
    def gobot_size_position(self, signal):
        return "lots" if signal.symbol == "ETH/USDT" else None


def live_then_backtest(bot, run_bot, scripted: Scripted, data_dir):
    """The first cycle's decisions, then the backtester's gate on the same signals at the same bar."""
    run_bot(bot, 1)
    live_intents, scripted.intents = {i.symbol: i for i in scripted.intents}, []
    setup = BacktestSetup.build(bot.settings, bot.plugin_set)
    execution = setup.execution()
    assert (execution.sizing.kind, execution.risk) == ("plugins", "plugins")
    gate = setup.gate(execution, setup.strategy("scripted"))
    series = [load_series(data_dir, symbol, "5m") for symbol in bot.settings.trading.symbols]
    book = Book(series, execution.start_equity)
    tested = {}
    for signal in scripted.signals:
        s = next(s for s in series if s.symbol == signal.symbol)
        snap = scripted.snapshots[signal.symbol]
        bar = int(s.timestamp.searchsorted(snap.candles.timestamp[-1]))
        assert float(s.close[bar]) == snap.price  # the cycle decided at this bar's close
        request = EntryRequest(signal.symbol, int(s.timestamp[bar]), int(s.timestamp[bar]) + s.step_ms, bar,
                               1 if signal.action is Action.LONG else -1, snap.price, signal.confidence,
                               signal.stop_loss, signal.take_profit)
        tested[signal.symbol] = gate.decide(request, book)
    return scripted.reports[0], live_intents, {i.symbol: i for i in scripted.intents}, tested


def test_the_live_cycle_and_the_backtest_gate_size_and_judge_alike(replay_bot, run_bot, synthetic_data_dir):
    scripted = Scripted({"BTC/USDT": (Action.LONG, 0.9, None, None),  # the configured 2 % stop, 4 % target
                         "ETH/USDT": (Action.SHORT, 0.5, 1.05, 0.98)})  # low confidence, reward/risk 0.4
    bot = replay_bot(enable=["fixed_size"], disable=OTHERS, plugins=[("scripted", scripted)])
    report, live, tested, decided = live_then_backtest(bot, run_bot, scripted, synthetic_data_dir)

    assert set(live) == set(tested) == {"BTC/USDT", "ETH/USDT"}
    for symbol in live:
        a, b = live[symbol], tested[symbol]
        assert (a.side, a.purpose, a.reference_price) == (b.side, b.purpose, b.reference_price)
        assert a.notional_usd == b.notional_usd == bot.settings.trading.max_position_usd  # fixed_size
        assert a.stop_loss == pytest.approx(b.stop_loss, rel=1e-12)
        assert a.take_profit == pytest.approx(b.take_profit, rel=1e-12)
        assert a.client_order_id.startswith("gb") and b.client_order_id.startswith("bt")
    btc = live["BTC/USDT"]
    assert btc.stop_loss == pytest.approx(btc.reference_price * 0.98)
    assert btc.take_profit == pytest.approx(btc.reference_price * 1.04)

    live_vetoes = {s: [f"{v.plugin}: {v.reason}" for v in report.vetoes if v.symbol == s] for s in live}
    assert decided["BTC/USDT"] == (btc.notional_usd, []) and live_vetoes["BTC/USDT"] == []
    assert decided["ETH/USDT"] == (None, live_vetoes["ETH/USDT"])
    (reason,) = live_vetoes["ETH/USDT"]
    assert reason.startswith("risk_limits: confidence 0.50 below") and "reward/risk 0.40 below" in reason
    assert {v.plugin for v in report.verdicts if v.symbol == "BTC/USDT"} == {"risk_limits", "circuit_breaker"}


def test_no_risk_answer_and_a_sizer_answering_a_word_read_alike(replay_bot, run_bot, synthetic_data_dir):
    scripted = Scripted({"BTC/USDT": (Action.LONG, 0.9, None, None), "ETH/USDT": (Action.LONG, 0.9, None, None)})
    bot = replay_bot(enable=["fixed_size"], disable=[*OTHERS, "risk_limits", "circuit_breaker"],
                     plugins=[("scripted", scripted), ("wordy_sizer", WordySizer())])
    report, live, tested, decided = live_then_backtest(bot, run_bot, scripted, synthetic_data_dir)

    assert [f"{v.plugin}: {v.reason}" for v in report.vetoes] == ["core: no risk plugin answered (fail closed)"]
    assert decided["BTC/USDT"] == (None, ["core: no risk plugin answered (fail closed)"])
    (record,) = [line for line in report.phase("validate").records if "sizing failed" in line]
    message = ("plugin 'wordy_sizer' in gobot_size_position: returned 'lots', expected a notional in the portfolio "
               "currency")
    assert record == f"ETH/USDT: no trade, sizing failed — {message}"
    assert decided["ETH/USDT"] == (None, [f"sizing failed: {message}"])
    assert set(live) == set(tested) == {"BTC/USDT"}  # no size, no intent: risk was never asked about ETH
