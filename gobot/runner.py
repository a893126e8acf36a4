"""When cycles run: back to back on a simulated clock (replay), or every ``loop_interval`` seconds
by APScheduler (live and paper on exchange data). Both call the same ``Bot.run_cycle``.

The run ends on ``max_iterations``, a completion target (daily profit target, max daily loss),
the end of the replay data, the kill switch, or SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from gobot_hookspecs import Alert, Severity

from .orchestrator import Bot, CycleAbandoned

log = logging.getLogger(__name__)

KILL_SWITCH_POLL_SECONDS = 2.0
HEARTBEAT_SECONDS = 30.0


@dataclass
class RunOutcome:
    reason: str
    finished: bool  # finished runs start afresh next time; others resume
    cycles_run: int


class Runner:
    def __init__(self, bot: Bot, max_iterations: int | None = None):
        self.bot = bot
        self.max_iterations = bot.settings.orchestrator.max_iterations if max_iterations is None else max_iterations
        self.cycles_run = 0
        self.outcome: RunOutcome | None = None
        self._wake = asyncio.Event()
        self._cycle_lock = asyncio.Lock()

    def _end(self, reason: str, finished: bool) -> None:
        if self.outcome is None:
            self.outcome = RunOutcome(reason, finished, self.cycles_run)
        self._wake.set()

    def request_stop(self, reason: str = "stop requested (signal)") -> None:
        """SIGINT/SIGTERM: finish the cycle if it reached execute, else abandon it (never persisted); exit."""
        self.bot.stop_requested = True
        self._end(reason, finished=False)

    def _before_cycle(self) -> bool:
        """Check the stopping rules; True if a cycle may run now."""
        bot, state = self.bot, self.bot.state
        if self.outcome is not None:
            return False
        if bot.kill_switch_on():
            self._end(f"kill switch ({bot.settings.kill_switch_path})", finished=False)
            return False
        if self.max_iterations and state.iteration >= self.max_iterations:
            self._end(f"max_iterations ({self.max_iterations}) reached", finished=True)
            return False
        end = getattr(bot.clock, "end", None)
        if end is not None and bot.clock.now() > end:
            self._end("replay data exhausted", finished=True)
            return False
        return True

    def _after_cycle(self) -> None:
        bot = self.bot
        orchestrator = bot.settings.orchestrator
        daily = bot.daily_pnl()
        if daily >= orchestrator.daily_profit_target:
            self._end(f"daily profit target reached ({daily:+.2f} >= {orchestrator.daily_profit_target:g})", True)
        elif daily <= -orchestrator.max_daily_loss:
            self._end(f"max daily loss reached ({daily:+.2f} <= -{orchestrator.max_daily_loss:g})", True)

    async def _one_cycle(self) -> None:
        async with self._cycle_lock:
            if not self._before_cycle():
                return
            try:
                await self.bot.run_cycle()
            except CycleAbandoned:
                return
            self.cycles_run += 1
            self.bot.store.beat(self.bot.state)
            self._after_cycle()
            self._before_cycle()  # end promptly when this cycle was the last

    async def run(self) -> RunOutcome:
        bot = self.bot
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop, f"stopped by {sig.name}")
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            await bot.startup()
            if bot.clock.simulated:
                while self.outcome is None:
                    await self._one_cycle()
                    await asyncio.sleep(0)  # let signal handlers run between simulated cycles
            else:
                await self._scheduled()
        finally:
            heartbeat.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            async with self._cycle_lock:  # a cycle in flight finishes (or abandons) first
                pass
            outcome = self.outcome or RunOutcome("stopped", False, self.cycles_run)
            outcome.cycles_run = self.cycles_run
            # Every completed cycle was persisted at its end; an abandoned one is deliberately not.
            if outcome.finished:
                bot.finish(outcome.reason)
                bot.ctx.alert(Alert(kind="run_completed", title=f"Run complete: {outcome.reason}", severity=Severity.INFO))
            if "kill switch" in outcome.reason:
                bot.ctx.alert(Alert(kind="kill_switch", title="Kill switch: no new orders, run stopped", severity=Severity.CRITICAL))
            await bot.shutdown(outcome.reason)
        return outcome

    async def _heartbeat(self) -> None:
        """Prove liveness every HEARTBEAT_SECONDS, also while a long cycle or a long wait runs."""
        while True:
            self.bot.store.beat(self.bot.state)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _scheduled(self) -> None:
        """Wall-clock runs: APScheduler fires a cycle every ``loop_interval`` seconds."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone="UTC")
        scheduler.add_job(
            self._one_cycle,
            IntervalTrigger(seconds=self.bot.settings.orchestrator.loop_interval, timezone="UTC"),
            next_run_time=self.bot.clock.now(),
            max_instances=1,  # a slow cycle is never overlapped by the next one
            coalesce=True,  # missed runs collapse into one
            misfire_grace_time=None,
            id="cycle",
        )
        # The kill switch is honoured between cycles too, not only when the next one is due.
        scheduler.add_job(self._before_cycle, IntervalTrigger(seconds=KILL_SWITCH_POLL_SECONDS, timezone="UTC"), id="kill")
        scheduler.start()
        try:
            while self.outcome is None:
                await self._wake.wait()
        finally:
            scheduler.shutdown(wait=False)
