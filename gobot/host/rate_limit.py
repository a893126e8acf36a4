"""The rate-limit policy used when no plugin provides one (``gobot_rate_limit_policy``): never waits.

Replay and paper-on-bundled-data make no exchange requests, so nothing needs pacing; exchange
plugins ask ``ctx.rate_limiter`` before every request, whichever policy answers.
"""

from __future__ import annotations

from gobot_hookspecs import Priority


class NoWaitPolicy:
    #: Lets an exchange plugin tell that no real policy is enabled (and refuse to run unpaced).
    never_waits = True

    async def acquire(self, weight: float, priority: Priority, orders: int = 0) -> None:
        return None

    def on_response(self, status: int, headers: dict[str, str]) -> None:
        return None
