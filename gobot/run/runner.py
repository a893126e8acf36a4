"""When cycles run: back to back on a simulated clock (replay), or every ``loop_interval`` seconds
by APScheduler (live and paper on exchange data). Both call the same ``Bot.run_cycle``.

The run ends on ``max_iterations``, a completion target (daily profit target, max daily loss),
the end of the replay data, the kill switch, or SIGINT/SIGTERM. With the kill switch on and a
close-out requested (``gobot kill --close-positions``), it first runs close-out cycles — no new
orders, CRITICAL closes only — until the bot is flat.

A full disk never ends the run: the bot opens no new positions until the state can be saved again
(``gobot.run.disk``); a file size limit (``ulimit -f``) is one more such write error (EFBIG: Python
ignores SIGXFSZ). At start, with the run lock held,
temporary files a killed process left in the state folder are removed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass
from typing import Callable

from gobot.errors import PluginError, StartRefused
from gobot.run.bot import Bot, CycleAbandoned
from gobot_hookspecs import Alert, Severity
from gobot_hookspecs.money import money

log = logging.getLogger(__name__)

KILL_SWITCH_POLL_SECONDS = 2.0
#: The logger the scheduler writes to: under "apscheduler" (WARNING and up reach gobot.log and
#: stderr), with apscheduler's "skipped: maximum number of running instances reached" dropped —
#: the Runner says that in its own words, once (see ``Runner._on_job_event``).
SCHEDULER_LOGGER = "apscheduler.scheduler.gobot"
MAX_CLOSE_OUT_CYCLES = 20  # then the run ends with a CRITICAL alert: the exchange must be looked at
CLOSE_OUT_RETRY_SECONDS = 5.0  # wall clock: least time between two close-out cycles
#: Simulated clock: least wall time between two heartbeats written after cycles. A replay runs hundreds
#: of cycles a second; a heartbeat is wall-clock proof of life (the watchdog's stale_after is seconds).
REPLAY_BEAT_SECONDS = 1.0


@dataclass
class RunOutcome:
    reason: str
    finished: bool  # finished runs start afresh next time; others resume
    cycles_run: int


class Runner:
    def __init__(self, bot: Bot, max_iterations: int | None = None, on_started: Callable[[], None] | None = None,
                 handle_signals: bool = True):
        """``on_started()`` is called once every plugin started, before the first cycle (see ``Bot.startup``).
        ``handle_signals=False``: SIGINT/SIGTERM are someone else's to hand to ``request_stop`` (several
        runners in one event loop: ``gobot.run.sleeves``)."""
        self.bot = bot
        self.handle_signals = handle_signals
        self.clock_end_reason = "replay data exhausted"  # why a simulated clock past its ``end`` ends the run
        self.on_started = on_started
        self.max_iterations = bot.settings.orchestrator.max_iterations if max_iterations is None else max_iterations
        self.cycles_run = 0
        self.outcome: RunOutcome | None = None
        self._wake = asyncio.Event()
        self._cycle_lock = asyncio.Lock()
        self.close_out_cycles = 0
        self._last_close_out = 0.0
        self._last_beat = float("-inf")  # time.monotonic() of the last heartbeat written after a cycle
        self._mid_cycle = False  # a cycle began and did not complete: the state in memory is not the saved one
        self.scheduler = None  # the AsyncIOScheduler of a wall-clock run, once it started
        self.optimizer_job = None  # its optimizer job, with [optimizer] scheduled
        self.overruns = 0  # wall clock: cycles that took longer than loop_interval
        self.skipped_starts = 0  # scheduled cycle starts dropped because the previous cycle still ran
        self._skipping: dict[str, int] = {}  # job id -> starts skipped in the overrun going on now

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
            if bot.requests.close_out_pending():
                if self.close_out_cycles < MAX_CLOSE_OUT_CYCLES:
                    return True  # a close-out cycle: the kill switch lets only CRITICAL closes out
                bot.ctx.alert(Alert(kind="close_out_incomplete", severity=Severity.CRITICAL,
                                    title=f"Close-out incomplete after {self.close_out_cycles} cycles",
                                    text=f"{len(bot.state.positions)} positions still open: check the exchange"))
            self._end(f"kill switch ({bot.settings.kill_switch_path})", finished=False)
            return False
        if self.max_iterations and state.iteration >= self.max_iterations:
            self._end(f"max_iterations ({self.max_iterations}) reached", finished=True)
            return False
        end = getattr(bot.clock, "end", None)
        if end is not None and bot.clock.now() > end:
            self._end(self.clock_end_reason, finished=True)
            return False
        return True

    def _after_cycle(self) -> None:
        bot = self.bot
        if bot.kill_switch_on() and bot.requests.close_out_pending():
            return  # a close-out goes on until flat, whatever today's P&L
        orchestrator = bot.settings.orchestrator
        daily, currency = bot.daily_pnl(), bot.ctx.currency
        if daily >= orchestrator.daily_profit_target:
            self._end(f"daily profit target reached ({money(daily, currency, True)} >= "
                      f"{orchestrator.daily_profit_target:g})", True)
        elif daily <= -orchestrator.max_daily_loss:
            self._end(f"max daily loss reached ({money(daily, currency, True)} <= -{orchestrator.max_daily_loss:g})",
                      True)

    async def _one_cycle(self) -> None:
        async with self._cycle_lock:
            if not self._before_cycle():
                return
            closing_out = self.bot.kill_switch_on()
            self._mid_cycle = True
            try:
                await self.bot.run_cycle()
            except CycleAbandoned:
                return
            self._mid_cycle = False
            if closing_out:
                self.close_out_cycles += 1
                self._last_close_out = asyncio.get_running_loop().time()
            self.cycles_run += 1
            if not self.bot.clock.simulated or time.monotonic() - self._last_beat >= REPLAY_BEAT_SECONDS:
                self._last_beat = time.monotonic()
                self.bot.beat()
            self._after_cycle()
            self._before_cycle()  # end promptly when this cycle was the last

    async def run(self) -> RunOutcome:
        bot = self.bot
        if not bot.store.acquire_run_lock():
            raise StartRefused(f"another gobot is running on {bot.store.dir} (it holds {bot.store.lock_file.name}); "
                               "stop it first, or use another state_dir")
        stale = bot.store.remove_stale_temporaries()
        if stale:
            log.info("removed temporary files left by a killed process: %s", ", ".join(stale))
            bot.audit("stale_temporaries_removed", files=stale)
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if self.handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self.request_stop, f"stopped by {sig.name}")
        heartbeat = asyncio.create_task(self._heartbeat())
        refused: PluginError | None = None  # a plugin would not start: the run never began
        try:
            try:
                await bot.startup(self.on_started)
            except PluginError as exc:
                if exc.hook == "gobot_startup":
                    refused = exc
                raise
            if bot.clock.simulated:
                while self.outcome is None:
                    await self._one_cycle()
                    await asyncio.sleep(0)  # let signal handlers run between simulated cycles
            else:
                await self._scheduled()
        except Exception as exc:  # a crash is reported (CRITICAL run_stopped), then re-raised
            if refused is None:
                self._end(f"crashed: {type(exc).__name__}: {exc}", finished=False)
            raise
        finally:
            heartbeat.cancel()
            for sig in signals:
                loop.remove_signal_handler(sig)
            async with self._cycle_lock:  # a cycle in flight finishes (or abandons) first
                pass
            if refused is not None:
                await self._refused(refused)
            else:
                await self._wind_up()
        return self.outcome

    async def _wind_up(self) -> None:
        """The run ended (or crashed): record how, say goodbye to the plugins and the watchdog."""
        bot = self.bot
        outcome = self.outcome = self.outcome or RunOutcome("stopped", False, self.cycles_run)
        outcome.cycles_run = self.cycles_run
        # Every completed cycle was persisted at its end; an abandoned one is deliberately not.
        if outcome.finished:
            bot.finish(outcome.reason)
            bot.ctx.alert(Alert(kind="run_completed", title=f"Run complete: {outcome.reason}", severity=Severity.INFO))
        if bot.progress_behind and not self._mid_cycle:  # a replay's last cycles: progress.json catches up
            await bot.write_progress()
        if "kill switch" in outcome.reason:
            bot.ctx.alert(Alert(kind="kill_switch", title="Kill switch: no new orders, run stopped",
                                severity=Severity.CRITICAL))
        try:
            await bot.shutdown(outcome.reason)
        finally:
            try:
                bot.beat(stopped=outcome.reason)  # `gobot watchdog`: a goodbye, not a silence
            finally:
                bot.store.release_run_lock()

    async def _refused(self, refused: PluginError) -> None:
        """A plugin would not start. Not a crash: nothing ran and nothing was announced, so there is
        no run_stopped alert, and the CLI prints the refusal once. The plugins that did start close
        what they opened; the heartbeat is not marked stopped, so a watchdog sees a bot that is not running."""
        bot = self.bot
        bot.audit("start_refused", plugin=refused.plugin, reason=str(refused))
        try:
            await bot.close_session()
        finally:
            bot.store.release_run_lock()

    async def _poll_kill_switch(self) -> None:
        """Between scheduled cycles: end on the kill switch, or run a close-out cycle right away."""
        bot = self.bot
        if bot.kill_switch_on() and bot.requests.close_out_pending():
            due = asyncio.get_running_loop().time() - self._last_close_out >= CLOSE_OUT_RETRY_SECONDS
            if due and not self._cycle_lock.locked():
                await self._one_cycle()
            return
        self._before_cycle()

    async def _heartbeat(self) -> None:
        """Prove liveness every ``[watchdog] heartbeat_interval``, also while a long cycle or a long wait runs."""
        while True:
            self.bot.beat()
            await asyncio.sleep(self.bot.settings.watchdog.heartbeat_interval)

    def _on_job_event(self, event) -> None:
        """APScheduler skipped a start because the job still runs (it never overlaps itself), or a
        job ended. A cycle that outlasts ``loop_interval`` is said once a run as a WARNING (stderr
        and gobot.log), every later one in gobot.log at INFO; apscheduler's own warning, repeated
        at every skipped start, is filtered out (``SCHEDULER_LOGGER``)."""
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES

        job = event.job_id
        if event.code != EVENT_JOB_MAX_INSTANCES:
            skipped = self._skipping.pop(job, 0)
            if skipped and job == "cycle":
                log.info("the overrunning cycle ended; %d scheduled start%s skipped", skipped,
                         "" if skipped == 1 else "s")
            return
        self._skipping[job] = self._skipping.get(job, 0) + 1
        if job == "cycle":
            self.skipped_starts += 1
        if self._skipping[job] > 1:
            return
        interval = self.bot.settings.orchestrator.loop_interval
        if job == "cycle":
            self.overruns += 1
            level = logging.WARNING if self.overruns == 1 else logging.INFO
            log.log(level, "cycle %d is taking longer than loop_interval (%g s): the next cycle starts when it ends, "
                    "not on schedule (cycles never overlap)%s", self.bot.state.iteration + 1, interval,
                    "; later overruns are logged in gobot.log only" if self.overruns == 1 else "")
        elif job == "optimizer":
            log.info("the scheduled optimizer run is still going: its next scheduled start is skipped")
        # "kill": the poll runs a close-out cycle, which takes as long as it takes; nothing to say

    async def _scheduled(self) -> None:
        """Wall-clock runs: APScheduler fires a cycle every ``loop_interval`` seconds."""
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone="UTC", logger=scheduler_logger())
        scheduler.add_listener(self._on_job_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
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
        scheduler.add_job(self._poll_kill_switch, IntervalTrigger(seconds=KILL_SWITCH_POLL_SECONDS, timezone="UTC"),
                          id="kill", max_instances=1, coalesce=True,
                          misfire_grace_time=None)  # late or skipped polls: no warnings
        if self.bot.settings.optimizer.scheduled:  # [optimizer] scheduled: see gobot/research/optimizer_job.py
            from gobot.research.optimizer_job import optimizer_trigger, run_scheduled

            self.optimizer_job = scheduler.add_job(
                run_scheduled, optimizer_trigger(self.bot.settings.optimizer.schedule), args=[self.bot],
                id="optimizer", max_instances=1, coalesce=True, misfire_grace_time=3600)
        self.scheduler = scheduler
        scheduler.start()
        try:
            while self.outcome is None:
                await self._wake.wait()
        finally:
            scheduler.shutdown(wait=False)
            if self.overruns:
                log.info("%d cycle%s took longer than loop_interval (%g s); %d scheduled start%s skipped",
                         self.overruns, "" if self.overruns == 1 else "s", self.bot.settings.orchestrator.loop_interval,
                         self.skipped_starts, "" if self.skipped_starts == 1 else "s")


class _SkippedStartFilter(logging.Filter):
    """Drops apscheduler's 'Execution of job ... skipped: maximum number of running instances reached'."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in str(record.msg)


def scheduler_logger() -> logging.Logger:
    """``SCHEDULER_LOGGER``, with the filter that drops apscheduler's skipped-start warnings (installed once)."""
    logger = logging.getLogger(SCHEDULER_LOGGER)
    if not any(isinstance(f, _SkippedStartFilter) for f in logger.filters):
        logger.addFilter(_SkippedStartFilter())
    return logger
