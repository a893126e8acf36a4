"""``Feed``: the index as of now, asked for once per published value.

A value is kept until the next one is due (the answer's ``time_until_update``, else one update
period after the value) plus a small margin; only then is the endpoint asked again. A failed
request (timeout, HTTP error, 429, an answer not in the documented shape) is retried after a wait
that doubles with each failure in a row, up to a cap (a longer ``Retry-After`` is honoured), so a
source that is down costs one request per wait, not one per cycle. Meanwhile the last value is
answered marked ``stale``, its note naming the error; before any success there is no answer.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

from gobot_hookspecs import Sentiment
from gobot_hookspecs.sentiment import append_reading, read_recorded

from .client import fetch, shown_url
from .config import FearGreedConfig
from .index import SourceError, due, reading

log = logging.getLogger(__name__)
RETRY_AFTER_CAP = 86_400.0  # a Retry-After longer than a day is read as a day


class Feed:
    """The cached reading of one endpoint, its refresh schedule and its failures."""

    def __init__(self, config: FearGreedConfig, record_to: Path | None = None):
        self.config = config
        self.record_to = record_to
        self.reading: Sentiment | None = None
        self.next_try: datetime | None = None  # None: ask at the next cycle
        self.failures = 0  # failed requests in a row
        self.error = ""  # why the last request failed ("" after a success)
        self.requests = 0
        self._recorded_ms: int | None = None  # the newest reading's time in the record file

    async def read(self, now: datetime) -> Sentiment | None:
        """The reading as of ``now`` (marked stale when out of date), asking the endpoint if it is time."""
        if self.next_try is None or now >= self.next_try:
            await self._refresh(now)
        return self.as_of(now)

    async def _refresh(self, now: datetime) -> None:
        self.requests += 1
        try:
            values = await fetch(self.config.url, 1, self.config.timeout_seconds)
        except SourceError as exc:
            self._failed(now, str(exc), exc.retry_after)
            return
        newest = values[0]
        if self.reading is not None and newest.time < self.reading.time:
            self._failed(now, f"the answer's value of {newest.time:%Y-%m-%d %H:%M} UTC is older than the one held")
            return
        next_due = due(newest, now, timedelta(hours=self.config.update_period_hours))
        margin = timedelta(seconds=self.config.refresh_margin_seconds)
        self.reading = reading(newest, next_due + margin)  # fresh until it is asked again: no stale gap
        self._record(self.reading)
        if next_due <= now:  # the source is up but has not published the value that is due
            self._failed(now, f"no new value yet (the next was due {next_due:%Y-%m-%d %H:%M} UTC)")
            return
        self.failures, self.error = 0, ""
        self.next_try = next_due + margin

    def _failed(self, now: datetime, error: str, retry_after: float | None = None) -> None:
        self.failures += 1
        wait = min(self.config.retry_max_seconds, self.config.retry_initial_seconds * 2 ** (self.failures - 1))
        if retry_after is not None:
            wait = max(wait, min(retry_after, RETRY_AFTER_CAP))
        self.error = error
        self.next_try = now + timedelta(seconds=wait)
        log.warning("fear_greed: %s could not be read: %s — next try in %s (failure %d in a row)",
                    shown_url(self.config.url), error, _duration(wait), self.failures)

    def as_of(self, now: datetime) -> Sentiment | None:
        """The held reading, marked stale (with a note) when past due, too old, or not refreshed."""
        if self.reading is None:
            return None
        held, notes = self.reading, []
        if self.error:
            notes.append(f"could not refresh from {shown_url(self.config.url)}: {self.error}; next try "
                         f"{self.next_try:%H:%M} UTC" if self.next_try else self.error)
        if now - held.time > timedelta(hours=self.config.max_age_hours):
            notes.append(f"published {held.time:%Y-%m-%d %H:%M} UTC, older than max_age_hours "
                         f"({self.config.max_age_hours:g} h)")
        if held.valid_until is not None and now > held.valid_until and not self.error:
            notes.append(f"the next value was expected by {held.valid_until:%Y-%m-%d %H:%M} UTC")
        return held.model_copy(update={"stale": bool(notes), "note": "; ".join(notes)})

    def _record(self, new: Sentiment) -> None:
        """Append a reading not recorded yet (the file's newest is read once, so a restart adds no twin)."""
        if self.record_to is None:
            return
        stamp = int(new.time.timestamp() * 1000)
        try:
            if self._recorded_ms is None:
                self._recorded_ms = _newest_ms(self.record_to)
            if stamp > self._recorded_ms:
                append_reading(self.record_to, new)
                self._recorded_ms = stamp
        except (OSError, ValueError) as exc:
            log.warning("fear_greed: could not record the value of %s UTC in %s: %s", f"{new.time:%Y-%m-%d %H:%M}",
                        self.record_to, exc)

    def status(self, now: datetime) -> dict:
        """Small facts for ``gobot_status``: the last value, its age, stale or not, the next request."""
        current = self.as_of(now)
        facts: dict = {"requests": self.requests, "failures": self.failures, "error": self.error,
                       "next_try": self.next_try.isoformat() if self.next_try else None}
        if current is not None:
            facts |= {"value": current.fields.get("value"), "classification": current.fields.get("classification"),
                      "published": current.time.isoformat(),
                      "age_hours": round((now - current.time).total_seconds() / 3600, 2),
                      "stale": current.stale, "note": current.note}
        return facts


def _newest_ms(path: Path) -> int:
    if not path.exists() or path.stat().st_size == 0:
        return -1
    recorded = read_recorded(path)
    newest = recorded.as_of(datetime(9999, 1, 1, tzinfo=timezone.utc), [])
    return int(newest[0].time.timestamp() * 1000) if newest else -1


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
