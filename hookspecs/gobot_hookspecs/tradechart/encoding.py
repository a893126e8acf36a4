"""The compact column encoding of a chart's candles (``"gtc1"``), standard library only.

A year of 1m candles is 525,600 rows; as JSON numbers that is some 30 MB, far too much for a page.
Here each column becomes small integers that compress well:

- prices are integer *ticks* (``10 ** -decimals``; ``decimals`` is the fewest that write the first
  prices exactly, but at most 8 significant digits of the largest: half a tick is the most any price
  moves);
- ``close`` is stored as its change from the previous close, ``open`` as its gap from the previous
  close, ``high`` above ``max(open, close)`` and ``low`` below ``min(open, close)``: mostly a few ticks;
- ``timestamp`` as the step from the previous candle in units of the usual step (1 almost always);
- ``volume`` in units of ``10 ** -volume_decimals``, as it is (4 significant digits of the median volume
  at most: a volume bar is not read to the last unit).

Each column is zigzag-coded (small negatives become small positives), written as little-endian
int32 and split into byte planes (all first bytes, then all second bytes, ...), so the mostly-zero
high bytes sit together; the columns are concatenated and zlib-compressed, then base64-encoded.
The page reverses this with ``DecompressionStream("deflate")`` (tradechart.js ``decodeSeries``).

Lists (a ``Candles`` model) take the pure-Python path; numpy arrays (anything with ``astype``) the
vectorised one, without this module ever importing numpy.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from typing import Any, Sequence

ENCODING = "gtc1"
#: The columns in the blob, in order.
COLUMNS = ("time", "open", "high", "low", "close", "volume")
_INT32 = 2**31 - 1
#: Significant digits kept of the largest price (of the first 2,000) and of a typical (the median) volume.
PRICE_DIGITS = 8
VOLUME_DIGITS = 4
_SAMPLE = 2000


def _is_array(values: Any) -> bool:
    return hasattr(values, "astype") and hasattr(values, "dtype")


def _as_list(values: Any) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def price_decimals(values: Sequence[float]) -> int:
    """Ticks of ``10 ** -decimals``: as few decimals as write the first prices exactly, but no more than
    give their largest ``PRICE_DIGITS`` significant digits (at most 12; prices that are not round numbers
    get that many; negative for prices over 10 ** 8: ticks of tens, hundreds...)."""
    sample = [float(v) for v in _as_list(values[:_SAMPLE]) if v == v]
    if not sample:
        return 2
    largest = max(abs(v) for v in sample) or 1.0
    most = min(12, PRICE_DIGITS - 1 - int(math.floor(math.log10(largest))))  # negative: tens, hundreds...
    for decimals in range(0, most):
        if all(_whole(v * 10.0**decimals) for v in sample):
            return decimals
    return most


def _whole(scaled: float) -> bool:
    """Whether a price times a power of ten is a whole number, to the precision of a float."""
    return abs(scaled - round(scaled)) <= max(1e-7, abs(scaled) * 1e-14)


def volume_decimals(values: Sequence[float]) -> int:
    """Decimals for volumes: as many as the first volumes use (at most 8), but no more than give their
    median 4 significant digits (a volume bar is not read to the last unit), and few enough that the
    largest volume fits an int32 (negative for huge volumes: units of tens, hundreds...)."""
    sample = [float(v) for v in _as_list(values[:_SAMPLE]) if v == v]
    largest = float(abs(values).max()) if _is_array(values) else max(map(abs, values), default=0.0)
    fits = 8 if largest <= 0 else min(8, int(math.floor(math.log10(_INT32 / largest))))
    positive = sorted(v for v in sample if v > 0)
    if positive:
        median = positive[len(positive) // 2]
        fits = min(fits, max(min(0, fits), VOLUME_DIGITS - 1 - int(math.floor(math.log10(median)))))
    for decimals in range(0, fits + 1):
        if all(_whole(v * 10.0**decimals) for v in sample):
            return decimals
    return fits


def _zigzag_list(values: list[int]) -> list[int]:
    out = [(v << 1) if v >= 0 else ((-v) << 1) - 1 for v in values]
    if out and max(out) > 2**32 - 1:
        raise ValueError("a candle column does not fit the chart encoding (a step over 2**31 ticks)")
    return out


def _planes_from_list(values: list[int]) -> bytes:
    raw = struct.pack(f"<{len(values)}I", *values)
    return b"".join(raw[i::4] for i in range(4))


def _columns_pure(timestamp, open_, high, low, close, volume, decimals: int, vdecimals: int, unit: int):
    scale, vscale = 10.0**decimals, 10.0**vdecimals
    o = [round(v * scale) for v in _as_list(open_)]
    h = [round(v * scale) for v in _as_list(high)]
    lo = [round(v * scale) for v in _as_list(low)]
    c = [round(v * scale) for v in _as_list(close)]
    t = [int(v) for v in _as_list(timestamp)]
    previous = [c[0]] + c[:-1] if c else []
    return [
        [0] + [(b - a) // unit for a, b in zip(t, t[1:])] if t else [],
        [oo - p for oo, p in zip(o, previous)],
        [hh - max(oo, cc) for hh, oo, cc in zip(h, o, c)],
        [min(oo, cc) - ll for ll, oo, cc in zip(lo, o, c)],
        [cc - p for cc, p in zip(c, previous)],
        [round(v * vscale) for v in _as_list(volume)],
    ]


def _planes_numpy(column) -> bytes:
    """Zigzag, int32 little-endian, byte planes: for a numpy int64 array (no numpy import here)."""
    zig = (column << 1) ^ (column >> 63)
    if len(zig) and (int(zig.max()) > 2**32 - 1 or int(zig.min()) < 0):
        raise ValueError("a candle column does not fit the chart encoding (a step over 2**31 ticks)")
    raw = zig.astype("<u4").view("u1").reshape(-1, 4)
    return raw.T.copy().tobytes()


def _columns_numpy(timestamp, open_, high, low, close, volume, decimals: int, vdecimals: int, unit: int):
    scale, vscale = 10.0**decimals, 10.0**vdecimals

    def ticks(values):
        return (values.astype("f8") * scale).round().astype("i8")

    o, h, lo, c = ticks(open_), ticks(high), ticks(low), ticks(close)
    t = timestamp.astype("i8")
    previous = c.copy()
    previous[1:] = c[:-1]
    steps = t.copy()
    steps[0] = 0
    steps[1:] = (t[1:] - t[:-1]) // unit
    upper = o.copy()
    upper[c > o] = c[c > o]
    lower = o.copy()
    lower[c < o] = c[c < o]
    volume_units = (volume.astype("f8") * vscale).round().astype("i8")
    return [steps, o - previous, h - upper, lower - lo, c - previous, volume_units]


def _time_unit(timestamp) -> int:
    """The usual step between candles in ms (the greatest common divisor of the steps); a ValueError
    unless the candles are oldest first, one per time."""
    if len(timestamp) < 2:
        return 60_000
    if _is_array(timestamp):
        steps = set((timestamp[1:].astype("i8") - timestamp[:-1].astype("i8")).tolist())
    else:
        t = [int(v) for v in _as_list(timestamp)]
        steps = {b - a for a, b in zip(t, t[1:])}
    if min(steps) <= 0:
        raise ValueError("candles must be oldest first, one per timestamp")
    return math.gcd(*steps)


def _check_prices(*columns) -> None:
    for column in columns:
        if (bool((column != column).any()) if _is_array(column) else any(v != v for v in column)):
            raise ValueError("candles with a NaN price: leave those rows out (a gap stays a gap)")


def encode_candles(timestamp, open_, high, low, close, volume) -> dict:
    """The ``gtc1`` encoding of six equally long columns (timestamps in epoch ms): a JSON-able dict
    with the blob (base64 of zlib) and what it takes to decode it."""
    count = len(timestamp)
    _check_prices(open_, high, low, close)
    decimals = price_decimals(close) if count else 2
    vdecimals = volume_decimals(volume) if count else 0
    unit = _time_unit(timestamp)
    if all(_is_array(column) for column in (timestamp, open_, high, low, close, volume)):
        columns = _columns_numpy(timestamp, open_, high, low, close, volume, decimals, vdecimals, unit)
        blob = b"".join(_planes_numpy(column) for column in columns)
    else:
        columns = _columns_pure(timestamp, open_, high, low, close, volume, decimals, vdecimals, unit)
        blob = b"".join(_planes_from_list(_zigzag_list(column)) for column in columns)
    first_time = int(timestamp[0]) if count else 0
    first_close = round(float(close[0]) * 10.0**decimals) if count else 0
    return {
        "encoding": ENCODING, "count": count, "columns": list(COLUMNS),
        "t0": first_time, "unit": unit, "c0": first_close, "decimals": decimals, "volume_decimals": vdecimals,
        "data": base64.b64encode(zlib.compress(blob, 6)).decode("ascii"),
    }


def _units_value(units: int, decimals: int) -> float:
    """``units * 10 ** -decimals``, exactly as the page computes it (a division, or a product for tens)."""
    return units / 10**decimals if decimals >= 0 else float(units * 10**-decimals)


def decode_candles(encoded: dict) -> dict[str, list]:
    """The columns back from ``encode_candles`` (prices rounded to their ticks): for tests and tools;
    the page decodes with its own JavaScript twin."""
    count, decimals, vdecimals = encoded["count"], encoded["decimals"], encoded["volume_decimals"]
    blob = zlib.decompress(base64.b64decode(encoded["data"]))
    columns = []
    for index in range(len(COLUMNS)):
        part = blob[index * 4 * count : (index + 1) * 4 * count]
        raw = bytes(b for row in zip(*(part[p * count : (p + 1) * count] for p in range(4))) for b in row)
        zig = struct.unpack(f"<{count}I", raw)
        columns.append([(z >> 1) if not z & 1 else -((z + 1) >> 1) for z in zig])
    steps, open_gap, above, below, change, volume = columns
    out: dict[str, list] = {"timestamp": [], "open": [], "high": [], "low": [], "close": [], "volume": []}
    time, close = encoded["t0"], encoded["c0"]  # the first close changes by 0 from itself
    for i in range(count):
        time += steps[i] * encoded["unit"]
        opened = close + open_gap[i]
        close += change[i]
        out["timestamp"].append(time)
        out["open"].append(_units_value(opened, decimals))
        out["high"].append(_units_value(max(opened, close) + above[i], decimals))
        out["low"].append(_units_value(min(opened, close) - below[i], decimals))
        out["close"].append(_units_value(close, decimals))
        out["volume"].append(_units_value(volume[i], vdecimals))
    return out
