"""Alert delivery to Telegram in the background: a queue that never blocks the trading loop.

- ``submit`` queues an alert at once (folding a repeat of an identical one within the window into
  a count) and, in a running bot, writes it to the outbox first, so a crash loses nothing queued;
- the sender task sends in order, honours 429 ``retry_after``, retries network errors, timeouts
  and 5xx with exponential backoff, and drops what Telegram refuses for good (logged, audited);
- ``drain`` (shutdown) delivers what is queued while it makes progress; the rest stays in the
  outbox (``<state_dir>/telegram-outbox.json``, owner-only, written atomically) for the next start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

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
                due = max(head.next_try, head.hold_until) - time.time()
                if due <= 0:
                    await self._deliver(head)
                    continue
                wait = due if wait is None else min(wait, due)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    async def _deliver(self, entry: Entry) -> None:
        try:
            await self._send(entry)
        except TelegramError as exc:
            if exc.retry_after is not None:
                log.warning("telegram: rate limited; waiting %.0f s as Telegram asks", exc.retry_after)
                entry.hold_until = time.time() + max(float(exc.retry_after), 0.5)  # never a tight loop
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
        self._done(entry, True, "sent" if entry.attempts == 0 else f"sent after {entry.attempts} failed tries")

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
            if head.hold_until - time.time() > self.drain_timeout:
                break  # rate limited for longer than we may wait
            head.next_try = min(head.next_try, time.time())  # one more try now, not after the backoff
            self._progress.clear()
            self._wake.set()
            try:
                await asyncio.wait_for(self._progress.wait(), timeout=self.drain_timeout)
            except asyncio.TimeoutError:
                break
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
