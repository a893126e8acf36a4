"""Sentiment readings beside the market data: attaching them to snapshots, and recording and
replaying them as CSV files (contract 1.4).

A recorded source is one file, ``<data_dir>/sentiment/<source>.csv`` (``recorded_path``), one row
per reading, oldest first::

    timestamp_ms,valid_until_ms,symbol,score,value,classification,input.value
    1733443200000,1733529600000,,0.44,72,Greed,0.44

``timestamp_ms`` is when the source measured it (epoch ms UTC), ``valid_until_ms`` when it is due
to be replaced (empty = never stale), ``symbol`` empty for a market-wide reading, ``score`` in
-1..1 (empty = none); then one column per named field (a number, else text; empty = None) and one
``input.<name>`` column per input of the score. A live plugin appends its readings with
``append_reading`` (a new file's columns: the names given, else the first reading's); the replay
plugin and the backtester answer from ``Recorded.as_of`` — the newest reading at or before the
cycle's time, never a later one.
"""

from __future__ import annotations

import bisect
import csv
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from .models import MarketSnapshot, Sentiment

RECORDED_DIR = "sentiment"
BASE_COLUMNS = ("timestamp_ms", "valid_until_ms", "symbol", "score")
INPUT_PREFIX = "input."


def recorded_path(data_dir: Path, source: str) -> Path:
    """Where the readings of ``source`` are recorded under a market data folder."""
    return Path(data_dir) / RECORDED_DIR / f"{source}.csv"


def recorded_files(data_dir: Path) -> list[Path]:
    """The recorded sources of a market data folder, ``<data_dir>/sentiment/*.csv`` by name (none: no folder)."""
    folder = Path(data_dir) / RECORDED_DIR
    return sorted(folder.glob("*.csv")) if folder.is_dir() else []


def readings_as_of(recorded: Iterable[Recorded], now: datetime, symbols: Iterable[str]) -> list[Sentiment]:
    """Every source's newest readings at or before ``now``, for ``symbols`` and the market."""
    symbols = list(symbols)
    return [reading for source in recorded for reading in source.as_of(now, symbols)]


def attach(snapshots: Iterable[MarketSnapshot], readings: Iterable[Sentiment], now: datetime) -> list[str]:
    """Put each reading on the snapshots it concerns (``snapshot.sentiment[source]``), in place.

    The first reading for a source and symbol wins; a symbol's own reading beats a market-wide one.
    A reading past its ``valid_until`` is marked stale. Returns one line per reading attached,
    for the cycle's phase records.
    """
    snapshots = list(snapshots)
    lines: list[str] = []
    own: set[tuple[str, str]] = set()
    for reading in readings:
        if not reading.stale and reading.valid_until is not None and reading.valid_until < now:
            reading = reading.model_copy(update={
                "stale": True, "note": reading.note or f"not refreshed since {reading.time:%Y-%m-%d %H:%M} UTC "
                                                      f"(due by {reading.valid_until:%Y-%m-%d %H:%M})"})
        targets = [s for s in snapshots if reading.symbol in (None, s.symbol)]
        for snap in targets:
            key = (reading.source, snap.symbol)
            if key in own or (reading.symbol is None and reading.source in snap.sentiment):
                continue
            snap.sentiment[reading.source] = reading
            if reading.symbol is not None:
                own.add(key)
        if targets:
            lines.append(describe(reading))
    return lines


def describe(reading: Sentiment) -> str:
    """One line: source, symbol, score and its inputs, stale or partial."""
    where = reading.symbol or "market"
    score = "no score" if reading.score is None else f"score {reading.score:+.2f}"
    inputs = ", ".join(f"{name} {part:+.2f}" for name, part in reading.inputs.items())
    text = f"sentiment {reading.source} ({where}): {score}" + (f" = {inputs}" if inputs else "")
    if reading.stale:
        text += f" — STALE: {reading.note}" if reading.note else " — STALE"
    elif reading.missing:
        text += f" — missing {', '.join(reading.missing)}"
    return text


def append_reading(path: Path, reading: Sentiment, fields: Iterable[str] | None = None,
                   inputs: Iterable[str] | None = None) -> None:
    """Add one reading to a recorded file. A new file's columns are ``fields`` and ``inputs`` (every name the
    source can have: an input missing from the first reading keeps its column), by default this reading's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    if new:
        header = [*BASE_COLUMNS, *(reading.fields if fields is None else fields),
                  *(INPUT_PREFIX + name for name in (reading.inputs if inputs is None else inputs))]
    else:
        with path.open(newline="", encoding="utf-8") as f:
            header = next(csv.reader(f))
    row = {"timestamp_ms": _ms(reading.time), "valid_until_ms": _ms(reading.valid_until) if reading.valid_until else "",
           "symbol": reading.symbol or "", "score": "" if reading.score is None else repr(reading.score),
           **{name: _cell(value) for name, value in reading.fields.items()},
           **{INPUT_PREFIX + name: repr(value) for name, value in reading.inputs.items()}}
    with path.open("a", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(header)
        writer.writerow([row.get(name, "") for name in header])


class Recorded:
    """The readings of one recorded source, looked up by time (``as_of``) without lookahead."""

    def __init__(self, source: str, readings: list[Sentiment]):
        self.source = source
        self._by_symbol: dict[str | None, tuple[list[int], list[Sentiment]]] = {}
        for reading in sorted(readings, key=lambda r: r.time):
            times, items = self._by_symbol.setdefault(reading.symbol, ([], []))
            times.append(_ms(reading.time))
            items.append(reading)

    def __len__(self) -> int:
        return sum(len(items) for _, items in self._by_symbol.values())

    def as_of(self, now: datetime, symbols: Iterable[str]) -> list[Sentiment]:
        """The newest reading at or before ``now`` for each symbol and the market (none later)."""
        now_ms = _ms(now)
        found = []
        for symbol in [*symbols, None]:
            times, items = self._by_symbol.get(symbol, ([], []))
            at = bisect.bisect_right(times, now_ms)
            if at:
                found.append(items[at - 1])
        return found


def read_recorded(path: Path, source: str | None = None) -> Recorded:
    """Read a recorded file; ``ValueError`` names the file, row and column of a bad cell."""
    path = Path(path)
    source = source or path.stem
    readings = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header[:4]) != BASE_COLUMNS:
            raise ValueError(f"{path}: expected the header to start with {','.join(BASE_COLUMNS)}")
        names = [h.strip() for h in header]
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            cells = dict(zip(names, row))
            try:
                readings.append(_reading(source, cells))
            except ValueError as exc:
                raise ValueError(f"{path}, row {line}: {exc}") from None
    return Recorded(source, readings)


def _reading(source: str, cells: dict[str, str]) -> Sentiment:
    def number(name: str) -> float | None:
        text = cells.get(name, "").strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{name} {text!r} is not a number") from None

    time_ms, until_ms = number("timestamp_ms"), number("valid_until_ms")
    if time_ms is None:
        raise ValueError("timestamp_ms is empty")
    fields = {name: _value(text) for name, text in cells.items()
              if name not in BASE_COLUMNS and not name.startswith(INPUT_PREFIX)}
    inputs = {name[len(INPUT_PREFIX):]: number(name) for name in cells if name.startswith(INPUT_PREFIX)}
    return Sentiment(source=source, symbol=cells.get("symbol", "").strip() or None, time=_utc(time_ms),
                     valid_until=_utc(until_ms) if until_ms is not None else None, score=number("score"),
                     fields=fields, inputs={k: v for k, v in inputs.items() if v is not None})


def _value(text: str) -> float | str | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _cell(value: float | str | None) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _utc(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
