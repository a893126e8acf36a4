"""The wall clock, used when no plugin supplies a clock (live and paper on exchange data)."""

from __future__ import annotations

from datetime import datetime, timezone


class WallClock:
    simulated = False
    end = None

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def advance(self, seconds: float) -> None:
        """Real time advances by itself."""
