"""The watchdog: reads the bot's ``heartbeat.json`` and alerts through the enabled channels when it goes stale.

It runs as its own small process (``gobot watchdog``, e.g. under systemd), so a bot that crashed,
hangs or was killed with SIGKILL is not silent. A heartbeat marked ``stopped`` is a bot that ended
in order (it said so itself): no alert.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

from gobot.config import WatchdogConfig
from gobot_hookspecs import Alert, Severity


@dataclass
class Heartbeat:
    """What the heartbeat file says right now."""

    state: str  # fresh | stale | missing | stopped
    age: float | None = None  # seconds since the last beat (None when missing or unreadable)
    beat: dict[str, Any] | None = None

    @property
    def describe(self) -> str:
        beat = self.beat or {}
        if self.state == "missing":
            return "no heartbeat file"
        where = f"pid {beat.get('pid', '?')}, run {beat.get('run_id', '?')}, cycle {beat.get('iteration', '?')}"
        if self.state == "stopped":
            return f"stopped in order ({beat.get('stopped')}); {where}"
        return f"last beat {self.age:.0f} s ago; {where}"


def read_heartbeat(path: Path, stale_after: float, now: datetime | None = None) -> Heartbeat:
    """The heartbeat's state: a torn or unreadable file counts as missing."""
    now = now or datetime.now(timezone.utc)
    try:
        beat = json.loads(path.read_text(encoding="utf-8"))
        age = (now - datetime.fromisoformat(beat["time"])).total_seconds()
    except (OSError, ValueError, KeyError, TypeError):
        return Heartbeat("missing")
    if beat.get("stopped") is not None:
        return Heartbeat("stopped", age, beat)
    return Heartbeat("stale" if age > stale_after else "fresh", age, beat)


def process_alive(pid: Any) -> bool | None:
    """Whether ``pid`` runs on this host (None if it cannot be told: no pid, or not ours to signal)."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return None
    return True


class Watchdog:
    """Turns heartbeat readings into alerts: one when it goes stale (repeated every ``repeat_after``),
    one when it is fresh again."""

    def __init__(self, state_dir: Path, config: WatchdogConfig, send: Callable[[Alert], Awaitable[Any]],
                 clock: Callable[[], datetime] | None = None):
        self.path = state_dir / "heartbeat.json"
        self.config = config
        self.send = send
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.started = self.clock()
        self.alerted_at: datetime | None = None  # when the last stale alert went out; None = not alerting

    async def check(self) -> Heartbeat:
        now = self.clock()
        heartbeat = read_heartbeat(self.path, self.config.stale_after, now)
        silent = heartbeat.state == "stale" or (
            heartbeat.state == "missing" and (now - self.started).total_seconds() > self.config.stale_after
        )
        if silent:
            repeat = self.config.repeat_after
            due = self.alerted_at is None or (repeat > 0 and (now - self.alerted_at).total_seconds() >= repeat)
            if due:
                self.alerted_at = now
                await self.send(self._stale_alert(heartbeat, now))
        elif heartbeat.state == "fresh" and self.alerted_at is not None:
            self.alerted_at = None
            await self.send(Alert(kind="watchdog_recovered", title="gobot heartbeat is fresh again",
                                  text=heartbeat.describe, time=now, data=self._data(heartbeat)))
        elif heartbeat.state == "stopped":
            self.alerted_at = None
        return heartbeat

    def _stale_alert(self, heartbeat: Heartbeat, now: datetime) -> Alert:
        if heartbeat.state == "missing":
            title = f"gobot is silent: no heartbeat in {self.path.parent}"
            text = (f"No readable heartbeat.json for over {self.config.stale_after:g} s: "
                    "the bot is not running, or never started.")
        else:
            title = f"gobot is silent: no heartbeat for {heartbeat.age:.0f} s"
            alive = process_alive((heartbeat.beat or {}).get("pid"))
            gone = " The process is not running on this host." if alive is False else ""
            text = (f"{heartbeat.describe}; stale after {self.config.stale_after:g} s.{gone} "
                    "It crashed, hangs or was killed: check the service and gobot.log.")
        return Alert(kind="watchdog_stale", title=title, text=text, severity=Severity.CRITICAL, time=now,
                     data=self._data(heartbeat))

    def _data(self, heartbeat: Heartbeat) -> dict[str, Any]:
        beat = heartbeat.beat or {}
        return {"state_dir": str(self.path.parent),
                "age_seconds": None if heartbeat.age is None else round(heartbeat.age, 1),
                "pid": beat.get("pid"), "run_id": beat.get("run_id"), "iteration": beat.get("iteration")}
