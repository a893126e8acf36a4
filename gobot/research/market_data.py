"""Candles for backtests and the optimizer: replay CSV files parsed straight into numpy arrays,
gaps found and reported (never filled in), and each market's precision and limits read from the
``markets.json`` that ``gobot data download`` writes next to the candles. Fully offline.

File format: the replay format of the contract (``gobot_hookspecs.candles``: the file name rule,
the header, the timeframe table), read here with numpy for speed; a test holds this reader to the
contract's. A missing row is a gap: the backtester trades across it on the next candle that exists,
and every gap is listed in the report.

``markets.json`` maps a symbol to the market as the exchange reports it (ccxt's unified shape; only
these keys are read, each optional)::

    {"BTC/USDT": {"precision": {"amount": 0.00001, "price": 0.01},
                  "limits": {"amount": {"min": 0.00001}, "cost": {"min": 5.0}}}}

``precision`` values are step sizes (ccxt's TICK_SIZE mode, the one Binance uses). When the file
or a symbol is absent, the defaults are safe for a simulation: no rounding and no minimums.
"""

from __future__ import annotations

import io
import json
import math
import mmap
import os
import re
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from gobot.errors import GobotError
from gobot_hookspecs import candles as replay_format
from gobot_hookspecs.candles import COLUMNS, TIMEFRAMES, bundled_data_dir, can_resample, sources_for  # noqa: F401 - re-exported

HEADER = replay_format.CSV_HEADER
#: The bundled synthetic demo market: package data of gobot (``data/`` of the repository).
#: The default data folder; when it does not exist, the bundled demo market is read instead.
DEFAULT_DATA_DIR = "data"
MARKETS_FILE = "markets.json"


class DataError(GobotError, ValueError):
    """A data file that cannot be used; the message names the file and what to do."""


def file_name(symbol: str, timeframe: str) -> str:
    """``BTC/USDT`` + ``1m`` -> ``BTC_USDT-1m.csv`` (futures ``BTC/USDT:USDT`` -> ``BTC_USDT_USDT-1m.csv``)."""
    return replay_format.csv_file_name(symbol, timeframe)


def parse_file_name(path: Path) -> tuple[str, str] | None:
    """``BTC_USDT-1m.csv`` -> ``("BTC/USDT", "1m")``; None for a name not in that shape."""
    return replay_format.parse_csv_file_name(path)


def timeframe_ms(timeframe: str) -> int:
    try:
        return replay_format.timeframe_ms(timeframe)
    except ValueError as exc:
        raise DataError(str(exc)) from None


@dataclass(frozen=True)
class MarketRules:
    """What the exchange allows for one symbol; zeros mean "no rule" (the offline defaults)."""

    amount_step: float = 0.0  # amounts are rounded down to a multiple of this, base asset
    price_step: float = 0.0  # informational: fills are simulated, not rounded
    min_amount: float = 0.0  # smallest amount an order may have, base asset
    min_notional: float = 0.0  # smallest amount x price an order may have, quote currency
    source: str = "defaults"  # "markets.json" or "defaults"

    def round_amount(self, amount: float) -> float:
        """Round down to the amount step (as the exchange would), never up."""
        if self.amount_step <= 0 or amount <= 0:
            return max(amount, 0.0)
        return math.floor(amount / self.amount_step) * self.amount_step


@dataclass(frozen=True)
class Gap:
    """Missing candles: ``missing`` of them after the candle that opened at ``after_ms``."""

    after_ms: int
    missing: int

    @property
    def after(self) -> datetime:
        return datetime.fromtimestamp(self.after_ms / 1000, tz=timezone.utc)


@dataclass
class Series:
    """One symbol's candles as numpy columns (timestamp int64 ms; prices and volume float64)."""

    symbol: str
    timeframe: str
    timestamp: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    market: MarketRules = field(default_factory=MarketRules)
    source: str = ""  # the file it came from
    gaps: list[Gap] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.timestamp)

    @property
    def step_ms(self) -> int:
        return timeframe_ms(self.timeframe)

    @property
    def missing_candles(self) -> int:
        return sum(g.missing for g in self.gaps)

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> Series:
        """The candles that open in ``[start_ms, end_ms)`` (views, no copy); gaps recomputed."""
        lo = 0 if start_ms is None else int(np.searchsorted(self.timestamp, start_ms, "left"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.timestamp, end_ms, "left"))
        part = replace(self, **{name: getattr(self, name)[lo:hi] for name in COLUMNS})
        part.gaps = find_gaps(part.timestamp, self.step_ms)
        return part

    def candles(self):
        """A ``Candles`` whose columns are these numpy arrays (what a vectorized strategy gets)."""
        from gobot_hookspecs import Candles

        return Candles.model_construct(timeframe=self.timeframe, **{name: getattr(self, name) for name in COLUMNS})


def candle_cache_dir(state_path: Path) -> Path:
    """Where parsed candle files are kept as binary copies (``read_csv``'s ``cache_dir``) in a state folder."""
    return state_path / "cache" / "candles"


def read_csv(path: Path, cache_dir: Path | None = None) -> dict[str, np.ndarray]:
    """The columns of a replay CSV file, checked: header, numbers, ascending unique timestamps.

    With ``cache_dir``, the parsed table is kept there as a binary ``.npy`` file named after the
    CSV's path, size and modification time, and memory-mapped on the next read of the same file
    (a year of 1m candles: 0.12 s of parsing becomes a few ms). A changed file is parsed again.
    """
    cached = _cache_file(path, cache_dir) if cache_dir is not None else None
    if cached is not None and cached.exists():
        try:
            return _columns(np.load(cached, mmap_mode="r"))
        except (OSError, ValueError):
            pass  # a damaged cache file is parsed again and replaced
    columns, table = _parse_csv(path)
    if cached is not None and table.nbytes >= BACKGROUND_CACHE_BYTES:
        # written while the backtest runs (a non-daemon thread: the process waits for it at exit)
        threading.Thread(target=_write_cache, args=(cached, table), name="candle-cache").start()
    elif cached is not None:
        _write_cache(cached, table)
    return columns


#: A CSV file at least this big is memory-mapped rather than read (``_read``).
MAP_BYTES = 1 << 20
#: A parsed table at least this big is written to the cache in a thread of its own, beside the run
#: that needs it (a year of 1m candles: 25 MB, 20-30 ms of a first run); smaller ones at once.
BACKGROUND_CACHE_BYTES = 8 << 20


def _cache_file(path: Path, cache_dir: Path) -> Path | None:
    import hashlib

    try:
        stat = path.stat()
    except OSError:
        return None
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    return cache_dir / f"{key}-{stat.st_size}-{stat.st_mtime_ns}.npy"


def _write_cache(cached: Path, table: np.ndarray) -> None:
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp.npy")  # writers never share one
        np.save(temporary, table)
        temporary.replace(cached)
        prefix = cached.name.split("-")[0] + "-"
        for old in cached.parent.glob(prefix + "*.npy"):
            if old != cached:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a cache is an optimisation: a read-only folder just means parsing each time


def _columns(table: np.ndarray) -> dict[str, np.ndarray]:
    columns = {name: table[k] for k, name in enumerate(COLUMNS)}
    columns["timestamp"] = np.asarray(table[0]).astype(np.int64)
    return columns


def _read(path: Path) -> bytes | mmap.mmap:
    """The file's bytes; a big one memory-mapped with its pages mapped at once (``MAP_POPULATE``): no
    40 MB copy and no page fault a page (a year of 1m candles: ~25 ms less in a fresh process)."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < MAP_BYTES or not hasattr(mmap, "MAP_POPULATE"):
            return handle.read()
        return mmap.mmap(handle.fileno(), 0, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE, prot=mmap.PROT_READ)


def _parse_csv(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    try:
        raw = _read(path)
    except (OSError, ValueError) as exc:  # ValueError: mmap of a file that shrank to nothing meanwhile
        raise DataError(f"{path}: cannot read: {exc}") from None
    newline = raw.find(b"\n")
    header = bytes(raw if newline < 0 else raw[:newline]).decode("utf-8", "replace").strip()
    if [h.strip() for h in header.split(",")[:6]] != HEADER.split(","):
        raise DataError(f"{path}: expected the header {HEADER}")
    if newline < 0 or not re.compile(rb"\S").search(raw, newline + 1):
        raise DataError(f"{path}: no candles")
    table = _plain_decimals(raw, newline + 1)
    if table is None:  # signs, exponents, spaces, CRLF, more columns, long numbers: numpy's C reader
        try:  # skiprows, not a slice: the 40 MB of a year of 1m candles are not copied (rows still count from 1)
            table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.float64, usecols=range(6), ndmin=2,
                               skiprows=1)
        except ValueError as exc:
            raise DataError(f"{path}: {exc} (line numbers count from the first candle; "
                            "fix or re-download the file)") from None
        table = np.ascontiguousarray(table.T)  # one contiguous row per column
    columns = _columns(table)
    ts = columns["timestamp"]
    if len(ts) > 1:
        steps = np.diff(ts)
        bad = np.flatnonzero(steps <= 0)
        if bad.size:
            row = int(bad[0]) + 3  # 1-based, after the header
            raise DataError(f"{path}:{row}: timestamp {int(ts[bad[0] + 1])} does not come after {int(ts[bad[0]])} "
                            "(rows must be oldest first, one per candle)")
    return columns, table


# -- plain decimals (six fields a line, each like 123 or 123.456), read without a float parser -------------
# A field is read as the two 8-byte words that end at its separator and turned into an integer with
# SWAR arithmetic (eight ASCII digits at once in a uint64), its dot taken out first and counted: its
# digits over a power of ten, an exact integer up to 2**53 over an exact 1e0..1e15, so the division
# rounds once, as float() rounds the text: the same float64. Anything else is loadtxt's. A test holds
# both to the contract's reader. About 0.09 s for a year of 1m candles in a fresh process with two
# threads on two cores, 0.13 s in one (loadtxt and the transposition: 0.17 s).
_U = np.uint64
_DIGIT0 = _U(0x3030303030303030)  # "00000000"
_LOW7 = _U(0x7F7F7F7F7F7F7F7F)
_DOT = _U(0x1E1E1E1E1E1E1E1E)  # "." ^ "0"
_AFTER_LOW = _U(0x0706050403020100)  # (1 << 8k) * this >> 56 == k: the digits after a dot in byte k of the low word
_AFTER_HIGH = _U(0x0F0E0D0C0B0A0908)  # ... and k + 8 in the high word
_KEEP_LOW = np.array([0] + [2**64 - 2 ** (8 * (8 - n)) for n in range(1, 8)] + [2**64 - 1] * 9, dtype=_U)
_KEEP_HIGH = np.array([0] * 9 + [2**64 - 2 ** (8 * (16 - n)) for n in range(9, 17)], dtype=_U)  # by field length
_POW10 = 10.0 ** np.arange(16)
_BLOCK_BYTES = 1 << 20  # temporaries stay in the cache; a block ends at a line's end


def _plain_decimals(raw: bytes | mmap.mmap, body_start: int) -> np.ndarray | None:
    """The ``(6, rows)`` table of a CSV body of plain decimals, or None when it holds anything else."""
    b = np.frombuffer(raw, np.uint8)
    if len(raw) - body_start < 2 or b[-1] != 10 or body_start < 16:
        return None
    words = np.ndarray(shape=(len(raw) - 7,), dtype="<u8", buffer=raw, strides=(1,))  # a word at every byte
    blocks, start, row = [], body_start, 0  # (first byte, end, first row)
    while start < len(raw):
        stop = raw.rfind(b"\n", start, start + _BLOCK_BYTES) + 1 or raw.find(b"\n", start) + 1
        blocks.append((start, stop, row))
        row += raw.count(b"\n", start, stop) if isinstance(raw, bytes) else int(np.count_nonzero(b[start:stop] == 10))
        start = stop
    table = np.empty((6, row))
    parsed = [False] * len(blocks)

    def parse(first: int, step: int) -> None:  # each block's values go to its own columns of the table
        for k in range(first, len(blocks), step):
            start, stop, row = blocks[k]
            values = _block_values(b, words, start, stop)
            rows = (blocks[k + 1][2] if k + 1 < len(blocks) else table.shape[1]) - row
            if values is None or len(values) != 6 * rows:
                return
            table[:, row:row + rows] = values.reshape(-1, 6).T
            parsed[k] = True

    # numpy lets go of the GIL inside each array pass: a second thread parses every other block on a second core
    threads = min(2, os.cpu_count() or 1) if len(blocks) > 3 else 1
    helper = None
    if threads > 1:
        helper = threading.Thread(target=parse, args=(1, threads), daemon=True)
        helper.start()
    parse(0, threads)
    if helper is not None:
        helper.join()
    return table if all(parsed) else None


def _block_values(b: np.ndarray, words: np.ndarray, start: int, stop: int) -> np.ndarray | None:
    part = b[start:stop]
    ends = np.flatnonzero(part <= 44)  # "," and newline (any other byte this low fails the next test)
    rows = len(ends) // 6
    if rows * 6 != len(ends) or (part[ends[5::6]] != 10).any() or np.count_nonzero(part == 44) != 5 * rows:
        return None
    dots = np.count_nonzero(part == 46)
    if np.count_nonzero((part - np.uint8(48)) > 9) != len(ends) + dots:
        return None  # a byte that is no digit, dot or separator
    length = np.empty_like(ends)
    length[0] = ends[0]
    length[1:] = np.diff(ends) - 1
    ends += start
    return _field_values(words, ends, length, dots)


def _field_values(words: np.ndarray, end: np.ndarray, length: np.ndarray, dots: int) -> np.ndarray | None:
    if length.min() < 1 or length.max() > 16:
        return None
    high = (words[end - 16] ^ _DIGIT0) & _KEEP_HIGH[length]  # digits 0-9 a byte, "." 0x1E, the bytes before 0
    low = (words[end - 8] ^ _DIGIT0) & _KEEP_LOW[length]
    dot_low, dot_high = _dot(low), _dot(high)
    dotted = dot_low | dot_high
    if np.count_nonzero(dotted) != dots or (length - (dotted != 0)).min() < 1:
        return None  # two dots in a field, or a dot alone
    in_low, in_high = (dot_low != 0).view(np.uint8), (dot_high != 0).view(np.uint8)
    below = dot_low - in_low  # the bytes before a dot move up one byte, over it
    low = ((low & below) << _U(8)) | (low & ~((dot_low << _U(8)) - in_low))
    below = (dot_high - in_high) | (_U(0) - in_low)  # a dot in the low word moves all of the high word
    low |= (high & below) >> _U(56)
    high = ((high & below) << _U(8)) | (high & ~(below | (dot_high * _U(0xFF))))
    mantissa = _digits(high) * _U(100_000_000) + _digits(low)
    if mantissa.max() > 1 << 53:
        return None
    return mantissa / _POW10[(dot_low * _AFTER_LOW + dot_high * _AFTER_HIGH) >> _U(56)]


def _dot(word: np.ndarray) -> np.ndarray:
    """``1 << 8k`` for each byte k that is the dot, else 0 (a zero-byte test without carries between bytes)."""
    t = word ^ _DOT
    return (~(((t & _LOW7) + _LOW7) | t) & ~_LOW7) >> _U(7)


def _digits(word: np.ndarray) -> np.ndarray:
    """Eight digits, 0-9 a byte with the most significant in the lowest byte -> their number."""
    word = ((word * _U(2561)) >> _U(8)) & _U(0x00FF00FF00FF00FF)
    word = ((word * _U(6553601)) >> _U(16)) & _U(0x0000FFFF0000FFFF)
    return (word * _U(42949672960001)) >> _U(32)


def find_gaps(timestamp: np.ndarray, step_ms: int) -> list[Gap]:
    """Every place where one or more candles are missing."""
    if len(timestamp) < 2:
        return []
    steps = np.diff(timestamp)
    where = np.flatnonzero(steps > step_ms)
    return [Gap(int(timestamp[i]), max(1, int(round(steps[i] / step_ms)) - 1)) for i in where]


def resample(columns: dict[str, np.ndarray], step_ms: int) -> dict[str, np.ndarray]:
    """Aggregate finer candles into ``step_ms`` buckets; a gap stays a gap (nothing is filled in)."""
    ts = columns["timestamp"]
    bucket = ts - ts % step_ms
    starts = np.concatenate(([0], np.flatnonzero(np.diff(bucket)) + 1))
    ends = np.concatenate((starts[1:], [len(ts)])) - 1
    return {
        "timestamp": bucket[starts],
        "open": columns["open"][starts],
        "high": np.maximum.reduceat(columns["high"], starts),
        "low": np.minimum.reduceat(columns["low"], starts),
        "close": columns["close"][ends],
        "volume": np.add.reduceat(columns["volume"], starts),
    }


def read_markets(data_dir: Path) -> dict[str, MarketRules]:
    """Precision and limits by symbol from ``<data_dir>/markets.json``; empty when there is none."""
    path = data_dir / MARKETS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc}); re-run `gobot data download` or delete it") from None
    if isinstance(data, dict) and isinstance(data.get("markets"), dict):
        data = data["markets"]
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected an object of symbol -> market")
    return {symbol: market_rules(market, str(path)) for symbol, market in data.items() if isinstance(market, dict)}


def market_rules(market: dict[str, Any], label: str = MARKETS_FILE) -> MarketRules:
    """``MarketRules`` from a ccxt-shaped market dict (missing keys are no rule)."""

    def number(*keys: str) -> float:
        value: Any = market
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        try:
            return float(value) if value is not None else 0.0
        except (TypeError, ValueError):
            raise DataError(f"{label}: {'.'.join(keys)} = {value!r} is not a number") from None

    return MarketRules(
        amount_step=number("precision", "amount"),
        price_step=number("precision", "price"),
        min_amount=number("limits", "amount", "min"),
        min_notional=number("limits", "cost", "min"),
        source="markets.json",
    )


def data_dir_or_bundled(configured: str, resolved: Path) -> Path:
    """``resolved``, unless it is the default folder and missing: then the bundled demo market (if shipped)."""
    if configured == DEFAULT_DATA_DIR and not resolved.exists():
        return bundled_data_dir() or resolved
    return resolved


def load_series(data_dir: Path, symbol: str, timeframe: str, *, start_ms: int | None = None, end_ms: int | None = None,
                markets: dict[str, MarketRules] | None = None, cache_dir: Path | None = None) -> Series:
    """``symbol``'s candles at ``timeframe`` from ``data_dir``: the exact file, or a finer one resampled."""
    timeframe_ms(timeframe)  # an unknown timeframe is a DataError naming the known ones
    tried = []
    for tf in sources_for(timeframe):
        path = data_dir / file_name(symbol, tf)
        tried.append(path.name)
        if path.exists():
            return series_from_file(path, symbol, timeframe, source_timeframe=tf, start_ms=start_ms, end_ms=end_ms,
                                    markets=markets if markets is not None else read_markets(data_dir),
                                    cache_dir=cache_dir)
    raise DataError(f"no candles for {symbol} in {data_dir} (looked for {', '.join(tried)}); "
                    "download them with `gobot data download`, or pass --data FILE")


def series_from_file(path: Path, symbol: str | None = None, timeframe: str | None = None, *,
                     source_timeframe: str | None = None, start_ms: int | None = None, end_ms: int | None = None,
                     markets: dict[str, MarketRules] | None = None, cache_dir: Path | None = None) -> Series:
    """A ``Series`` from one CSV file; symbol and timeframe default to what its name says."""
    named = parse_file_name(path)
    symbol = symbol or (named[0] if named else None)
    source_timeframe = source_timeframe or (named[1] if named else None) or timeframe
    if symbol is None or source_timeframe is None:
        raise DataError(f"{path}: cannot tell the symbol and timeframe from the name; call it like BTC_USDT-1m.csv "
                        "(or pass --symbol and --timeframe)")
    timeframe = timeframe or source_timeframe
    columns = read_csv(path, cache_dir)
    step = timeframe_ms(timeframe)
    if timeframe != source_timeframe:
        timeframe_ms(source_timeframe)
        if not can_resample(source_timeframe, timeframe):
            raise DataError(f"{path}: {source_timeframe} candles cannot make {timeframe} candles")
        columns = resample(columns, step)
    ts = columns["timestamp"]
    lo = 0 if start_ms is None else int(np.searchsorted(ts, start_ms, "left"))
    hi = len(ts) if end_ms is None else int(np.searchsorted(ts, end_ms, "left"))
    columns = {name: values[lo:hi] for name, values in columns.items()}
    if markets is None:
        markets = read_markets(path.parent)
    return Series(symbol=symbol, timeframe=timeframe, market=markets.get(symbol, MarketRules()), source=str(path),
                  gaps=find_gaps(columns["timestamp"], step), **columns)


def series_from_candles(symbol: str, candles: Any, market: MarketRules | None = None) -> Series:
    """A ``Series`` from a ``Candles`` model (lists or arrays), e.g. a snapshot's candles."""
    step = timeframe_ms(candles.timeframe)
    ts = np.asarray(candles.timestamp, dtype=np.int64)
    return Series(symbol=symbol, timeframe=candles.timeframe, timestamp=ts,
                  **{name: np.asarray(getattr(candles, name), dtype=np.float64) for name in COLUMNS[1:]},
                  market=market or MarketRules(), source="candles", gaps=find_gaps(ts, step))


def parse_time(text: str | None, label: str) -> int | None:
    """``2025-01-31``, ``2025-01-31T12:00`` (UTC unless an offset is given) or epoch ms -> epoch ms."""
    if text is None or text == "":
        return None
    if re.fullmatch(r"\d{11,}", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DataError(f"{label} '{text}' is not a date; use 2025-01-31 or 2025-01-31T12:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)
