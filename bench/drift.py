"""The drift sentinel's CUSUM measured by simulation: false alarms of a healthy strategy and detection
delays once its edge is gone, for a few per-trade R distributions (docs/drift.md quotes the table).

    .venv/bin/python bench/drift.py          # about 10 s

Healthy sequences are drawn with replacement from the reference itself, with another seed than the
calibration's; "edge gone" shifts the reference to a mean R of 0 (same spread); "all stop-losses" is
a run of -1 R trades.
"""

from __future__ import annotations

import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plugins.drift import sentinel  # noqa: E402  (the repository's folder, as the tests import it installed)

REFERENCES = {
    "2R target, 40% wins": [2.0] * 40 + [-1.0] * 60,
    "1R target, 55% wins": [1.0] * 55 + [-1.0] * 45,
    "skewed: 15% +3.5R, 30% +0.4R": [3.5] * 15 + [0.4] * 30 + [-1.0] * 55,
    "2R target, 50% wins (strong edge)": [2.0] * 50 + [-1.0] * 50,
}
RUNS = 2000
HORIZON = 100


def first_alarm(calibration: sentinel.Calibration, rs: list[float]) -> int | None:
    s = 0.0
    for number, r in enumerate(rs, start=1):
        s = sentinel.update(s, r, calibration.mean, calibration.sd, calibration.allowance)
        if s > calibration.h:
            return number
    return None


def measure(name: str, reference: list[float]) -> dict:
    calibration = sentinel.calibrate(reference, horizon=HORIZON, false_alarm_rate=0.05)
    rng = random.Random(2026)
    healthy = sum(1 for _ in range(RUNS) if first_alarm(calibration, rng.choices(reference, k=HORIZON)))
    mean = statistics.fmean(reference)
    gone = [r - mean for r in reference]
    half = [r - mean / 2 for r in reference]
    delays = [first_alarm(calibration, rng.choices(gone, k=1000)) for _ in range(RUNS // 4)]
    halves = [first_alarm(calibration, rng.choices(half, k=HORIZON)) for _ in range(RUNS // 4)]
    found = [d for d in delays if d is not None]
    return {"reference": name, "mean R": round(mean, 2), "sd": round(calibration.sd, 2), "h": round(calibration.h, 2),
            "false alarms in 100 trades": f"{healthy / RUNS:.1%}",
            "all stop-losses: trades": calibration.loss_delay,
            "edge gone: median trades": statistics.median(found) if found else "never",
            "edge gone: found in 100": f"{sum(1 for d in delays if d and d <= HORIZON) / len(delays):.0%}",
            "half the edge gone: found in 100": f"{sum(1 for d in halves if d) / len(halves):.0%}"}


def main() -> None:
    rows = [measure(name, reference) for name, reference in REFERENCES.items()]
    columns = list(rows[0])
    print(" | ".join(columns))
    print(" | ".join("---" for _ in columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))


if __name__ == "__main__":
    main()
