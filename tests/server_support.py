"""Helpers shared by the server and dashboard tests: a real bot run whose cycles complete only
when the test lets them, with the dashboard server on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx

from gobot.ops.server import DashboardServer
from gobot.run.runner import Runner
from gobot_hookspecs import hookimpl

TOKEN = "s3cret-dashboard-token"


class Pacer:
    """Lets cycles finish only as the test allows: each ``gobot_on_cycle_end`` takes a permit.

    A cycle is persisted and counted before its ``gobot_on_cycle_end``, so with ``free`` permits the
    bot completes ``free + 1`` cycles and then waits inside the last one's event.
    """

    def __init__(self, free: int = 0):
        self.permits = asyncio.Semaphore(free)

    def allow(self, cycles: int = 1) -> None:
        for _ in range(cycles):
            self.permits.release()

    @hookimpl
    async def gobot_on_cycle_end(self):
        await self.permits.acquire()


async def until(condition, timeout: float = 10.0, what: str = "condition"):
    """Wait for ``condition()`` to hold (checked every few ms), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def served(bot, *, token: str | None = TOKEN, stall_seconds: float | None = None, max_iterations: int = 0,
                 **options):
    """The bot running (its runner as a task) with the server on a free loopback port (``options``:
    more of DashboardServer's settings, e.g. ``max_connections``, ``idle_timeout``)."""
    runner = Runner(bot, max_iterations)
    server = DashboardServer(bot, runner, host="127.0.0.1", port=0, token=token, stall_seconds=stall_seconds, **options)
    url = await server.start()
    task = asyncio.create_task(runner.run())
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield server, runner, task, client
    finally:
        if not task.done():
            runner.request_stop("test over")
            for permits in [p for _, p in bot.plugin_set.pm.list_name_plugin() if isinstance(p, Pacer)]:
                permits.allow(5)
            await asyncio.wait_for(task, 10)
        await server.stop()


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
