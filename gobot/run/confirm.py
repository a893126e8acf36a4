"""Confirm-first orders (``[trading] auto_execute = false``): before the execute phase sends anything,
``gobot_confirm_order`` is asked about every intent at once (a human may answer them in any order).
A confirmed intent is sent as usual; the others become ``proposed`` orders, audited and alerted.
"""

from __future__ import annotations

import asyncio

from gobot.errors import PluginError
from gobot.host.hook_caller import HookFailure
from gobot.run import RunningBot
from gobot_hookspecs import Alert, CycleReport, Order, OrderIntent, PhaseRecord
from gobot_hookspecs.money import money


async def confirm_first(bot: RunningBot, report: CycleReport, phase: PhaseRecord,
                        intents: list[OrderIntent]) -> list[OrderIntent]:
    """The confirmed intents; the others are only proposed (``report.orders``, ``gobot_on_order``, an alert)."""
    answers = await asyncio.gather(*(confirmation(bot, intent) for intent in intents))
    confirmed = []
    for intent, (plugin, answer) in zip(intents, answers):
        if answer is True:
            bot.audit("order_confirmed", intent=intent, plugin=plugin)
            phase.records.append(f"{intent.symbol}: confirmed by {plugin}")
            confirmed.append(intent)
            continue
        why = "auto_execute = false" + ("" if answer is None else f"; rejected by {plugin}")
        order = proposed(intent)
        report.orders.append(order)
        bot.audit("order_proposed", order=order, intent=intent, confirmation=plugin or None, confirmed=answer)
        await bot.hooks.notify("gobot_on_order", ctx=bot.ctx, order=order)
        bot.ctx.alert(Alert(kind="order_proposed", title=f"Proposed {intent.side.value} {intent.symbol}",
                            text=f"{money(intent.notional_usd, bot.ctx.currency)} ({why})"))
        phase.records.append(f"{intent.symbol}: proposed only ({why})")
    return confirmed


async def confirmation(bot: RunningBot, intent: OrderIntent) -> tuple[str, bool | None]:
    """(plugin, True/False), or ("", None) when nobody answered; a raising confirmer rejects (fails closed)."""
    try:
        answer = await bot.hooks.first("gobot_confirm_order", ctx=bot.ctx, intent=intent)
    except PluginError as exc:
        bot.failures.append(HookFailure(exc.plugin, "gobot_confirm_order", exc))
        return exc.plugin, False
    if answer is None:
        return "", None
    plugin, value = answer
    return plugin, value is True


def proposed(intent: OrderIntent) -> Order:
    """The order an unconfirmed intent would have been, with status ``proposed``."""
    return Order(
        id=intent.client_order_id, client_order_id=intent.client_order_id, intent_id=intent.id,
        symbol=intent.symbol, side=intent.side, purpose=intent.purpose, amount=intent.amount,
        stop_loss=intent.stop_loss, take_profit=intent.take_profit, status="proposed",
        created_at=intent.created_at, executor="core",
    )
