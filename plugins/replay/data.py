"""Finding a symbol's candles in a folder of replay CSV files (the exact timeframe, or a finer one
resampled up) and the recorded sentiment readings beside them (``<data_dir>/sentiment/*.csv``). The
formats, the file name rule and the readers are the contract's (``gobot_hookspecs.candles``,
``gobot_hookspecs.sentiment``), shared with the core's backtester.
"""

from __future__ import annotations

from pathlib import Path

from gobot_hookspecs import Candles
from gobot_hookspecs.candles import csv_file_name, read_csv, resample, sources_for
from gobot_hookspecs.sentiment import Recorded, read_recorded, recorded_files


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


def find_sentiment(data_dir: Path) -> list[Recorded]:
    """Every recorded sentiment source under ``data_dir/sentiment`` (one per CSV file, the source = its name);
    none when there is no such folder. A bad file raises ``ValueError`` naming the file and row."""
    recorded = []
    for path in recorded_files(data_dir):
        try:
            recorded.append(read_recorded(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read recorded sentiment: {exc}") from None
    return recorded
