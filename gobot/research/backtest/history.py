"""Past candles for charts and reports (``ConfigView.history``): the candles ``gobot backtest`` would
test on, found where it looks — ``[backtest] data_dir`` (the bundled demo market when that folder is
the default and missing), then ``[plugins.replay] data_dir`` when that section differs — read through
the same parsed-file cache (``<state_dir>/cache/candles``), a finer file resampled when needed.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from gobot.research.market_data import (
    DataError,
    candle_cache_dir,
    data_dir_or_bundled,
    file_name,
    load_series,
    sources_for,
    timeframe_ms,
)


def data_dirs(settings: Any, replay_config: Any = None) -> list[Path]:
    """The folders searched, in order, without duplicates."""
    folders = [data_dir_or_bundled(settings.backtest.data_dir, settings.resolve(settings.backtest.data_dir))]
    replay_dir = getattr(replay_config, "data_dir", None)
    if replay_dir:
        folders.append(data_dir_or_bundled(replay_dir, settings.resolve(replay_dir)))
    unique: list[Path] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def history(settings: Any, symbol: str, timeframe: str, start: datetime | None = None, end: datetime | None = None,
            *, replay_config: Any = None):
    """``symbol``'s candles at ``timeframe`` opening in ``[start, end)``, oldest first: a ``Candles`` whose
    columns are numpy arrays (what a vectorized strategy gets: ``len()``, indexing and slicing work; call
    ``.tolist()`` on a column for plain numbers). Empty when no folder has the symbol at that timeframe (or a
    finer one). An unknown timeframe is a ``ValueError``; a file that cannot be read, a ``DataError`` naming it."""
    from gobot_hookspecs import Candles

    try:
        timeframe_ms(timeframe)
    except DataError as exc:
        raise ValueError(str(exc)) from None
    cache_dir = candle_cache_dir(settings.state_path)
    for folder in data_dirs(settings, replay_config):
        if any((folder / file_name(symbol, tf)).is_file() for tf in sources_for(timeframe)):
            # a damaged file is a DataError naming it, not "no candles"
            return load_series(folder, symbol, timeframe, start_ms=_ms(start), end_ms=_ms(end),
                               cache_dir=cache_dir).candles()
    return Candles(timeframe=timeframe)
