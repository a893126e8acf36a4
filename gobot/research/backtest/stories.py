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
    """What one run's stories share: its series by symbol, the rules, the gate's decisions."""

    def __init__(self, run: BacktestRun, gate: Any, strategy: Any):
        self.run, self.settings = run, run.settings
        self.currency = run.currency
        at_close = self.settings.fill == "close"
        self.by_symbol = {}
        opened = (*run.trades, *run.simulation.open_positions)
        for s, sig in zip(run.series, run.signals):
            bars = [t.entry_bar if at_close else t.entry_bar - 1 for t in opened if t.symbol == s.symbol]
            said = rationales(strategy, run.params, s, bars) if strategy is not None else {}
            self.by_symbol[s.symbol] = (s, sig, said)
        self.decisions = getattr(gate, "decisions", None) or {}
        sizers = gate.sizers() if callable(getattr(gate, "sizers", None)) else None
        self.rule = sizing_rule(self.settings.sizing, self.currency, sizers)

    def story(self, number: int, symbol: str, direction: int, amount: float, entry_bar: int, entry_ms: int,
              entry_price: float, confidence: float | None, stop: float | None, exit_: dict | None) -> TradeStory:
        s, sig, said = self.by_symbol[symbol]
        settings, at_close = self.settings, self.settings.fill == "close"
        decision_bar = entry_bar if at_close else entry_bar - 1
        close = float(s.close[decision_bar])
        _, target = protective_levels(direction, close, _level(sig.stop_loss, decision_bar),
                                      _level(sig.take_profit, decision_bar), settings.stop_loss_percent,
                                      settings.take_profit_percent)
        action = Action.LONG if direction > 0 else Action.SHORT
        signal = StorySignal(source=self.run.strategy, action=action, confidence=confidence or 0.0,
                             rationale=said.get(decision_bar, ""),
                             time=_utc(int(s.timestamp[decision_bar]) + s.step_ms), timeframe=s.timeframe)
        decision = self.decisions.get((symbol, decision_bar))
        verdicts = [StoryVerdict(plugin=v.plugin, approved=v.approved, reason=v.reason)
                    for v in (decision.verdicts if decision is not None else [])]
        asked = decision.notional if decision is not None and decision.notional is not None else None
        sizing = self.rule
        if asked is not None and not math.isinf(asked):
            sizing += f": {asked:,.2f} {self.currency}"
        sizing += f" -> {amount:g} at {entry_price:.6g} = {amount * entry_price:,.2f} {self.currency}"
        entry_fee = fill_fee(amount, entry_price, settings.fee_percent)
        fills = [StoryFill(time=_utc(entry_ms), side=Side.BUY if direction > 0 else Side.SELL, purpose="open",
                           price=entry_price, amount=amount, fee=entry_fee, reason="signal")]
        extra: dict[str, Any] = {}
        if exit_ is not None:
            exit_fee = fill_fee(amount, exit_["price"], settings.fee_percent)
            fills.append(StoryFill(time=_utc(exit_["ms"]), side=Side.SELL if direction > 0 else Side.BUY,
                                   purpose="close", price=exit_["price"], amount=amount, fee=exit_fee,
                                   reason=exit_["reason"]))
            extra = {"exit_time": _utc(exit_["ms"]), "exit_price": exit_["price"], "exit_reason": exit_["reason"],
                     "pnl": exit_["pnl"]}
        return TradeStory(id=f"bt-{number}", symbol=symbol, direction=action, amount=amount,
                          entry_time=_utc(entry_ms), entry_price=entry_price, stop_loss=stop, take_profit=target,
                          fees=sum(f.fee for f in fills), currency=self.currency, strategy=self.run.strategy,
                          strategy_version=None, signal=signal, verdicts=verdicts, sizing=sizing, fills=fills,
                          **extra)


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
            stories.append(teller.story(number, t.symbol, t.direction, t.amount, t.entry_bar, t.entry_ms,
                                        t.entry_price, t.confidence, t.stop_loss, None))
        else:
            exit_ = {"ms": t.exit_ms, "price": t.exit_price, "reason": t.exit_reason, "pnl": t.pnl}
            stories.append(teller.story(number, t.symbol, 1 if t.direction is Action.LONG else -1, t.amount,
                                        t.entry_bar, t.entry_ms, t.entry_price, t.confidence, t.initial_stop_loss,
                                        exit_))
    return stories
