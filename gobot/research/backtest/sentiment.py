"""Recorded sentiment in a backtest: the readings of ``<folder>/sentiment/*.csv`` beside the candle files,
put on the snapshots the risk plugins see at each entry decision, as of the decision's time — what the
``replay`` plugin answers ``gobot_scan_sentiment`` with in a paper run of the same folder.

Files are read once (and kept while unchanged, for the optimizer's many backtests); a backtest whose
candle folders have no ``sentiment`` folder pays nothing per decision. Candles made in memory (the
validator's ``ctx.backtest``) take the readings of the folders ``gobot backtest`` reads.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from gobot_hookspecs import MarketSnapshot
from gobot_hookspecs.sentiment import Recorded, attach, read_recorded, readings_as_of, recorded_files

_READ: dict[Path, tuple[tuple[int, int], Recorded]] = {}  # path -> ((mtime_ns, size), its readings)


def folders_of(series: Iterable, settings: Any = None, replay_config: Any = None) -> list[Path]:
    """The folders the series' candle files came from; for series made in memory (``ctx.backtest``, the
    validator's backtests of the running bot's candles) the folders ``gobot backtest`` looks in:
    ``[backtest] data_dir``, then ``[plugins.replay] data_dir`` (a replay's own folder)."""
    out: list[Path] = []
    in_memory = False
    for item in series:
        path = Path(item.source) if getattr(item, "source", "") else None
        if path is not None and path.suffix == ".csv" and path.is_file():
            if path.parent not in out:
                out.append(path.parent)
        else:
            in_memory = True
    if in_memory and settings is not None:
        from gobot.research.backtest.history import data_dirs

        out += [folder for folder in data_dirs(settings, replay_config) if folder not in out]
    return out


def recorded_in(folders: Iterable[Path]) -> list[Recorded]:
    """Every recorded source under the folders' ``sentiment`` folders (the first folder's file of a source
    wins); a bad file raises ``DataError`` naming the file and row."""
    found: dict[str, Recorded] = {}
    for folder in folders:
        for path in recorded_files(folder):
            if path.stem in found:
                continue
            try:
                found[path.stem] = _read(path)
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                from gobot.research.market_data import DataError

                raise DataError(f"recorded sentiment: {exc}" if str(path) in str(exc) else
                                f"{path}: recorded sentiment: {exc}") from None
    return list(found.values())


def _read(path: Path) -> Recorded:
    stat = path.stat()
    mark = (stat.st_mtime_ns, stat.st_size)
    known = _READ.get(path)
    if known is None or known[0] != mark:
        known = _READ[path] = (mark, read_recorded(path))
    return known[1]


def attach_as_of(recorded: list[Recorded], snapshots: list[MarketSnapshot], now: datetime) -> None:
    """Each source's newest reading at or before ``now`` on the snapshots it concerns (stale ones marked)."""
    attach(snapshots, readings_as_of(recorded, now, (snap.symbol for snap in snapshots)), now)
