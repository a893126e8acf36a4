"""Candle files and timeframes, written once for the core and every plugin: the timeframe table,
the replay CSV file name rule, and a pure reader and resampler (standard library only).

The replay format: a file ``<BASE>_<QUOTE>-<timeframe>.csv`` (futures ``BTC/USDT:USDT`` ->
``BTC_USDT_USDT-1m.csv``) with the header ``timestamp_ms,open,high,low,close,volume``, one closed
candle a row, oldest first; the timestamp is the candle's open time in epoch milliseconds (UTC).
A missing row is a gap, and resampling keeps it a gap: nothing is filled in.

The core's backtester reads the same files with numpy (``gobot.research.market_data``) for speed;
a test holds that reader to this one.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path

from .models import Candles

#: Every Binance kline interval, named as ccxt names them -> seconds. ``1M`` (a calendar month) is
#: counted as 30 days, as ccxt does; it differs from ``1m`` only in case, so keep the two files apart
#: on a case-insensitive file system (macOS, Windows).
TIMEFRAMES: dict[str, int] = {
    "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800,
    "1h": 3600, "2h": 7200, "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200,
    "1d": 86400, "3d": 259200, "1w": 604800, "1M": 2592000,
}
#: Timeframes whose candles open on multiples of their length since the epoch, so finer candles can
#: be bucketed into them by ``timestamp - timestamp % length``. Weeks open on Monday (the epoch was a
#: Thursday), months on their first day, and Binance's 3-day candles are not epoch-aligned either.
RESAMPLE_TARGETS = frozenset(tf for tf, seconds in TIMEFRAMES.items() if seconds <= 86400)

CSV_HEADER = "timestamp_ms,open,high,low,close,volume"
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_FILE_NAME = re.compile(
    r"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)(?:_(?P<settle>[A-Z0-9]+))?-(?P<tf>\d+[mhdwM])\.csv$"
)


def timeframe_seconds(timeframe: str) -> int:
    """``"15m"`` -> ``900``; a ValueError naming the known timeframes for anything else."""
    try:
        return TIMEFRAMES[timeframe]
    except (KeyError, TypeError):
        raise ValueError(f"unknown timeframe '{timeframe}'; use one of {', '.join(TIMEFRAMES)}") from None


def timeframe_ms(timeframe: str) -> int:
    """``"1m"`` -> ``60000``: a candle's length in milliseconds."""
    return timeframe_seconds(timeframe) * 1000


def can_resample(source: str, target: str) -> bool:
    """Whether ``source`` candles can be aggregated into ``target`` candles (same, or a whole number
    of them into an epoch-aligned target)."""
    if source == target:
        return source in TIMEFRAMES
    if target not in RESAMPLE_TARGETS or source not in TIMEFRAMES:
        return False
    wanted, step = TIMEFRAMES[target], TIMEFRAMES[source]
    return step < wanted and wanted % step == 0


def sources_for(timeframe: str) -> list[str]:
    """The timeframes whose files can make ``timeframe`` candles, best first: itself, then coarser
    to finer (fewer rows to aggregate)."""
    timeframe_seconds(timeframe)  # an unknown name fails here, with the list of known ones
    finer = [tf for tf in TIMEFRAMES if tf != timeframe and can_resample(tf, timeframe)]
    return [timeframe] + sorted(finer, key=TIMEFRAMES.__getitem__, reverse=True)


def csv_file_name(symbol: str, timeframe: str) -> str:
    """``BTC/USDT`` + ``5m`` -> ``BTC_USDT-5m.csv`` (futures ``BTC/USDT:USDT`` -> ``BTC_USDT_USDT-5m.csv``)."""
    return f"{symbol.replace('/', '_').replace(':', '_')}-{timeframe}.csv"


def parse_csv_file_name(name: str | Path) -> tuple[str, str] | None:
    """``BTC_USDT-1m.csv`` -> ``("BTC/USDT", "1m")``; None for a name not in that shape."""
    match = _FILE_NAME.match(Path(name).name)
    if not match:
        return None
    symbol = f"{match['base']}/{match['quote']}" + (f":{match['settle']}" if match["settle"] else "")
    return symbol, match["tf"]


def read_csv(path: Path, timeframe: str) -> Candles:
    """The candles of one replay CSV file; a ValueError naming the file and line for a bad one."""
    columns: dict[str, list] = {name: [] for name in COLUMNS}
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:6]] != CSV_HEADER.split(","):
            raise ValueError(f"{path}: expected the header {CSV_HEADER}")
        for line_no, row in enumerate(reader, start=2):
            try:
                columns["timestamp"].append(int(float(row[0])))
                for name, value in zip(COLUMNS[1:], row[1:6]):
                    columns[name].append(float(value))
            except (ValueError, IndexError):
                raise ValueError(f"{path}:{line_no}: not a number in {row!r}") from None
    return Candles.model_construct(timeframe=timeframe, **columns)


def resample(candles: Candles, timeframe: str) -> Candles:
    """Aggregate finer candles into ``timeframe`` buckets; gaps stay gaps (nothing is filled in)."""
    step = timeframe_ms(timeframe)
    out: dict[str, list] = {name: [] for name in COLUMNS}
    current = None
    rows = zip(candles.timestamp, candles.open, candles.high, candles.low, candles.close, candles.volume)
    for ts, o, h, lo, c, v in rows:
        bucket = ts - ts % step
        if bucket != current:
            current = bucket
            out["timestamp"].append(bucket)
            out["open"].append(o)
            out["high"].append(h)
            out["low"].append(lo)
            out["close"].append(c)
            out["volume"].append(v)
        else:
            out["high"][-1] = max(out["high"][-1], h)
            out["low"][-1] = min(out["low"][-1], lo)
            out["close"][-1] = c
            out["volume"][-1] += v
    return Candles.model_construct(timeframe=timeframe, **out)


#: The package that ships the bundled synthetic demo candles inside the gobot-trading wheel.
BUNDLED_PACKAGE = "gobot.demo_data"


def bundled_data_dir() -> Path | None:
    """The folder of the bundled synthetic demo candles (BTC/USDT and ETH/USDT, 5m), or None.

    They ship as package data of gobot, so ``gobot start`` and ``gobot backtest`` in an empty folder
    run the demo without writing anything there. Only a location is looked up: nothing is imported.
    """
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if (Path(location) / "BTC_USDT-5m.csv").is_file():
            return Path(location)
    return None

