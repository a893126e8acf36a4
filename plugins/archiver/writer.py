"""The persisted outbox and the background writer: the trading loop only appends to a file; a
thread moves the entries into the database and retries until they are stored.

The outbox (``<state_dir>/archive_outbox.jsonl``) holds one JSON entry per line. An append is
one ``write`` of a whole line, so a killed process leaves every entry on disk. It is not fsynced
on its own: the entries not yet stored (``unsynced_lines``) ride in the bot's state, whose save at
the end of the cycle is the cycle's one durable write, and a start puts back (``restore``) those a
power cut took off the file. (With ``fsync = false`` none ride there: a power cut may lose them.)
A line cut short by a crash mid-append is skipped on load (its cycle was not persisted
either, so the core re-runs it and the event is emitted again). A whole line that cannot be read
(not UTF-8, not JSON, not an entry: a damaged disk block, an editor) is quarantined: moved to
``archive_outbox.rejected.jsonl`` with its ``file:line`` and reason, the entries around it kept.
When the writer has stored a batch it rewrites the file without it, atomically (temporary file,
fsync, rename). Entries the database can never take as they are (an unknown kind after a
downgrade, a malformed row) are moved to the rejected file too — kept, never silently dropped — and
reported.

A full disk (``is_disk_error``: ENOSPC, a quota, a file size limit, EIO) never loses an entry:
an append that fails is cut back off the file and its line held in memory, in order, and written
ahead of the next one; the entry still goes to the database (which may have room, or get it
first), and a held line whose entry is stored meanwhile is simply dropped.

On SQLite a batch counts as stored only once it is in the database file itself, not just in the
write-ahead log (``ArchiveStore.checkpoint``): a WAL damaged after a crash loses nothing, the
outbox still holds what it held.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable

from gobot_hookspecs.files import is_disk_error, write_private

log = logging.getLogger(__name__)

MAX_BATCH = 5000
FIRST_RETRY_SECONDS = 0.25
#: Least time between two batches. A replay wakes the writer hundreds of times a second; each batch costs
#: the disk a commit, a checkpoint and the acked mark, fsyncs the loop's own save of the state queues behind.
BATCH_GAP_SECONDS = 0.05
CHECKPOINT_RETRY_SECONDS = 0.25  # a batch written but still only in SQLite's WAL (a reader held it back)


class Outbox:
    """An append-only, crash-safe queue of entries in one file.

    Stored entries are not rewritten out of the file one batch at a time (that would copy the rest
    of the file on every batch): ``<file>.acked`` records, atomically, the sequence number up to
    which everything is stored, and the file itself is emptied when everything is stored, or
    compacted when stored lines outnumber pending ones.
    """

    COMPACT_AFTER = 10_000  # stored lines kept in the file before it is compacted (when few are pending)

    def __init__(self, path: Path, fsync: bool = True, redact: Any = None):
        """``fsync``: keep the lines appended since they were last made durable (``unsynced_lines``), for
        the caller's durable write; ``sync()`` fsyncs the file instead."""
        self.path = path
        self.acked_path = path.with_name(path.name + ".acked")
        self.rejected_path = path.with_name(path.stem + ".rejected.jsonl")
        self.fsync = fsync
        self.redact = redact
        # a secret json.dumps escapes (non-ASCII, a quote, a backslash) is not found in a line by its value
        self._escaped = any(json.dumps(v)[1:-1] != v for v in getattr(redact, "values", ()))
        self._lock = threading.Lock()
        self._mark_lock = threading.Lock()  # orders the writes of the acked mark
        # (seq, line) of the entries not yet stored, oldest first: the writer parses the lines it takes
        # (``peek``), so what it stores is exactly what is on disk, and the loop's append parses nothing
        self.pending: list[tuple[int, str]] = []
        self.held: list[tuple[int, str]] = []  # (seq, line) not yet appended: the disk was full
        self.unsynced: dict[int, str] = {}  # seq -> line of the entries appended but not fsynced, until stored
        self.torn_lines = 0
        self.quarantined: list[str] = []  # "archive_outbox.jsonl:7: not UTF-8 ..." for each unreadable line moved aside
        self._acked = self._read_acked()
        self._dead = 0  # lines in the file that are already stored
        self._load()
        self._seq = max([self._acked, *(seq for seq, _ in self.pending)])

    def _read_acked(self) -> int:
        try:
            return int(json.loads(self.acked_path.read_text(encoding="utf-8"))["acked"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def _load(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        unreadable: list[tuple[int, bytes, str]] = []
        rewrite = False
        for number, chunk in enumerate(lines, start=1):
            if not chunk.strip():
                continue
            entry, reason = _parse(chunk)
            if entry is None:
                rewrite = True  # never append after a damaged line: the next entry would be glued to it
                if number == len(lines):  # no newline after it: cut short by a crash mid-append
                    self.torn_lines += 1
                    log.warning("archiver: %s line %d is incomplete (a crash while writing it); skipped",
                                self.path.name, number)
                else:
                    unreadable.append((number, chunk, reason))
                continue
            if entry["seq"] <= self._acked:
                self._dead += 1
                continue
            self.pending.append((entry["seq"], chunk.decode("utf-8")))
        if unreadable:
            self._quarantine(unreadable)
        if rewrite:  # the file again holds whole, readable lines only: the pending entries
            write_private(self.path, "".join(line + "\n" for _, line in self.pending))
            self._dead = 0

    def _quarantine(self, lines: list[tuple[int, bytes, str]]) -> None:
        """Move unreadable lines to the rejected file, each with its file:line and reason (the bytes kept)."""
        records = []
        for number, chunk, reason in lines:
            where = f"{self.path.name}:{number}"
            self.quarantined.append(f"{where}: {reason}")
            records.append(json.dumps({"file": self.path.name, "line": number,
                                       "raw": chunk.decode("utf-8", "backslashreplace"),
                                       "rejected_because": f"{where}: {reason}"}) + "\n")
            log.error("archiver: %s: %s; moved to %s", where, reason, self.rejected_path.name)
        self._append(self.rejected_path, "".join(records), True)

    def __len__(self) -> int:
        return len(self.pending)

    @property
    def entries(self) -> list[dict[str, Any]]:
        """The entries not yet stored, parsed, oldest first."""
        return self.peek(len(self.pending))

    def add(self, kind: str, data: dict[str, Any]) -> int:
        """Append an entry durably; returns its sequence number. Secrets are masked first."""
        with self._lock:
            self._seq += 1
            line = json.dumps({"seq": self._seq, "kind": kind, "data": data}, default=str, separators=(",", ":"))
            if self.redact is not None and (self._escaped or self.redact.hits(line)):
                # Mask string values only: a secret that looks like JSON syntax never breaks the line.
                line = json.dumps(self.redact.data(json.loads(line)), separators=(",", ":"))
            self.pending.append((self._seq, line))
            self.held.append((self._seq, line + "\n"))
            if self.fsync:
                self.unsynced[self._seq] = line
            self._write_held()
            return self._seq

    def unsynced_lines(self) -> list[str]:
        """The entries not yet durable anywhere: appended without fsync and not stored yet, oldest first."""
        with self._lock:
            return [self.unsynced[seq] for seq in sorted(self.unsynced)]

    def sync(self) -> None:
        """fsync the file: every entry appended so far is durable (when too many wait to ride in the state)."""
        with self._lock:
            self._write_held()
            if self.held or not self.path.exists():
                return
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self.unsynced.clear()

    def restore(self, lines: list[str]) -> int:
        """Put back entries a power cut took off the file: the ``unsynced_lines`` the last durable state
        held, less those the file still has or the database stored. Returns how many came back."""
        with self._lock:
            known = {seq for seq, _ in self.pending}
            back = []
            for line in lines:
                entry, _ = _parse(line.encode("utf-8"))
                if entry is not None and entry["seq"] > self._acked and entry["seq"] not in known:
                    back.append((entry, line))
            if back:
                try:
                    self._append(self.path, "".join(line + "\n" for _, line in back), True)
                except OSError as exc:
                    if not is_disk_error(exc):
                        raise
                    self.held.extend((e["seq"], line + "\n") for e, line in back)  # written once there is room
                    self.unsynced.update((e["seq"], line) for e, line in back)
                self.pending = sorted([*self.pending, *((e["seq"], line) for e, line in back)], key=itemgetter(0))
                self._seq = max(self._seq, *(e["seq"] for e, _ in back))
            return len(back)

    def write_held(self) -> None:
        """Append the lines a full disk held back (the writer calls it before each batch)."""
        with self._lock:
            self._write_held()

    def _write_held(self) -> None:
        if not self.held:
            return
        try:
            self._append(self.path, "".join(line for _, line in self.held), False)  # durable: see unsynced_lines
        except OSError as exc:
            if not is_disk_error(exc):
                raise
            if len(self.held) == 1:
                log.error("archiver: cannot append to %s (%s): entries are held in memory until it can",
                          self.path.name, exc)
            return
        self.held.clear()

    @staticmethod
    def _append(path: Path, text: str, sync: bool) -> None:
        """One ``write`` of whole lines; one that fails (a full disk) is cut back off the file."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:  # its folder is gone (removed under the bot): made again
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, flags, 0o600)
        try:
            size = os.fstat(fd).st_size
            try:
                data = text.encode("utf-8")
                if os.write(fd, data) != len(data):
                    raise OSError(28, "No space left on device (short write)")
                if sync:
                    os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)

    def peek(self, limit: int = MAX_BATCH) -> list[dict[str, Any]]:
        """The oldest ``limit`` entries not yet stored, parsed (outside the lock: appends never wait for it)."""
        with self._lock:
            lines = self.pending[:limit]
        return [json.loads(line) for _, line in lines]

    def ack(self, seqs: set[int]) -> None:
        """Forget stored entries; record durably that they are stored (the fsync outside the lock, so
        the loop's appends never wait for it)."""
        with self._lock:
            acked = self._forget(seqs)
        if acked is not None:
            with self._mark_lock:
                if acked > self._acked and self._mark_acked(acked):
                    self._acked = acked

    def reject(self, entries: list[dict[str, Any]], reason: str) -> None:
        """Move entries the database can never take to the rejected file (kept for a human)."""
        with self._lock:
            lines = "".join(json.dumps({**e, "rejected_because": reason}, default=str) + "\n" for e in entries)
            self._append(self.rejected_path, lines, True)
            acked = self._forget({e["seq"] for e in entries})
            if acked is not None and self._mark_acked(acked):
                self._acked = acked

    def _forget(self, seqs: set[int]) -> int | None:
        """Drop stored entries; returns the sequence number up to which all is stored, when it moved."""
        self.held = [(seq, line) for seq, line in self.held if seq not in seqs]
        for seq in seqs:
            self.unsynced.pop(seq, None)
        before = len(self.pending)
        head = len(seqs)
        if all(seq in seqs for seq, _ in self.pending[:head]):  # the usual case: a batch from the front
            del self.pending[:head]
        else:
            self.pending = [(seq, line) for seq, line in self.pending if seq not in seqs]
        self._dead += before - len(self.pending)
        # Everything below the oldest pending entry is done (batches are taken from the front).
        acked = self.pending[0][0] - 1 if self.pending else self._seq
        if not self.pending:
            if self._dead and not self.held:
                # All stored: empty the file. No fsync: lines that come back after a power cut are
                # below the acked mark, skipped on load.
                os.truncate(self.path, 0)
            self._dead = 0
        elif self._dead > self.COMPACT_AFTER and len(self.pending) * 10 < self.COMPACT_AFTER and not self.held:
            # Compact only when few entries are pending: draining a backlog empties the file at the end.
            try:
                write_private(self.path, "".join(line + "\n" for _, line in self.pending))
                self._dead = 0
            except OSError as exc:
                if not is_disk_error(exc):
                    raise  # a full disk: compacted another time
        return acked if acked > self._acked else None

    def _mark_acked(self, acked: int) -> bool:
        """Record durably that everything up to ``acked`` is stored; False on a full disk (the mark
        is only a shortcut: without it a restart stores those entries again, and stored rows are
        idempotent by their keys)."""
        try:
            write_private(self.acked_path, json.dumps({"acked": acked}))
            return True
        except OSError as exc:
            if not is_disk_error(exc):
                raise
            return False




@dataclass
class Health:
    """What the loop thread reads to decide on alerts."""

    failing: bool = False
    attempts: int = 0  # consecutive failed attempts
    last_error: str = ""
    stored: int = 0  # entries stored since start
    rejected: int = 0  # entries moved to the rejected file since start
    trade_writes: int = 0  # database writes that held a closed trade: trade history read before one is still true
    last_reject_reason: str = ""


class ArchiveWriter:
    """A daemon thread that drains the outbox into the database, retrying with backoff."""

    def __init__(
        self,
        open_store: Callable[[], Any],
        outbox: Outbox,
        retry_max_seconds: float = 60.0,
        redact: Callable[[str], str] = lambda text: text,
    ):
        self.open_store = open_store  # connects and migrates; called in the thread, retried on failure
        self.outbox = outbox
        self.retry_max_seconds = retry_max_seconds
        self.redact = redact
        self.store: Any = None
        self.health = Health()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._stop = False
        self._retry_at = 0.0
        self._batch_at = float("-inf")  # time.monotonic() when the last batch began
        self._unsynced = False  # the last batch is written but only in the WAL: not acked, written again soon
        self._thread = threading.Thread(target=self._run, name="gobot-archiver", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """Block until the outbox is empty (True) or ``timeout`` seconds passed (False)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while len(self.outbox):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.wake()
                self._idle.wait(min(remaining, 0.5))
        return True

    def _last_try(self, timeout: float) -> None:
        """Retry at once; wait until the outbox is empty or the attempt failed (at most ``timeout``)."""
        attempts = self.health.attempts
        self._retry_at = 0.0
        self.wake()
        deadline = time.monotonic() + timeout
        with self._idle:
            while len(self.outbox) and self.health.attempts <= attempts:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._idle.wait(min(remaining, 0.5))
        if not len(self.outbox) or not self.health.failing:
            self.wait_idle(max(0.0, deadline - time.monotonic()))

    def wait_attempts(self, attempts: int, timeout: float) -> bool:
        """Block until at least ``attempts`` consecutive writes failed (tests and diagnostics)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self.health.attempts < attempts:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.5))
        return True

    def close(self, timeout: float) -> int:
        """Store what is pending (for at most ``timeout`` seconds), stop; returns the entries left.

        While the database is failing it makes one immediate attempt instead of waiting out the
        backoff; whatever is not stored stays in the outbox file for the next start.
        """
        if self._thread.is_alive():
            if self.health.failing:  # one last attempt now, not after the backoff
                self._last_try(timeout)
            else:
                self.wait_idle(timeout)
        self._stop = True
        self.wake()
        self._thread.join(timeout=max(0.1, min(timeout, 5.0)))
        if self.store is not None and not self._thread.is_alive():
            self.store.close()
        return len(self.outbox)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop:
            if self.health.failing:
                # Back off: new entries wake the thread, but a failing database is not hammered.
                remaining = self._retry_at - time.monotonic()
                if remaining > 0:
                    self._wake.wait(remaining)
                    self._wake.clear()
                    continue
            else:
                self._wake.wait(CHECKPOINT_RETRY_SECONDS if self._unsynced else None)
                self._wake.clear()
            while len(self.outbox) and not self._stop:
                rest = self._batch_at + BATCH_GAP_SECONDS - time.monotonic()
                if rest > 0 and len(self.outbox) < MAX_BATCH:  # a full batch (a backlog) has nothing to wait for
                    time.sleep(rest)  # the entries of the cycles meanwhile join the batch
                self._batch_at = time.monotonic()
                if not self._drain_once():
                    if self._unsynced:
                        break  # not a failure: acked once a checkpoint puts it in the database file
                    delay = min(self.retry_max_seconds, FIRST_RETRY_SECONDS * 2 ** (self.health.attempts - 1))
                    self._retry_at = time.monotonic() + delay
                    break
            self._notify()

    def _notify(self) -> None:
        with self._idle:
            self._idle.notify_all()

    def _drain_once(self) -> bool:
        """Store one batch; False after a failure that a retry may cure."""
        from .store import PoisonEntry, is_transient

        self.outbox.write_held()
        batch = self.outbox.peek(MAX_BATCH)
        if not batch:
            return True
        try:
            if self.store is None:
                self.store = self.open_store()
            self.store.write(batch)
            self._wrote(batch)
            durable = self.store.checkpoint()
        except Exception as exc:
            if isinstance(exc, PoisonEntry) or not is_transient(exc):
                if self._isolate(batch):
                    return True
            self.record_failure(exc)
            return False
        self._unsynced = not durable
        if not durable:  # committed, but only in SQLite's WAL: a damaged WAL would lose it, so the outbox keeps it
            return False
        self.outbox.ack({e["seq"] for e in batch})
        self._stored(len(batch))
        return True

    def _isolate(self, batch: list[dict[str, Any]]) -> bool:
        """Write a failing batch entry by entry; reject the entries that fail while others pass.

        If every entry fails the problem is the database, not the data: nothing is rejected and
        the batch is retried later. A lone entry is rejected only for a data problem
        (``PoisonEntry``), never for a database error.
        """
        from .store import PoisonEntry

        stored, failed = set(), []
        for entry in batch:
            try:
                self.store.write([entry])
                self._wrote([entry])
                stored.add(entry["seq"])
            except PoisonEntry as exc:
                failed.append((entry, exc))
            except Exception as exc:
                failed.append((entry, exc))
        try:
            self.store.checkpoint()  # best effort: a rare path (a poisoned batch)
        except Exception:  # pragma: no cover - the next batch's checkpoint tries again
            pass
        if not failed:
            self.outbox.ack(stored)
            self._stored(len(stored))
            return True
        if not stored and not all(isinstance(exc, PoisonEntry) for _, exc in failed):
            return False
        self.outbox.ack(stored)
        self._stored(len(stored))
        reason = self.redact(f"{type(failed[0][1]).__name__}: {failed[0][1]}")[:500]
        self.outbox.reject([entry for entry, _ in failed], reason)
        self.health.rejected += len(failed)
        self.health.last_reject_reason = reason
        log.error("archiver: %d outbox entries rejected by the database (%s); kept in %s", len(failed), reason,
                  self.outbox.rejected_path)
        return True

    def record_failure(self, exc: BaseException) -> None:
        self.health.failing = True
        self.health.attempts += 1
        self.health.last_error = self.redact(f"{type(exc).__name__}: {_first_line(exc)}")[:500]
        log.warning("archiver: write failed (attempt %d): %s", self.health.attempts, self.health.last_error)
        if self.store is not None and self.health.attempts % 5 == 0:
            try:  # a long outage: start over with fresh connections
                self.store.engine.dispose()
            except Exception:  # pragma: no cover - best effort
                pass

    def _wrote(self, entries: list[dict[str, Any]]) -> None:
        if any(e.get("kind") == "trade" for e in entries):
            self.health.trade_writes += 1

    def _stored(self, count: int) -> None:
        self.health.stored += count
        self.health.failing = False
        self.health.attempts = 0


def _parse(chunk: bytes) -> tuple[dict[str, Any] | None, str]:
    """One outbox line: (the entry, "") or (None, why it cannot be read)."""
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte 0x{chunk[exc.start]:02x} at column {exc.start + 1})"
    try:
        entry = json.loads(text)
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    if not isinstance(entry, dict) or type(entry.get("seq")) is not int or not isinstance(entry.get("kind"), str):
        return None, "not an outbox entry (no seq or kind)"
    return entry, ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
