"""The counters the core keeps while the process lives, for ``/metrics`` and ``/health``
(``gobot start --serve``): cycles, phase times, orders, vetoes, alert deliveries."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from gobot_hookspecs import CycleReport

_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?%?", re.IGNORECASE)


def reason_label(reason: str) -> str:
    """A veto reason as a bounded Prometheus label: numbers become N ("confidence N below ... N")."""
    return " ".join(_NUMBER.sub("N", reason).split())[:80] or "(no reason)"



@dataclass
class CoreCounters:
    """Counters the core keeps for ``/metrics`` while the process lives (Prometheus handles resets)."""

    started: float = field(default_factory=time.time)
    last_cycle_at: float | None = None  # wall clock (time.time()) of the last completed cycle
    cycles: int = 0
    cycle_seconds_sum: float = 0.0
    phase_seconds_sum: dict[str, float] = field(default_factory=dict)
    phase_count: dict[str, int] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=dict)  # by status
    vetoes: dict[tuple[str, str], int] = field(default_factory=dict)  # by (plugin, reason label)
    alerts_sent: dict[str, int] = field(default_factory=dict)  # by channel
    alerts_failed: dict[str, int] = field(default_factory=dict)
    listeners: list[Callable[[], None]] = field(default_factory=list)  # called after each cycle (the server)

    def cycle_done(self, report: CycleReport, duration_ms: float) -> None:
        """A cycle completed and was persisted."""
        self.cycles += 1
        self.last_cycle_at = time.time()
        self.cycle_seconds_sum += duration_ms / 1000
        for phase in report.phases:
            self.phase_seconds_sum[phase.name] = self.phase_seconds_sum.get(phase.name, 0.0) + phase.duration_ms / 1000
            self.phase_count[phase.name] = self.phase_count.get(phase.name, 0) + 1
        for order in report.orders:
            self.orders[order.status] = self.orders.get(order.status, 0) + 1
        for veto in report.vetoes:
            for part in (veto.reason or "").split("; "):
                key = (veto.plugin or "unknown", reason_label(part))
                self.vetoes[key] = self.vetoes.get(key, 0) + 1
        for listener in list(self.listeners):
            listener()

    def alert_delivered(self, channels: list[str], failed: list[str]) -> None:
        """One alert went to every channel; ``failed`` are those whose hook raised."""
        for channel in channels:
            bucket = self.alerts_failed if channel in failed else self.alerts_sent
            bucket[channel] = bucket.get(channel, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "cycles": self.cycles,
            "cycle_seconds_sum": round(self.cycle_seconds_sum, 6),
            "phase_seconds_sum": {k: round(v, 6) for k, v in self.phase_seconds_sum.items()},
            "orders_by_status": dict(self.orders),
            "risk_vetoes": [{"plugin": p, "reason": r, "count": n} for (p, r), n in sorted(self.vetoes.items())],
            "alerts_sent": dict(self.alerts_sent),
            "alerts_failed": dict(self.alerts_failed),
        }
