"""Losing the shared Redis mid-run (issue 15, finding 7): a bounded wait, a local budget, sharing again.

The limiters talk to the real Redis on 127.0.0.1:6379 through a TCP proxy this test cuts and
restores, so the failure is a real one: connections reset, then refused. Time is the limiters'
injected clock; the only real-time bound is ``asyncio.wait_for``, which turns a hang into a failure.
"""

from __future__ import annotations

import asyncio
import uuid

from gobot_hookspecs import Priority, RateLimit
from gobot_plugins.adaptive_rate_limit import policy as limiter_policy
from gobot_plugins.adaptive_rate_limit.budgets import RedisStore
from servers.tcp_proxy import TcpProxy
from test_adaptive_rate_limit import REDIS_URL, FakeClock, limiter, redis_or_skip

HANG = 10.0  # seconds of real time after which a request that has not returned counts as hung


def test_losing_redis_mid_run_means_a_local_share_and_a_critical_alert_then_sharing_again_when_it_returns():
    redis_or_skip()
    import redis

    scope = f"outage-test-{uuid.uuid4().hex[:8]}"
    limits = [RateLimit(kind="weight", limit=100, window_seconds=60)]
    with TcpProxy("127.0.0.1", 6379) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"

        async def scenario():
            clock = FakeClock()
            alerts = []
            bot = limiter(clock, limits=limits, alerts=alerts, store=RedisStore(url), scope=scope)
            other = limiter(clock, limits=limits, store=RedisStore(url), scope=scope)  # a second bot on the same budget
            await other.acquire(1, Priority.LOW)
            for _ in range(10):
                await bot.acquire(1, Priority.LOW)

            proxy.cut()
            # Before: the ConnectionError killed the limiter's dispatcher, and these never returned.
            await asyncio.wait_for(bot.acquire(1, Priority.LOW), HANG)
            await asyncio.wait_for(bot.acquire(1, Priority.CRITICAL), HANG)
            seen = {"sharers": bot.sharers}  # known before Redis went away
            seen["lost"] = [(a.severity.value, a.title, a.text) for a in alerts if a.kind == "rate_limit_store"]
            seen["state"] = bot.status().state
            # The local budget is this bot's half (2 sharers) of the 100: 12 used, 38 more at once...
            start = clock()
            for _ in range(38):
                await asyncio.wait_for(bot.acquire(1, Priority.LOW), HANG)
            seen["38 more waited"] = clock() - start
            start = clock()
            # ...and the 51st waits for the window to move on
            await asyncio.wait_for(bot.acquire(1, Priority.LOW), HANG)
            seen["the 51st waited"] = clock() - start

            proxy.restore()
            clock.t += limiter_policy.STORE_RETRY_SECONDS  # the limiter tries Redis again
            await asyncio.wait_for(bot.acquire(1, Priority.LOW), HANG)
            seen["back"] = [(a.severity.value, a.title) for a in alerts if a.kind == "rate_limit_store"][1:]
            seen["state after"] = bot.status().state
            # The shared log holds what the bot spent while Redis was away (the 51st), and the request since:
            # the other bot counts both.
            seen["other bot counts"] = other.used("weight", 60)
            direct = redis.Redis.from_url(REDIS_URL)
            seen["in Redis"] = direct.zcount(f"gobot:budget:{scope}:weight:60000", int(clock() * 1000) - 60000 + 1,
                                             "+inf")
            direct.close()
            bot.close()
            other.close()
            return seen

        seen = asyncio.run(scenario())

    assert seen["sharers"] == 2
    [(severity, title, text)] = seen["lost"]
    assert severity == "CRITICAL" and "unreachable" in title and "1/2 of each budget" in text
    assert seen["state"] == "LOCAL_BUDGET"
    assert seen["38 more waited"] == 0
    assert 59 <= seen["the 51st waited"] <= 61
    assert seen["back"] == [("INFO", "Shared rate-limit budget back")]
    assert seen["state after"] == "OK"
    assert seen["other bot counts"] == seen["in Redis"] == 2
