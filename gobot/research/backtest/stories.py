"""Each simulated trade as a ``gobot_hookspecs.TradeStory``: what a chart's drill-down shows.

Built after the run from what it already holds, so the simulation's hot paths do no extra work: the
trade records (fills, fees, exit reason, the stop at entry), the signals (confidence; the rationale
when the per-bar path kept its answers: ``run(..., keep_answers=True)``), the target at entry
(``gobot_hookspecs.fills.protective_levels``, as the engine sets it) and, with the plugin gate, its
decisions (``PluginGate.keep_decisions()``): the sizer's notional and every risk verdict.

A story's ``id`` is the backtester's trade number, ``bt-1`` for the first trade opened.
"""

from __future__ import annotations

import math
from typing import Any

from gobot.research.backtest.engine import BacktestRun, Sizing, _level, _utc
from gobot_hookspecs import Action, Side, StoryFill, StorySignal, StoryVerdict, TradeStory
from gobot_hookspecs.fills import fee as fill_fee
from gobot_hookspecs.fills import protective_levels
from gobot_hookspecs.money import quotes


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


class _Teller:
    """What one run's stories share: its series by symbol, the rules, the gate's decisions."""

    def __init__(self, run: BacktestRun, gate: Any):
        self.run, self.settings = run, run.settings
        self.currency = "/".join(quotes(s.symbol for s in run.series))
        self.by_symbol = {s.symbol: (s, sig, dict(sig.answers or ())) for s, sig in zip(run.series, run.signals)}
        self.decisions = getattr(gate, "decisions", None) or {}
        sizers = gate.sizers() if callable(getattr(gate, "sizers", None)) else None
        self.rule = sizing_rule(self.settings.sizing, self.currency, sizers)

    def story(self, number: int, symbol: str, direction: int, amount: float, entry_bar: int, entry_ms: int,
              entry_price: float, confidence: float | None, stop: float | None, exit_: dict | None) -> TradeStory:
        s, sig, answers = self.by_symbol[symbol]
        settings, at_close = self.settings, self.settings.fill == "close"
        decision_bar = entry_bar if at_close else entry_bar - 1
        close = float(s.close[decision_bar])
        _, target = protective_levels(direction, close, _level(sig.stop_loss, decision_bar),
                                      _level(sig.take_profit, decision_bar), settings.stop_loss_percent,
                                      settings.take_profit_percent)
        action = Action.LONG if direction > 0 else Action.SHORT
        answer = answers.get(decision_bar)
        signal = StorySignal(source=self.run.strategy, action=action, confidence=confidence or 0.0,
                             rationale=getattr(answer, "rationale", "") or "",
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


def trade_stories(run: BacktestRun, gate: Any = None) -> list[TradeStory]:
    """Every trade of ``run`` (the positions still open at the end included, ``exit_time`` None), oldest
    first. ``gate``: the run's gate; a ``PluginGate`` that kept its decisions adds sizing and verdicts."""
    teller = _Teller(run, gate)
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
