"""Reading and resampling OHLCV CSV files (``timestamp_ms,open,high,low,close,volume``)."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

from gobot_hookspecs import Candles

#: Timeframe name -> seconds.
TIMEFRAMES = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400}
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


#: Where the bundled synthetic demo market lives: inside gobot's wheel (``data/`` of the repository).
BUNDLED_PACKAGE = "gobot.demo_data"


def bundled_data_dir() -> Path | None:
    """The folder of the bundled synthetic demo candles (BTC/USDT and ETH/USDT, 5m), or None.

    They ship as package data of gobot, so ``gobot start`` in an empty folder runs the demo
    without writing anything there. Only a location is looked up: nothing of the core is used.
    """
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if (Path(location) / "BTC_USDT-5m.csv").is_file():
            return Path(location)
    return None


def file_name(symbol: str, timeframe: str) -> str:
    """``BTC/USDT`` + ``5m`` -> ``BTC_USDT-5m.csv`` (futures ``BTC/USDT:USDT`` -> ``BTC_USDT_USDT``)."""
    return f"{symbol.replace('/', '_').replace(':', '_')}-{timeframe}.csv"


def read_csv(path: Path, timeframe: str) -> Candles:
    columns: dict[str, list] = {name: [] for name in COLUMNS}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:6]] != ["timestamp_ms", "open", "high", "low", "close", "volume"]:
            raise ValueError(f"{path}: expected the header timestamp_ms,open,high,low,close,volume")
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
    step = TIMEFRAMES[timeframe] * 1000
    out: dict[str, list] = {name: [] for name in COLUMNS}
    current = None
    for ts, o, h, lo, c, v in zip(candles.timestamp, candles.open, candles.high, candles.low, candles.close, candles.volume):
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


def find_candles(data_dir: Path, symbol: str, timeframe: str) -> Candles:
    """The candles of ``symbol`` at ``timeframe``: the exact file, or the coarsest finer one resampled."""
    wanted = TIMEFRAMES[timeframe]
    finer = sorted((s, tf) for tf, s in TIMEFRAMES.items() if s <= wanted and wanted % s == 0)
    tried = []
    for seconds, tf in reversed(finer):
        path = data_dir / file_name(symbol, tf)
        tried.append(path.name)
        if path.exists():
            candles = read_csv(path, tf)
            if not candles.timestamp:
                raise ValueError(f"{path}: no candles")
            return candles if tf == timeframe else resample(candles, timeframe)
    raise FileNotFoundError(
        f"no market data for {symbol} in {data_dir} (looked for {', '.join(tried)}); "
        "run `gobot data synth` or set [plugins.replay] data_dir"
    )
