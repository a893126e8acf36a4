"""Each simulated trade as a ``gobot_hookspecs.TradeStory``: what a chart's drill-down shows.

Built after the run from what it already holds, so the simulation's hot paths do no extra work: the
trade records (fills, fees, exit reason, the stop at entry), the signals (the confidence), the target
at entry (``gobot_hookspecs.fills.protective_levels``, as the engine sets it) and, with the plugin
gate, its decisions (``PluginGate.keep_decisions()``): the sizer's notional and every risk verdict.
The rationale is the strategy's own words: its ``signal()`` asked again at each trade's decision bar
only, with the candles up to that bar (what the per-bar path asked; vectorized answers have no words).

A story's ``id`` is the backtester's trade number, ``bt-1`` for the first trade opened.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gobot.research.backtest.engine import BacktestRun, CandleWindow, Sizing, _level, _utc
from gobot_hookspecs import Action, Side, StoryFill, StorySignal, StoryVerdict, TradeStory
from gobot_hookspecs.fills import fee as fill_fee
from gobot_hookspecs.fills import protective_levels


def sizing_rule(sizing: Sizing, currency: str, sizers: list[str] | None = None) -> str:
    """How the backtest sized an entry, in words."""
    if sizing.kind == "all_in":
        return "all-in: the whole available margin"
    if sizing.kind == "percent":
        return f"{sizing.value:g}% of equity"
    if sizing.kind == "fixed":
        return f"fixed notional {sizing.value:g} {currency}".rstrip()
    if sizers:
        return f"sizer plugin {', '.join(sizers)}" + (" (the first answer counts)" if len(sizers) > 1 else "")
    return "no sizer plugin: [trading] max_position_usd"


def rationales(strategy: Any, params: dict[str, float], series: Any, bars: list[int]) -> dict[int, str]:
    """What ``strategy.signal()`` says at each of ``bars`` of ``series`` (candles up to that bar, one
    window that grows as the per-bar path's does), by bar; a failing call says so instead."""
    window, closes, said = CandleWindow(series), series.close.tolist(), {}
    for bar in sorted(set(bars)):
        window.close.extend(closes[len(window.close) : bar + 1])
        try:
            answer = strategy.signal(series.symbol, window, dict(params))
            said[bar] = str(getattr(answer, "rationale", "") or "")
        except Exception as exc:  # the story says so; the backtest itself did not ask signal() here
            said[bar] = f"(signal() raised {type(exc).__name__}: {exc})"
    return said


class _Teller:
    """What one run's stories share: its series by symbol (plain arrays), the rules, the gate's decisions.
    A year of 1m candles with 6,321 trades: about 0.35 s of stories, the rationales included."""

    def __init__(self, run: BacktestRun, gate: Any, strategy: Any):
        self.run, self.settings = run, run.settings
        self.currency = run.currency
        self.at_close = self.settings.fill == "close"
        self.by_symbol = {}
        opened = (*run.trades, *run.simulation.open_positions)
        for s, sig in zip(run.series, run.signals):
            bars = [t.entry_bar if self.at_close else t.entry_bar - 1 for t in opened if t.symbol == s.symbol]
            said = rationales(strategy, run.params, s, bars) if strategy is not None else {}
            # ndarray views, not the cache's memmaps: a memmap costs microseconds per element read
            self.by_symbol[s.symbol] = (s, np.asarray(s.timestamp), np.asarray(s.close), sig, said)
        self.decisions = getattr(gate, "decisions", None) or {}
        sizers = gate.sizers() if callable(getattr(gate, "sizers", None)) else None
        self.rule = sizing_rule(self.settings.sizing, self.currency, sizers)

    def signal(self, symbol: str, bar: int, action: Action, confidence: float | None) -> StorySignal:
        s, timestamp, _, _, said = self.by_symbol[symbol]
        return StorySignal(source=self.run.strategy, action=action, confidence=confidence or 0.0,
                                           rationale=said.get(bar, ""), time=_utc(int(timestamp[bar]) + s.step_ms),
                                           timeframe=s.timeframe)

    def target(self, symbol: str, bar: int, direction: int) -> float | None:
        """The take-profit the position rested with (``protective_levels`` of the decision, as the engine set it)."""
        _, _, close, sig, _ = self.by_symbol[symbol]
        settings = self.settings
        return protective_levels(direction, float(close[bar]), _level(sig.stop_loss, bar), _level(sig.take_profit, bar),
                                 settings.stop_loss_percent, settings.take_profit_percent)[1]

    def sizing(self, decision: Any, amount: float, price: float) -> str:
        asked = decision.notional if decision is not None else None
        line = self.rule
        if asked is not None and not math.isinf(asked):
            line += f": {asked:,.2f} {self.currency}"
        return line + f" -> {amount:g} at {price:.6g} = {amount * price:,.2f} {self.currency}"

    def fill(self, ms: int, direction: int, purpose: str, price: float, amount: float, reason: str) -> StoryFill:
        return StoryFill(time=_utc(ms), side=Side.BUY if direction > 0 else Side.SELL, purpose=purpose,
                                         price=price, amount=amount, commissions={}, reason=reason,
                                         fee=fill_fee(amount, price, self.settings.fee_percent))

    def story(self, number: int, t: Any, direction: int, stop: float | None, closed: bool) -> TradeStory:
        """Trade ``t`` (a ``TradeRecord``, or an ``OpenPosition`` still open at the end) as story ``bt-<number>``."""
        bar = t.entry_bar if self.at_close else t.entry_bar - 1  # the decision's bar
        action = Action.LONG if direction > 0 else Action.SHORT
        decision = self.decisions.get((t.symbol, bar))
        verdicts = [StoryVerdict(plugin=v.plugin, approved=v.approved, reason=v.reason)
                    for v in (decision.verdicts if decision is not None else ())]
        fills = [self.fill(t.entry_ms, direction, "open", t.entry_price, t.amount, "signal")]
        if closed:
            fills.append(self.fill(t.exit_ms, -direction, "close", t.exit_price, t.amount, t.exit_reason))
        return TradeStory(
            id=f"bt-{number}", symbol=t.symbol, direction=action, amount=t.amount, entry_time=_utc(t.entry_ms),
            entry_price=t.entry_price, exit_time=_utc(t.exit_ms) if closed else None,
            exit_price=t.exit_price if closed else None, exit_reason=t.exit_reason if closed else None,
            stop_loss=stop, take_profit=self.target(t.symbol, bar, direction), pnl=t.pnl if closed else None,
            fees=sum(f.fee for f in fills), currency=self.currency, strategy=self.run.strategy,
            strategy_version=getattr(t, "strategy_version", None), signal=self.signal(t.symbol, bar, action,
                                                                                      t.confidence),
            verdicts=verdicts, sizing=self.sizing(decision, t.amount, t.entry_price), fills=fills, images=[],
            answer=None)


def trade_stories(run: BacktestRun, gate: Any = None, strategy: Any = None) -> list[TradeStory]:
    """Every trade of ``run`` (the positions still open at the end included, ``exit_time`` None), oldest
    first. ``gate``: the run's gate; a ``PluginGate`` that kept its decisions adds sizing and verdicts.
    ``strategy``: the run's strategy component, asked for each trade's rationale (None: no rationale)."""
    teller = _Teller(run, gate, strategy)
    opened = [(t.entry_ms, 0, t) for t in run.trades] + [(p.entry_ms, 1, p) for p in run.simulation.open_positions]
    opened.sort(key=lambda item: (item[0], item[1]))
    stories = []
    for number, (_, still_open, t) in enumerate(opened, start=1):
        if still_open:
            stories.append(teller.story(number, t, t.direction, t.stop_loss, closed=False))
        else:
            stories.append(teller.story(number, t, 1 if t.direction is Action.LONG else -1, t.initial_stop_loss,
                                        closed=True))
    return stories
