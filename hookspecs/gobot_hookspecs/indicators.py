"""Price indicators written once for every plugin: SMA, EMA, RSI (Wilder's and Cutler's) and ATR.

Pure Python, no numpy, on purpose: the contract depends on pluggy and pydantic only and imports in
milliseconds, and the plugins that draw or check a few hundred candles (charts, risk limits, a
strategy's per-candle signal) would pay numpy's import for nothing. The functions take any
sequence of numbers — a list, a ``Candles`` column or a numpy array — and return plain lists.
A strategy that needs every candle at once for the backtester writes its numpy twin beside its
``signal()`` and holds it to these with a test (see ``gobot_plugins.sma_rsi``).

The one-value helpers (``mean_of_last``, ``cutler_rsi``) add left to right, never with Python
3.12's compensated ``sum()``, so a numpy twin that adds in the same order agrees to the last bit.
Series are as long as the input, with None where the period is not filled yet.
"""

from __future__ import annotations

from functools import reduce
from operator import add
from typing import Sequence

Series = list  # list[float | None]


def _left_to_right(values: Sequence[float]) -> float:
    return reduce(add, values, 0.0)


def mean_of_last(values: Sequence[float], period: int, end: int | None = None) -> float:
    """The SMA at one point: the mean of ``values[end - period:end]`` (``end`` defaults to the
    length), added up left to right."""
    end = len(values) if end is None else end
    return _left_to_right(values[end - period : end]) / period


def sma(values: Sequence[float], period: int) -> Series:
    """Simple moving average of each window of ``period`` values, from a running sum."""
    out: Series = [None] * len(values)
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= period:
            total -= values[i - period]
        if i >= period - 1:
            out[i] = total / period
    return out


def ema(values: Sequence[float], period: int) -> Series:
    """Exponential moving average, seeded with the SMA of the first ``period`` values, then
    ``alpha = 2 / (period + 1)``."""
    out: Series = [None] * len(values)
    if len(values) < period:
        return out
    alpha = 2.0 / (period + 1)
    current = sum(values[:period]) / period
    out[period - 1] = current
    for i in range(period, len(values)):
        current = alpha * values[i] + (1 - alpha) * current
        out[i] = current
    return out


def rsi(values: Sequence[float], period: int) -> Series:
    """Wilder's RSI, 0-100: averages of gains and losses smoothed by ``1 / period``; 50 while flat."""
    out: Series = [None] * len(values)
    if len(values) <= period:
        return out
    gains = losses = 0.0
    for i in range(1, period + 1):
        change = values[i] - values[i - 1]
        gains += max(change, 0.0)
        losses += max(-change, 0.0)
    avg_gain, avg_loss = gains / period, losses / period
    out[period] = _rsi_value(avg_gain, avg_loss)
    for i in range(period + 1, len(values)):
        change = values[i] - values[i - 1]
        avg_gain = (avg_gain * (period - 1) + max(change, 0.0)) / period
        avg_loss = (avg_loss * (period - 1) + max(-change, 0.0)) / period
        out[i] = _rsi_value(avg_gain, avg_loss)
    return out


def _rsi_value(avg_gain: float, avg_loss: float) -> float:
    if avg_loss == 0:
        return 100.0 if avg_gain > 0 else 50.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


def cutler_rsi(values: Sequence[float], period: int) -> float:
    """Cutler's RSI at the last value: simple sums of the gains and losses of the last ``period``
    changes, added up left to right; 50 when there was no change."""
    gains = losses = 0.0
    for previous, current in zip(values[-period - 1 : -1], values[-period:]):
        change = current - previous
        if change > 0:
            gains += change
        else:
            losses -= change
    if gains + losses == 0:
        return 50.0
    return 100.0 * gains / (gains + losses)


def true_ranges(high: Sequence[float], low: Sequence[float], close: Sequence[float]) -> list[float]:
    """The true range of every candle after the first (index ``i - 1`` is candle ``i``): the widest
    of high - low and the distances of high and low from the previous close."""
    return [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1])) for i in range(1, len(close))
    ]


def atr(high: Sequence[float], low: Sequence[float], close: Sequence[float], period: int) -> Series:
    """Average true range: the simple mean of the last ``period`` true ranges, for every candle
    that has that many before it (candle ``period`` onwards)."""
    ranges = true_ranges(high, low, close)
    out: Series = [None] * len(close)
    if len(ranges) < period:
        return out
    window = sum(ranges[:period])
    for end in range(period, len(ranges) + 1):  # ranges[end - period:end] ends at candle ``end``
        if end > period:
            window += ranges[end - 1] - ranges[end - 1 - period]
        out[end] = window / period
    return out
