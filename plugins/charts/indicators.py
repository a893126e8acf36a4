"""Indicators drawn on the charts, handed to the page: the contract's SMA, EMA and Wilder RSI
(``gobot_hookspecs.indicators``, pure Python) and Bollinger bands.

An indicator is written ``name:period``: ``sma:20``, ``ema:50``, ``bb:20`` (Bollinger bands, 2 standard
deviations) and ``rsi:14`` (drawn in its own panel). Values are None where the period is not filled yet.
"""

from __future__ import annotations

import math
import re

from gobot_hookspecs.indicators import ema, rsi, sma

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
            oscillators.append({"label": label, "values": _round(rsi(close, period)[skip:]), "min": 0, "max": 100,
                                "levels": [30, 70]})
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
