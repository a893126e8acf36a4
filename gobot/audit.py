"""The audit log: one JSON object per line, one line per decision (signal, verdict, order, fill, alert).

Read it to reconstruct why every trade happened. Secrets are redacted before writing.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .secrets import MASK, redact, secret_values


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


class AuditLog:
    """Appends events to ``<state_dir>/audit.jsonl``; flushed per line so a crash loses nothing written."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None  # opened on the first event, so a bot that never runs holds no file

    def _open(self):
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = os.fdopen(fd, "a", encoding="utf-8")
        return self._file

    def write(self, event: str, *, sim_time: datetime | None, run_id: str, iteration: int, **data: Any) -> None:
        record = {
            "time": datetime.now(timezone.utc).isoformat(),
            "sim_time": sim_time.isoformat() if sim_time else None,
            "run_id": run_id,
            "iteration": iteration,
            "event": event,
            **{k: _plain(v, secret_values()) for k, v in data.items()},
        }
        handle = self._open()
        handle.write(json.dumps(record, default=lambda v: redact(str(v))) + "\n")
        handle.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


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
