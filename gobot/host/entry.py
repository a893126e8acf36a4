"""The entry decision, written once for the live bot and the backtester: size a signal (the
``gobot_size_position`` plugin), turn it into an order intent (the signal's stop and target, else the
configured percentages; a deterministic client order id) and ask every risk plugin (fail closed).

``gobot.run.bot`` and ``gobot.research.backtest.gate`` both call ``decide_entry``; what each does with
the answer (book it in the cycle report and alert, or count the veto) stays with the caller.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from gobot.errors import PluginError
from gobot.host.hook_caller import HookCaller, HookFailure
from gobot_hookspecs import Action, BotContext, OrderIntent, RiskVerdict, Side, Signal
from gobot_hookspecs.fills import protective_levels

LIVE_ID_PREFIX = "gb"  # a running bot's client order ids: its orders on an exchange account read as gobot's
BACKTEST_ID_PREFIX = "bt"  # never sent anywhere; told apart from live ids in a mixed log or archive
NO_POSITION = "the sizer chose no position"
NO_RISK_ANSWER = RiskVerdict(approved=False, plugin="core", reason="no risk plugin answered (fail closed)")


@dataclass(slots=True)
class EntryDecision:
    """What came of one signal: approved, or the ``reasons`` why not.

    ``notional``: the size (None when the sizer failed); ``intent``: the intent the risk plugins
    judged (None when sizing refused or risk was not asked); ``verdicts``: every verdict, each tagged
    with the intent's symbol and id (the core's fail-closed veto when no plugin answered);
    ``vetoes``: the refusals among them; ``sizing_error``: the sizer's failure, which names the plugin;
    ``reasons``: one line per refusal (``sizing failed: ...``, ``the sizer chose no position``,
    ``plugin: reason``), empty when approved.
    """

    notional: float | None
    intent: OrderIntent | None = None
    verdicts: list[RiskVerdict] = field(default_factory=list)
    vetoes: list[RiskVerdict] = field(default_factory=list)
    sizing_error: PluginError | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def approved(self) -> bool:
        return not self.reasons

    def sizing_failure(self) -> HookFailure | None:
        error = self.sizing_error
        return None if error is None else HookFailure(error.plugin, "gobot_size_position", error)


def client_order_id(prefix: str, run_id: str, iteration: int, symbol: str, side: Side, purpose: str) -> str:
    """The same run, cycle, symbol, side and purpose give the same id: a re-run cycle never sends twice."""
    key = f"{run_id}|{iteration}|{symbol}|{side.value}|{purpose}"
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:24]


def order_intent(ctx: BotContext, symbol: str, side: Side, purpose: str, notional: float, price: float,
                 signal: Signal | None, *, id_prefix: str, created_at: datetime, stop_loss_percent: float | None = None,
                 take_profit_percent: float | None = None, quote_rate: float = 1.0) -> OrderIntent:
    """An intent of cycle ``ctx.iteration`` of run ``ctx.run_id``; an open one gets the signal's stop and
    target, else ``*_percent`` away from ``price`` (None: none). A negative notional is shown as 0.
    ``notional`` is in the portfolio currency, ``quote_rate`` what one unit of the symbol's quote is worth in it."""
    stop = take = None
    if purpose == "open":  # the resting exits the backtester gives the same position
        own_stop, own_take = (signal.stop_loss, signal.take_profit) if signal is not None else (None, None)
        stop, take = protective_levels(1 if side is Side.BUY else -1, price, own_stop, own_take,
                                       stop_loss_percent, take_profit_percent)
    return OrderIntent(
        id=f"{ctx.iteration}-{symbol}-{purpose}",
        client_order_id=client_order_id(id_prefix, ctx.run_id, ctx.iteration, symbol, side, purpose),
        symbol=symbol, side=side, purpose=purpose, notional_usd=max(0.0, notional), reference_price=price,
        quote_rate=quote_rate,
        stop_loss=stop, take_profit=take, signal=signal, created_at=created_at,
    )


async def size_position(hooks: HookCaller, ctx: BotContext, signal: Signal) -> float:
    """The first sizer's notional; none answering = ``[trading].max_position_usd``.

    Raises ``PluginError`` naming the plugin when a sizer raises or answers something that is not a
    number (a bool or NaN included): no size, no trade.
    """
    answer = await hooks.first("gobot_size_position", ctx=ctx, signal=signal)
    if answer is None:
        return ctx.config.trading.max_position_usd
    plugin, size = answer
    if isinstance(size, bool) or not isinstance(size, (int, float)) or size != size:
        raise PluginError(plugin, f"returned {size!r}, expected a notional in the portfolio currency",
                          hook="gobot_size_position")
    return float(size)


async def decide_entry(hooks: HookCaller, ctx: BotContext, signal: Signal, price: float, *, id_prefix: str,
                       created_at: datetime, stop_loss_percent: float | None, take_profit_percent: float | None,
                       notional: float | None = None, check_risk: bool = True,
                       quote_rate: float = 1.0) -> EntryDecision:
    """Decide whether ``signal`` (LONG or SHORT) opens a position at ``price``, as every cycle does.

    ``notional``: a size chosen by the caller (the backtester's fixed, percent or all-in sizing);
    None asks the sizer plugins, and an answer of 0 or less is no position. Every risk plugin judges
    the intent; any veto refuses it, and no verdict at all is the core's veto (fail closed). The
    verdicts are audited through ``ctx.audit("risk_verdicts", ...)``. ``check_risk=False`` (a backtest
    with ``--risk none``) stops after sizing, without building the intent nobody would read.
    ``quote_rate``: one unit of the symbol's quote in the portfolio currency (the bot's portfolio knows it).
    """
    if notional is None:
        try:
            notional = await size_position(hooks, ctx, signal)
        except PluginError as exc:
            return EntryDecision(None, sizing_error=exc, reasons=[f"sizing failed: {exc}"])
        if notional <= 0:
            return EntryDecision(notional, reasons=[NO_POSITION])
    if not check_risk:
        return EntryDecision(notional)
    side = Side.BUY if signal.action is Action.LONG else Side.SELL
    intent = order_intent(ctx, signal.symbol, side, "open", notional, price, signal, id_prefix=id_prefix,
                          created_at=created_at, stop_loss_percent=stop_loss_percent,
                          take_profit_percent=take_profit_percent, quote_rate=quote_rate)
    # Every verdict says which intent it judged, so reporters and the archiver can keep them all.
    verdicts = await hooks.risk(ctx=ctx, intent=intent) or [
        NO_RISK_ANSWER.model_copy(update={"symbol": intent.symbol, "intent_id": intent.id})]
    ctx.audit("risk_verdicts", intent=intent, verdicts=verdicts)
    vetoes = [v for v in verdicts if not v.approved]
    return EntryDecision(notional, intent, verdicts, vetoes, reasons=[f"{v.plugin}: {v.reason}" for v in vetoes])
