"""Price statistics for the market checks of ``risk_limits``: ATR% against its median, and the
correlation of two symbols' returns. Pure Python on ``Candles`` columns (a few hundred values):
no numpy, so importing the plugin stays cheap."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gobot_hookspecs import Candles
from gobot_hookspecs.indicators import atr


@dataclass(frozen=True)
class Volatility:
    """The latest ATR% of a series and the median ATR% over the whole series."""

    current_pct: float
    median_pct: float
    values: int  # ATR% values the median was taken over

    @property
    def ratio(self) -> float:
        return self.current_pct / self.median_pct if self.median_pct > 0 else math.inf


def atr_pct_series(candles: Candles, period: int) -> list[float]:
    """ATR (simple mean of ``period`` true ranges) as a % of the close, for every candle that has one."""
    closes = candles.close
    values = atr(candles.high, candles.low, closes, period)
    return [value / close * 100.0 for value, close in zip(values, closes) if value is not None and close > 0]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def volatility(candles: Candles, period: int) -> Volatility | None:
    """The newest ATR% against the median of the series; None if the candles are too few for one ATR."""
    series = atr_pct_series(candles, period)
    if not series:
        return None
    return Volatility(current_pct=series[-1], median_pct=median(series), values=len(series))


def returns_by_time(candles: Candles, step_ms: int) -> dict[int, float]:
    """Simple returns keyed by candle open time, only between candles exactly one step apart (gaps skipped)."""
    out = {}
    ts, closes = candles.timestamp, candles.close
    for i in range(1, len(ts)):
        if ts[i] - ts[i - 1] == step_ms and closes[i - 1] > 0:
            out[ts[i]] = closes[i] / closes[i - 1] - 1.0
    return out


def correlation(a: Candles, b: Candles, step_ms: int) -> tuple[float, int]:
    """Pearson correlation of the two series' returns over their common times, and how many there were.

    A flat series (no variance) correlates with nothing: 0.0.
    """
    ra, rb = returns_by_time(a, step_ms), returns_by_time(b, step_ms)
    common = sorted(set(ra) & set(rb))
    n = len(common)
    if n < 2:
        return 0.0, n
    xs, ys = [ra[t] for t in common], [rb[t] for t in common]
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return 0.0, n
    return sxy / math.sqrt(sxx * syy), n
