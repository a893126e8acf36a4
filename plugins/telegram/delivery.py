"""Alert delivery to Telegram in the background: a queue that never blocks the trading loop.

- ``submit`` queues an alert at once (folding a repeat of an identical one within the window into
  a count) and, in a running bot, writes it to the outbox first, so a crash loses nothing queued;
- the sender task sends in order, honours 429 ``retry_after``, retries network errors, timeouts
  and 5xx with exponential backoff, and drops what Telegram refuses for good (logged, audited);
- ``drain`` (shutdown) delivers what is queued while it makes progress; the rest stays in the
  outbox (``<state_dir>/telegram-outbox.json``, owner-only, written atomically) for the next start;
- a ``ReportSource`` (the cycle report) is served below the alerts: only while no alert is queued,
  not within ``report_min_interval`` s of the last request, never during a 429 hold. It is one
  pending message, not a queue: cycles that end meanwhile merge into it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol

from gobot_hookspecs.files import write_private

from .api import TelegramError

log = logging.getLogger(__name__)

DELAYED_AFTER_SECONDS = 120.0  # an entry older than this when sent is marked "delayed"


@dataclass
class Entry:
    """One queued alert (``alert`` as JSON data); ``count`` > 1 is a folded repeat of it."""

    alert: dict[str, Any]
    count: int = 1
    window: float = 0.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: float = field(default_factory=time.time)
    attempts: int = 0
    next_try: float = 0.0  # wall clock (epoch seconds): not before (backoff after a failure)
    hold_until: float = 0.0  # wall clock: not before (Telegram's 429 retry_after; never shortened)
    parts_sent: int = 0  # of a split message, the parts already delivered (never sent twice)




class Outbox:
    """The queue on disk: every alert not yet delivered, in order; survives crashes and restarts."""

    def __init__(self, path: Path, max_entries: int):
        self.path = path
        self.max_entries = max_entries

    def load(self) -> list[Entry]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.error("telegram: outbox %s unreadable (%s); starting with an empty one", self.path, exc)
            return []
        entries = []
        for item in raw.get("entries", []):
            try:
                entries.append(Entry(**item))
            except TypeError:
                continue
        return entries

    def save(self, entries: list[Entry]) -> None:
        write_private(self.path, json.dumps({"version": 1, "entries": [asdict(e) for e in entries]}))


Send = Callable[[Entry], Awaitable[None]]
Receipt = Callable[[Entry, bool, str], None]


class ReportSource(Protocol):
    """Something sent when no alert waits: at most one pending message (the cycle report)."""

    def due(self) -> bool:
        """True while there is something to send."""

    async def deliver(self) -> None:
        """Send it; raise ``TelegramError`` to have it tried again (429 and retryable errors)."""

    def drop(self, why: str) -> None:
        """Give up on what is pending now (Telegram refused it for good, or a bug)."""


class Sender:
    """Delivers queued entries one at a time with ``send``; reports each outcome with ``receipt``."""

    def __init__(self, send: Send, receipt: Receipt, *, fold_window: float, retry_initial: float, retry_max: float,
                 drain_timeout: float, outbox: Outbox | None = None):
        self._send = send
        self._receipt = receipt
        self.fold_window = fold_window
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.drain_timeout = drain_timeout
        self.outbox = outbox
        self.entries: list[Entry] = outbox.load() if outbox else []
        self._folds: dict[tuple, list] = {}  # key -> [first seen (monotonic), repeats since, alert data]
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._failures_logged = 0
        self.hold_until = 0.0  # wall clock: Telegram's last 429 retry_after, for every request
        self.last_request = 0.0  # wall clock of the last request that got an answer
        self.report: ReportSource | None = None
        self.report_min_interval = 0.0
        self.report_next_try = 0.0  # wall clock: backoff of the report after a retryable failure
        self._report_attempts = 0
        self._draining = False
        if self.entries:
            log.warning("telegram: %d undelivered alerts from an earlier run in the outbox; sending them first",
                        len(self.entries))

    # -- queueing ---------------------------------------------------------------------------------

    def submit(self, alert: dict[str, Any]) -> None:
        """Queue ``alert`` (JSON data of an ``Alert``), or count it as a repeat of an identical recent one."""
        now = time.monotonic()
        self._expire_folds(now)
        key = (alert.get("kind"), alert.get("title"), alert.get("text"), alert.get("severity"))
        fold = self._folds.get(key)
        if fold is not None and self.fold_window > 0:
            fold[1] += 1
            self._wake.set()
            return
        if self.fold_window > 0:
            self._folds[key] = [now, 0, alert]
        self._append(Entry(alert=alert))

    def _append(self, entry: Entry) -> None:
        self.entries.append(entry)
        if self.outbox is not None and len(self.entries) > self.outbox.max_entries:
            dropped = self.entries.pop(0)
            log.error("telegram: outbox full (%d); dropped the oldest alert: %s", self.outbox.max_entries,
                      dropped.alert.get("title"))
            self._receipt(dropped, False, "dropped: the outbox is full")
        self._persist()
        self._wake.set()

    def _expire_folds(self, now: float, everything: bool = False) -> None:
        for key, (first, repeats, alert) in list(self._folds.items()):
            if everything or now - first >= self.fold_window:
                del self._folds[key]
                if repeats:
                    self._append(Entry(alert=alert, count=repeats, window=self.fold_window))

    def set_report(self, source: ReportSource, min_interval: float) -> None:
        """Serve ``source`` below the alerts, at most one request per ``min_interval`` seconds."""
        self.report, self.report_min_interval = source, min_interval

    def report_submitted(self) -> None:
        """The report changed: wake the sender (it sends when no alert waits)."""
        self._wake.set()

    def _report_wait(self) -> float | None:
        """Seconds until the report may go (<= 0: now), or None when there is none or an alert waits."""
        if self.report is None or self.entries or not self.report.due():
            return None
        at = self.hold_until
        if not self._draining:
            at = max(at, self.report_next_try, self.last_request + self.report_min_interval)
        return at - time.time()

    def _next_fold_expiry(self) -> float | None:
        pending = [first + self.fold_window for first, repeats, _ in self._folds.values() if repeats]
        return min(pending) - time.monotonic() if pending else None

    def _persist(self) -> None:
        if self.outbox is not None:
            try:
                self.outbox.save(self.entries)
            except OSError as exc:
                log.error("telegram: cannot write the outbox %s: %s", self.outbox.path, exc)

    # -- sending ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="telegram-sender")

    async def _run(self) -> None:
        while True:
            self._expire_folds(time.monotonic())
            wait = self._next_fold_expiry()
            if self.entries:
                head = self.entries[0]
                due = max(head.next_try, head.hold_until, self.hold_until) - time.time()
                if due <= 0:
                    await self._deliver(head)
                    continue
                wait = due if wait is None else min(wait, due)
            elif (due := self._report_wait()) is not None:
                if due <= 0:
                    await self._deliver_report()
                    continue
                wait = due if wait is None else min(wait, due)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    def _rate_limited(self, retry_after: float) -> float:
        """Telegram answered 429: no request of any kind before its ``retry_after`` is over."""
        log.warning("telegram: rate limited; waiting %.0f s as Telegram asks", retry_after)
        self.hold_until = max(self.hold_until, time.time() + max(float(retry_after), 0.5))  # never a tight loop
        return self.hold_until

    async def _deliver(self, entry: Entry) -> None:
        try:
            await self._send(entry)
        except TelegramError as exc:
            self.last_request = time.time()
            if exc.retry_after is not None:
                entry.hold_until = self._rate_limited(exc.retry_after)
                self._persist()
                return
            if exc.retryable:
                entry.attempts += 1
                delay = min(self.retry_max, self.retry_initial * 2 ** (entry.attempts - 1))
                entry.next_try = time.time() + delay
                self._persist()
                if entry.attempts == 1 or entry.attempts % 10 == 0:
                    log.warning("telegram: delivery failed (%s); %d alerts queued, next try in %.1f s",
                                exc, len(self.entries), delay)
                return
            self._done(entry, False, f"refused by Telegram, dropped: {exc}")
            log.error("telegram: alert dropped, Telegram refused it: %s", exc)
            return
        except Exception as exc:  # a bug in rendering must not wedge the queue
            self._done(entry, False, f"dropped: {type(exc).__name__}: {exc}")
            log.exception("telegram: alert dropped")
            return
        self.last_request = time.time()
        self._done(entry, True, "sent" if entry.attempts == 0 else f"sent after {entry.attempts} failed tries")

    async def _deliver_report(self) -> None:
        """Send the pending report once; on failure it stays pending (merged with later cycles)."""
        report = self.report
        try:
            await report.deliver()
        except TelegramError as exc:
            if exc.retry_after is not None:
                self._rate_limited(exc.retry_after)
            elif exc.retryable:
                self._report_attempts += 1
                self.report_next_try = time.time() + min(self.retry_max,
                                                         self.retry_initial * 2 ** (self._report_attempts - 1))
                if self._report_attempts == 1 or self._report_attempts % 10 == 0:
                    log.warning("telegram: cycle report not delivered (%s); tried again with the next", exc)
            else:
                report.drop(f"refused by Telegram: {exc}")
                log.error("telegram: cycle report refused by Telegram: %s", exc)
        except Exception as exc:  # a bug in rendering must not wedge the sender
            report.drop(f"{type(exc).__name__}: {exc}")
            log.exception("telegram: cycle report dropped")
        else:
            self._report_attempts, self.report_next_try = 0, 0.0
        self.last_request = time.time()
        self._progress.set()

    def _done(self, entry: Entry, delivered: bool, detail: str) -> None:
        if entry in self.entries:
            self.entries.remove(entry)
        self._persist()
        self._receipt(entry, delivered, detail)
        self._progress.set()

    def part_sent(self, entry: Entry) -> None:
        """Called by ``send`` after each part of a split message, so a retry never repeats it."""
        entry.parts_sent += 1
        self._persist()
        self._progress.set()

    # -- stopping ---------------------------------------------------------------------------------

    async def drain(self) -> None:
        """Deliver what is queued (folded repeats included) while progress is made, then stop the task.

        Gives up after ``drain_timeout`` seconds without a delivery; what is left stays in the
        outbox (running bot) or is reported as not delivered (``gobot alerts test``, the watchdog).
        """
        self._expire_folds(time.monotonic(), everything=True)
        if self.entries:
            self.start()
        while self.entries:
            head = self.entries[0]
            if max(head.hold_until, self.hold_until) - time.time() > self.drain_timeout:
                break  # rate limited for longer than we may wait
            head.next_try = min(head.next_try, time.time())  # one more try now, not after the backoff
            self._progress.clear()
            self._wake.set()
            try:
                await asyncio.wait_for(self._progress.wait(), timeout=self.drain_timeout)
            except asyncio.TimeoutError:
                break
        if not self.entries:
            await self._drain_report()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        left = list(self.entries)
        where = "kept in the outbox for the next start" if self.outbox is not None else "not delivered before exit"
        for entry in left:
            self._receipt(entry, False, where)
        if left:
            log.warning("telegram: %d alerts %s", len(left), where)
        self._persist()

    async def _drain_report(self) -> None:
        """At shutdown, after the alerts: the last cycle's report, one try (two after a 429 that fits)."""
        self._draining = True  # no min interval, no backoff: this is the last chance
        for _ in range(2):
            wait = self._report_wait()
            if wait is None or wait > self.drain_timeout:
                return
            self.start()
            self._progress.clear()
            self._wake.set()
            try:
                await asyncio.wait_for(self._progress.wait(), timeout=self.drain_timeout + max(wait, 0))
            except asyncio.TimeoutError:
                return
