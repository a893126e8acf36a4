"""Finding a symbol's candles in a folder of replay CSV files: the exact timeframe, or a finer one
resampled up. The format, the file name rule and the reader are the contract's
(``gobot_hookspecs.candles``), shared with the core's backtester.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from gobot_hookspecs import Candles
from gobot_hookspecs.candles import csv_file_name, read_csv, resample, sources_for

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


def find_candles(data_dir: Path, symbol: str, timeframe: str) -> Candles:
    """The candles of ``symbol`` at ``timeframe``: the exact file, or the coarsest finer one resampled."""
    tried = []
    for tf in sources_for(timeframe):
        path = data_dir / csv_file_name(symbol, tf)
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
