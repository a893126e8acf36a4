"""The backtest band and the sequential test that places live per-trade R against it.

The reference is the backtester's per-trade R of the active strategy version over the recent past.
Live trades are standardised against it (``z = (R - mean) / sd``, clipped to ``±Z_CLIP``) and fed to a
one-sided (lower) CUSUM::

    S_0 = 0,   S_k = max(0, S_{k-1} - z_k - allowance),   alarm when S_k > h

``allowance`` (in standard deviations) is the shift tolerated without alarm. ``h`` is calibrated per
reference by simulation: ``SIMULATIONS`` healthy sequences of ``horizon`` trades are drawn from the
reference with replacement (a bootstrap), and ``h`` is the ``1 - false_alarm_rate`` quantile of their
largest ``S``: a strategy that trades as its backtest alarms within ``horizon`` trades with probability
``false_alarm_rate``. The same simulation, on sequences whose edge is gone (the reference shifted to a
mean R of 0), measures the detection delay; ``loss_delay`` is the exact delay when every trade loses 1 R.

The band is a bootstrap interval of the mean R of ``n`` trades drawn from the reference. Pure Python and
deterministic (a seeded ``random.Random``), so a restart recalibrates to the same numbers.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import asdict, dataclass

Z_CLIP = 4.0
SIMULATIONS = 1000
MIN_SD = 0.05


@dataclass
class Calibration:
    """A reference's figures: what the CUSUM standardises with and where it alarms."""

    mean: float
    sd: float
    h: float
    allowance: float
    horizon: int
    false_alarm_rate: float
    trades: int
    loss_delay: int  # trades to alarm when every live trade loses 1 R
    median_delay: float  # simulated: median trades to alarm once the edge is gone (mean R 0)

    def as_dict(self) -> dict:
        return asdict(self)


def _z(r: float, mean: float, sd: float) -> float:
    return max(-Z_CLIP, min(Z_CLIP, (r - mean) / sd))


def update(s: float, r: float, mean: float, sd: float, allowance: float) -> float:
    """One CUSUM step: the statistic after a trade of ``r`` R."""
    return max(0.0, s - _z(r, mean, sd) - allowance)


def _run_max(zs: list[float], allowance: float) -> float:
    s = top = 0.0
    for z in zs:
        s = max(0.0, s - z - allowance)
        top = max(top, s)
    return top


def _first_alarm(zs: list[float], allowance: float, h: float) -> int | None:
    s = 0.0
    for number, z in enumerate(zs, start=1):
        s = max(0.0, s - z - allowance)
        if s > h:
            return number
    return None


def calibrate(reference: list[float], *, allowance: float = 0.5, horizon: int = 100,
              false_alarm_rate: float = 0.05, seed: int = 21) -> Calibration:
    """Calibrate ``h`` on a reference of per-trade R (at least two distinct values)."""
    mean = statistics.fmean(reference)
    sd = max(statistics.pstdev(reference), MIN_SD)
    zs = [_z(r, mean, sd) for r in reference]
    rng = random.Random(seed)
    tops = sorted(_run_max(rng.choices(zs, k=horizon), allowance) for _ in range(SIMULATIONS))
    h = tops[min(len(tops) - 1, math.ceil((1 - false_alarm_rate) * len(tops)))]
    h = max(h, 1.0)
    per_loss = _z(-1.0, mean, sd)
    loss_delay = math.floor(h / (-per_loss - allowance)) + 1 if -per_loss - allowance > 0 else 0
    shifted = [_z(r - mean, mean, sd) for r in reference]  # the edge gone: the same spread around 0 R
    delays = [_first_alarm(rng.choices(shifted, k=horizon * 5), allowance, h) for _ in range(SIMULATIONS // 4)]
    found = sorted(d for d in delays if d is not None)
    median = statistics.median(found) if len(found) * 2 > len(delays) else float("inf")
    return Calibration(mean=mean, sd=sd, h=h, allowance=allowance, horizon=horizon,
                       false_alarm_rate=false_alarm_rate, trades=len(reference), loss_delay=loss_delay,
                       median_delay=median)


def false_alarms(calibration: Calibration, sequences: list[list[float]]) -> int:
    """How many of ``sequences`` (per-trade R) alarm within their length."""
    c = calibration
    return sum(1 for rs in sequences
               if _first_alarm([_z(r, c.mean, c.sd) for r in rs], c.allowance, c.h) is not None)


def band(reference: list[float], n: int, *, level: float = 0.9, seed: int = 21,
         resamples: int = 500) -> tuple[float, float]:
    """The ``level`` bootstrap interval of the mean R of ``n`` trades drawn from ``reference``."""
    rng = random.Random(seed + n)
    means = sorted(statistics.fmean(rng.choices(reference, k=max(1, n))) for _ in range(resamples))
    tail = (1 - level) / 2
    return means[int(tail * (resamples - 1))], means[int((1 - tail) * (resamples - 1))]
