"""What the plugins say of themselves (``gobot_status``), and the circuit breaker among them:
read by progress.json, ``gobot risk status`` and the operator's view (``gobot.ops.status``)."""

from __future__ import annotations

import logging
import time

from gobot.run import RunningBot
from gobot_hookspecs import PluginStatus

log = logging.getLogger(__name__)


async def plugin_statuses(bot: RunningBot, max_age: float = 0.0) -> dict[str, PluginStatus | str]:
    """Every plugin's ``gobot_status`` answer; a plugin that raised or answered nonsense maps to the error text.

    Called with a hook caller of its own, so a failure here is logged but never counted against
    the cycle that happens to be running. Answers asked less than ``max_age`` seconds ago, in the same
    cycle, are reused: the dashboard document built as a cycle ends shares those progress.json just
    asked for, so the plugins are asked once per cycle, however many pages watch (and a new cycle
    always asks again, also when progress.json skipped it).
    """
    from gobot.host.hook_caller import HookCaller

    asked = bot.statuses_asked
    if asked is not None and asked[1] == bot.state.iteration and time.monotonic() - asked[0] < max_age:
        return asked[2]

    errors: dict[str, str] = {}

    def failed(failure) -> None:
        log.warning("%s", failure)
        errors[failure.plugin] = f"{type(failure.error).__name__}: {failure.error}"

    answers: dict[str, PluginStatus | str] = dict(errors)
    for plugin, answer in await HookCaller(bot.plugin_set.pm, on_failure=failed).collect("gobot_status", ctx=bot.ctx):
        if isinstance(answer, PluginStatus):
            answers[plugin] = answer.model_copy(update={"plugin": plugin})
        else:
            answers[plugin] = f"returned {type(answer).__name__}, expected PluginStatus or None"
    answers.update(errors)
    bot.statuses_asked = (time.monotonic(), bot.state.iteration, answers)
    return answers


def breaker_status(statuses: dict[str, PluginStatus | str]) -> PluginStatus | None:
    """The circuit breaker's ``gobot_status`` answer (``breaker=True``; the first in call order), if any.

    The core knows the breaker only by what it answers, so a replacement under any name is shown the same.
    """
    return next((s for s in statuses.values() if isinstance(s, PluginStatus) and s.breaker), None)


def breaker_state(statuses: dict[str, PluginStatus | str]) -> str:
    """The breaker's state as /health, the dashboard, progress.json and `gobot risk status` show it."""
    status = breaker_status(statuses)
    return (status.state or "unknown") if status is not None else "not installed"
