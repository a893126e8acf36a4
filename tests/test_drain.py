"""The bot's one drain (``gobot.run.alerting.drain``): whatever order things were queued on ``ctx`` in,
every reported execution error reaches the plugins before any alert goes out."""

from __future__ import annotations

import asyncio

from gobot_hookspecs import Alert, ExecutionError, hookimpl


class Listener:
    def __init__(self):
        self.seen: list[str] = []

    @hookimpl
    def gobot_on_execution_error(self, error):
        self.seen.append(f"error {error.message}")

    @hookimpl
    def gobot_send_alert(self, alert):
        self.seen.append(f"alert {alert.title}")


def test_a_drain_delivers_reported_errors_before_the_alerts_queued_earlier(replay_bot):
    listener = Listener()
    bot = replay_bot(plugins=[("listener", listener)])
    bot.ctx.alert(Alert(kind="paused", title="queued first"))
    bot.ctx.report_execution_error(ExecutionError(message="HTTP 418", kind="banned", plugin="exchange"))
    asyncio.run(bot.drain())
    # the breaker heard the ban first and opened; its alert, then the error's, queue behind the earlier one
    assert listener.seen == ["error HTTP 418", "alert queued first", "alert Circuit breaker CLOSED -> OPEN",
                             "alert Execution error (banned)"]
    assert not bot.ctx.pending_alerts and not bot.ctx.pending_execution_errors
    asyncio.run(bot.drain())  # nothing left: a second drain delivers nothing twice
    assert len(listener.seen) == 4
