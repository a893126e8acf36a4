"""The audit log: one JSON object per line, one line per decision (signal, verdict, order, fill, alert).

Read it to reconstruct why every trade happened. Secrets are redacted before writing.

Facts that happen once — a fill, a closed trade — carry an ``event_id`` derived from their content
and are written once: a cycle re-run after a crash (its state was not persisted) meets the same
fill again, and its line is not written a second time. Decisions the re-run cycle makes again
(signals, verdicts, alerts) are written again, with the same iteration.

On a full disk (``gobot.run.state.is_disk_error``) a line that cannot be written is kept in memory, in
order, and written before the next one once there is room (``flush``); a line cut short by the
full disk is taken back, so the file holds whole lines only. ``error`` is the disk error while
lines wait; callers decide what it means for them (the bot opens no new positions).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gobot.run.state import is_disk_error
from gobot.secrets import MASK, may_hold_secrets, redact, secret_values

log = logging.getLogger(__name__)

MAX_PENDING_BYTES = 64 * 1024 * 1024  # audit lines kept in memory while the disk is full; then the newest are dropped
# the tail of the log searched for event ids already written (a re-run cycle is at its end)
ID_SCAN_BYTES = 32 * 1024 * 1024


def event_id(kind: str, value: BaseModel, fields: tuple[str, ...]) -> str:
    """A stable id for a fact (``fill``, ``trade``) from the fields that identify it: the same fill
    met again by a re-run cycle gets the same id."""
    data = value.model_dump(mode="json", include=set(fields))
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return f"{kind}-{digest}"


#: ``json.dumps(record, default=str)`` without building a new encoder for every line (``dumps`` only reuses its
#: own when every option is the default): the same text
_LINE_ENCODER = json.JSONEncoder(default=str)

FILL_ID_FIELDS = ("order_id", "client_order_id", "symbol", "side", "purpose", "amount", "price", "time")
TRADE_ID_FIELDS = ("symbol", "direction", "amount", "entry_price", "exit_price", "opened_at", "closed_at",
                   "client_order_id", "exit_reason")


def _plain(value: Any, secrets: list[str]) -> Any:
    """JSON-ready data with secrets masked value by value (so a numeric secret can't break the JSON)."""
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="json"), secrets)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v, secrets) for v in value]
    if isinstance(value, dict):
        return {_plain(k, secrets): _plain(v, secrets) for k, v in value.items()}
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and str(value) in secrets:
        return MASK
    return value


_JSON_SCALARS = (str, int, float, bool, type(None))


def _json_ready(value: Any) -> Any:
    """``value`` for ``json.dumps``: models dumped as JSON, times as ISO text (masking comes after, on the line)."""
    if type(value) in _JSON_SCALARS:  # most values: asked first (``BaseModel``'s isinstance is an ABC check)
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


class AuditLog:
    """Appends events to ``<state_dir>/audit.jsonl``, one ``write`` per line, so a crash loses
    nothing written. On a full disk lines wait in memory (see the module docstring)."""

    def __init__(self, path: Path, max_pending_bytes: int = MAX_PENDING_BYTES):
        self.path = path
        self._fd: int | None = None  # opened on the first event, so a bot that never runs holds no file
        self._ids: set[str] | None = None  # event ids in the log (read from its tail on first need)
        self.pending: list[bytes] = []  # lines not written yet (the disk was full), oldest first
        self._pending_bytes = 0
        self.max_pending_bytes = max_pending_bytes
        self.dropped = 0  # lines given up because too many waited
        self.error: OSError | None = None  # the disk error while lines wait
        self._torn = False  # a line was cut short and could not be taken back: start the next on a new line
        self._size: int | None = None  # the file's size after this log's last write (None: ask the file)

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return self._fd

    def _seen(self) -> set[str]:
        if self._ids is None:
            self._ids = set()
            try:
                with open(self.path, "rb") as handle:
                    size = handle.seek(0, os.SEEK_END)
                    handle.seek(max(0, size - ID_SCAN_BYTES))
                    tail = handle.read()
            except FileNotFoundError:
                tail = b""
            for line in tail.splitlines():
                if b'"event_id"' in line:
                    try:
                        self._ids.add(json.loads(line)["event_id"])
                    except (ValueError, KeyError, TypeError):
                        continue
        return self._ids

    def write(self, event: str, *, sim_time: datetime | None, run_id: str, iteration: int, event_id: str | None = None,
              **data: Any) -> bool:
        """Append one event. With ``event_id``, an event already in the log is not written again
        (returns False). A disk error is not raised: the line waits (``pending``, ``error``)."""
        if event_id is not None:
            seen = self._seen()
            if event_id in seen:
                return False
            seen.add(event_id)
        record = {
            "time": datetime.now(timezone.utc).isoformat(),
            "sim_time": sim_time.isoformat() if sim_time else None,
            "run_id": run_id,
            "iteration": iteration,
            "event": event,
            **({"event_id": event_id} if event_id is not None else {}),
        }
        for key, value in data.items():
            record[key] = _json_ready(value)
        text = _LINE_ENCODER.encode(record)
        if may_hold_secrets(text):  # rare: mask value by value (a numeric secret can't break the JSON)
            record.update({k: _plain(v, secret_values()) for k, v in data.items()})
            text = json.dumps(record, default=lambda v: redact(str(v)))
        line = (text + "\n").encode("utf-8")
        if self._pending_bytes + len(line) > self.max_pending_bytes:
            self.dropped += 1
        else:
            self.pending.append(line)
            self._pending_bytes += len(line)
        self.flush()
        return True

    def flush(self) -> bool:
        """Write the lines that wait, oldest first; True when none is left. Disk errors are kept in ``error``."""
        while self.pending:
            try:
                self._append(self.pending[0])
            except OSError as exc:
                if not is_disk_error(exc):
                    raise
                self.error = exc
                return False
            self._pending_bytes -= len(self.pending.pop(0))
        if self.dropped:
            dropped, self.dropped = self.dropped, 0
            note = {"time": datetime.now(timezone.utc).isoformat(), "event": "audit_lines_dropped", "lines": dropped,
                    "reason": f"more than {self.max_pending_bytes} bytes waited for disk space"}
            self.pending.append((json.dumps(note) + "\n").encode())
            return self.flush()
        self.error = None
        return True

    def _append(self, line: bytes) -> None:
        fd = self._open()
        data = (b"\n" + line) if self._torn else line
        # Where the line starts: known from the last write (one fstat a line saved). Another process
        # appending in between makes it wrong, which the check below sees: no take-back, the next
        # line starts on a new line.
        start = self._size if self._size is not None else os.fstat(fd).st_size
        self._size = None
        written = 0
        try:
            while written < len(data):
                written += os.write(fd, data[written:])
        except OSError:
            if written:  # a torn line: take it back (unless another process appended after it)
                try:
                    if os.fstat(fd).st_size == start + written:
                        os.ftruncate(fd, start)
                    else:
                        self._torn = True
                except OSError:
                    self._torn = True
            raise
        self._torn = False
        self._size = start + written

    def close(self) -> None:
        if not self.flush():
            log.error("%d audit lines could not be written to %s (%s): they are lost", len(self.pending), self.path,
                      self.error)
            self.pending, self._pending_bytes = [], 0
        if self._fd is not None:
            os.close(self._fd)
            self._fd, self._size = None, None


def read_audit(path: Path) -> list[dict[str, Any]]:
    """Every event in an audit log (a torn last line from a crash is skipped)."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events
