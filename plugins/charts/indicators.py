"""Indicators drawn on the charts, computed in Python (pure functions, no numpy) and handed to the page.

An indicator is written ``name:period``: ``sma:20``, ``ema:50``, ``bb:20`` (Bollinger bands, 2 standard
deviations) and ``rsi:14`` (drawn in its own panel). Values are None where the period is not filled yet.
"""

from __future__ import annotations

import math
import re

KINDS = {
    "sma": "simple moving average of the close",
    "ema": "exponential moving average of the close",
    "bb": "Bollinger bands: SMA ± 2 standard deviations",
    "rsi": "relative strength index, own panel (30/70 lines)",
}
_SPEC = re.compile(r"^(sma|ema|bb|rsi):([1-9][0-9]{0,3})$")


def parse(spec: str) -> tuple[str, int]:
    """``"sma:20"`` -> ``("sma", 20)``; a clear ValueError for anything else."""
    match = _SPEC.match(spec.strip().lower())
    if not match:
        kinds = ", ".join(f"{kind}:N" for kind in KINDS)
        raise ValueError(f"'{spec}' is not an indicator; use one of {kinds} (N = period in candles, 1-9999)")
    return match.group(1), int(match.group(2))


def sma(values: list[float], period: int) -> list[float | None]:
    out: list[float | None] = [None] * len(values)
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= period:
            total -= values[i - period]
        if i >= period - 1:
            out[i] = total / period
    return out


def ema(values: list[float], period: int) -> list[float | None]:
    """Seeded with the SMA of the first ``period`` values, then ``alpha = 2 / (period + 1)``."""
    out: list[float | None] = [None] * len(values)
    if len(values) < period:
        return out
    alpha = 2.0 / (period + 1)
    current = sum(values[:period]) / period
    out[period - 1] = current
    for i in range(period, len(values)):
        current = alpha * values[i] + (1 - alpha) * current
        out[i] = current
    return out


def bollinger(values: list[float], period: int, width: float = 2.0) -> tuple[list[float | None], list[float | None]]:
    """Upper and lower band: the SMA ± ``width`` population standard deviations."""
    mid = sma(values, period)
    upper: list[float | None] = [None] * len(values)
    lower: list[float | None] = [None] * len(values)
    for i in range(period - 1, len(values)):
        window = values[i - period + 1 : i + 1]
        mean = mid[i]
        assert mean is not None
        sd = math.sqrt(sum((v - mean) ** 2 for v in window) / period)
        upper[i], lower[i] = mean + width * sd, mean - width * sd
    return upper, lower


def rsi(values: list[float], period: int) -> list[float | None]:
    """Wilder's RSI, 0-100."""
    out: list[float | None] = [None] * len(values)
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


def series(specs: list[str], close: list[float], skip: int) -> dict[str, list[dict]]:
    """What the page draws: overlays (lines), bands and oscillators, each cut to the candles shown.

    ``close`` holds ``skip`` extra candles of history before the ones drawn, so that an SMA of 50
    is already defined at the left edge of the chart.
    """
    overlays: list[dict] = []
    bands: list[dict] = []
    oscillators: list[dict] = []
    for spec in specs:
        kind, period = parse(spec)
        label = f"{kind.upper()} {period}"
        if kind == "sma":
            overlays.append({"label": label, "values": _round(sma(close, period)[skip:])})
        elif kind == "ema":
            overlays.append({"label": label, "values": _round(ema(close, period)[skip:])})
        elif kind == "bb":
            upper, lower = bollinger(close, period)
            bands.append({"label": f"BB {period}, 2σ", "upper": _round(upper[skip:]), "lower": _round(lower[skip:])})
        else:
            oscillators.append({"label": label, "values": _round(rsi(close, period)[skip:]), "min": 0, "max": 100, "levels": [30, 70]})
    return {"overlays": overlays, "bands": bands, "oscillators": oscillators}


def history_needed(specs: list[str]) -> int:
    """Extra candles of history the indicators need before the first candle drawn."""
    longest = 0
    for spec in specs:
        kind, period = parse(spec)
        # EMA and RSI settle over a few periods; 3x is plenty for a picture.
        longest = max(longest, period * 3 if kind in ("ema", "rsi") else period)
    return longest


def _round(values: list[float | None]) -> list[float | None]:
    # Rounded so the page data (and the picture) does not depend on float noise.
    return [None if v is None else round(v, 10) for v in values]
