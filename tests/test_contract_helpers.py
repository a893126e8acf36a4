"""The shared concepts written once in the contract (issue 18): the timeframe table and the replay
files (``gobot_hookspecs.candles``), the masking rule (``redact``), the indicators, ``PluginConfig``
and the atomic write (``files``) — and the core and the plugins agreeing because they use them."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gobot.host.hook_caller import HookCaller
from gobot.host.plugin_manager import build_plugin_set, entry_points
from gobot.research.market_data import DataError, _plain_decimals, load_series, read_csv, timeframe_ms
from gobot.research.synthetic import generate, write_csv
from gobot.secrets import redact
from gobot_hookspecs import PluginConfig, candles, indicators
from gobot_hookspecs.files import write_private
from gobot_hookspecs.redact import MASK, Redactor, mask_credentials
from gobot_plugins.archiver.records import Redactor as ArchiveRedactor
from gobot_plugins.binance.client import redact as binance_redact
from gobot_plugins.replay.data import find_candles

SYMBOL = "BTC/USDT"
SECRET = "SECRET-binance-key-1234567890"


# -- timeframes and replay files ----------------------------------------------------------------


@pytest.fixture(scope="module")
def minute_data(tmp_path_factory) -> Path:
    """Three days of 1m candles with a hole of 90 minutes in the middle."""
    folder = tmp_path_factory.mktemp("minutes")
    rows = generate(SYMBOL, 60000.0, 3 * 1440, timeframe_seconds=60, seed=3)
    del rows[2000:2090]
    write_csv(folder / candles.csv_file_name(SYMBOL, "1m"), rows)
    return folder


def test_the_table_has_every_binance_interval_as_ccxt_names_them():
    assert list(candles.TIMEFRAMES) == ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                                        "1d", "3d", "1w", "1M"]
    assert candles.timeframe_ms("2h") == 7_200_000 and candles.timeframe_seconds("1w") == 604_800


def test_an_unknown_timeframe_names_the_known_ones_in_the_contract_and_the_backtester():
    with pytest.raises(ValueError, match="unknown timeframe '7m'; use one of 1m, 3m"):
        candles.timeframe_seconds("7m")
    with pytest.raises(DataError, match="unknown timeframe '7m'"):
        timeframe_ms("7m")


@pytest.mark.parametrize("symbol", ["BTC/USDT", "BTC/USDT:USDT"])
@pytest.mark.parametrize("timeframe", list(candles.TIMEFRAMES))
def test_a_file_name_says_its_symbol_and_timeframe(symbol, timeframe):
    assert candles.parse_csv_file_name(candles.csv_file_name(symbol, timeframe)) == (symbol, timeframe)


def test_only_epoch_aligned_timeframes_are_made_from_finer_files():
    assert candles.sources_for("2h") == ["2h", "1h", "30m", "15m", "5m", "3m", "1m"]
    assert candles.sources_for("1w") == ["1w"]  # weeks open on Monday: never bucketed from days
    assert not candles.can_resample("1d", "3d") and not candles.can_resample("5m", "3m")


@pytest.mark.parametrize("timeframe", ["3m", "2h", "15m", "1d"])
def test_replay_and_the_backtester_see_the_same_candles(minute_data, timeframe):
    replayed = find_candles(minute_data, SYMBOL, timeframe)
    backtested = load_series(minute_data, SYMBOL, timeframe)
    assert replayed.timeframe == backtested.timeframe == timeframe
    assert replayed.timestamp == backtested.timestamp.tolist()
    for column in ("open", "high", "low", "close"):
        assert getattr(replayed, column) == getattr(backtested, column).tolist(), column
    assert replayed.volume == pytest.approx(backtested.volume.tolist(), rel=1e-12)


def test_the_numpy_reader_reads_what_the_contracts_reader_reads(minute_data):
    path = minute_data / candles.csv_file_name(SYMBOL, "1m")
    plain = candles.read_csv(path, "1m")
    fast = read_csv(path)
    for column in candles.COLUMNS:
        assert getattr(plain, column) == fast[column].tolist(), column


#: Numbers as candle files write them (fixed decimals, shortest repr, integers, leading zeros, a bare dot
#: on either side), up to 16 characters: read as plain decimals.
PLAIN_NUMBER = st.one_of(
    st.tuples(st.floats(0, 1e7), st.integers(0, 8)).map(lambda x: f"{x[0]:.{x[1]}f}"[:16].rstrip(".") or "0"),
    st.floats(1e-4, 1e12).map(repr).filter(lambda text: len(text) <= 16 and "e" not in text),
    st.integers(0, 2**53).map(str),
    st.integers(0, 999).map(lambda n: f"00{n}"),
    st.integers(0, 999999).map(lambda n: f".{n}"),
    st.integers(0, 999999).map(lambda n: f"{n}."),
)
#: ... and what only numpy's reader takes: 17 digits, an exponent, a sign.
ANY_NUMBER = st.one_of(PLAIN_NUMBER, st.floats(1e-4, 1e15).map(repr),
                       st.sampled_from(["1e-07", "-2.5", "+3", "12345678901234567", "0.12345678901234567"]))


def _candle_file(folder: Path, rows: list[list[str]]) -> Path:
    path = folder / "BTC_USDT-1m.csv"
    lines = [f"{1_700_000_000_000 + 60_000 * i}," + ",".join(row) for i, row in enumerate(rows)]
    path.write_text(candles.CSV_HEADER + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(PLAIN_NUMBER, min_size=5, max_size=5), min_size=1, max_size=40), st.booleans())
def test_the_numpy_reader_reads_plain_decimals_as_the_contracts_reader(tmp_path, rows, anything):
    if anything:  # one number only numpy's float parser reads: the whole file is its
        rows[-1][-1] = "1e-07"
    path = _candle_file(tmp_path, rows)
    raw = path.read_bytes()
    assert (_plain_decimals(raw, raw.index(b"\n") + 1) is None) == anything
    plain, fast = candles.read_csv(path, "1m"), read_csv(path)
    for column in candles.COLUMNS:
        assert getattr(plain, column) == fast[column].tolist(), column


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(ANY_NUMBER, min_size=5, max_size=5), min_size=1, max_size=10))
def test_the_numpy_reader_reads_any_decimals_as_the_contracts_reader(tmp_path, rows):
    path = _candle_file(tmp_path, rows)
    plain, fast = candles.read_csv(path, "1m"), read_csv(path)
    for column in candles.COLUMNS:
        assert getattr(plain, column) == fast[column].tolist(), column


@pytest.mark.parametrize("anything", [False, True])
def test_a_big_file_is_memory_mapped_and_read_the_same(tmp_path, monkeypatch, anything):
    """Files of MAP_BYTES and more are mapped, not read: the same columns, on both readers' paths."""
    import mmap

    from gobot.research import market_data

    rows = [[f"{100 + (i % 97) * 0.01:.2f}", "101.5", "99.25", f"{100.5 + (i % 13):.1f}", str(i)] for i in range(3000)]
    if anything:
        rows[-1][-1] = "1e-07"  # numpy's reader, from the mapped bytes
    path = _candle_file(tmp_path, rows)
    monkeypatch.setattr(market_data, "MAP_BYTES", 1024)
    assert isinstance(market_data._read(path), mmap.mmap)
    plain, fast = candles.read_csv(path, "1m"), read_csv(path)
    for column in candles.COLUMNS:
        assert getattr(plain, column) == fast[column].tolist(), column


def test_plain_decimals_are_read_without_numpys_float_parser(minute_data):
    raw = (minute_data / candles.csv_file_name(SYMBOL, "1m")).read_bytes()
    assert _plain_decimals(raw, raw.index(b"\n") + 1) is not None
    assert _plain_decimals(raw.replace(b"\n", b"\r\n"), raw.index(b"\n") + 2) is None  # CRLF: loadtxt's


def test_plain_decimals_in_many_blocks_over_two_threads_read_as_in_one(minute_data, monkeypatch):
    from gobot.research import market_data

    raw = (minute_data / candles.csv_file_name(SYMBOL, "1m")).read_bytes()
    body = raw.index(b"\n") + 1
    whole = _plain_decimals(raw, body)
    monkeypatch.setattr(market_data, "_BLOCK_BYTES", 500)  # dozens of blocks, every other one in the helper thread
    assert np.array_equal(_plain_decimals(raw, body), whole)
    last = raw.rindex(b".")  # a field of the last block, which either thread may read, is no plain decimal
    assert _plain_decimals(raw[:last] + b"e" + raw[last + 1:], body) is None


def test_a_bad_header_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "BTC_USDT-1m.csv"
    path.write_text("time,o,h,l,c,v\n1,2,3,4,5,6\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}: expected the header {candles.CSV_HEADER}"):
        candles.read_csv(path, "1m")


# -- the masking rule ---------------------------------------------------------------------------


def test_a_secret_is_masked_as_a_whole_value_only():
    mask = Redactor([SECRET])
    assert mask(f"key {SECRET} used") == f"key {MASK} used"
    assert mask(f"id x{SECRET}") == f"id x{SECRET}"  # a piece of a longer word is data
    assert mask(f"{SECRET}9") == f"{SECRET}9"


def test_values_that_could_equal_data_are_never_masked():
    mask = Redactor(["2026", "2026-01-01T00:00", "1e-05123456789", "true"])
    assert mask.values == []
    row = {"time": "2026-01-01T00:00:00+00:00", "approved": "true", "n": 2026}
    assert mask.data(row) == row


def test_a_document_keeps_its_keys_numbers_and_structure():
    mask = Redactor([SECRET])
    document = {"a": [SECRET, f"x {SECRET} y", 1, None, True], SECRET: "k"}
    assert mask.data(document) == {"a": [MASK, f"x {MASK} y", 1, None, True], SECRET: "k"}


def test_credentials_in_known_places_are_masked_without_knowing_them():
    text = ("GET https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=9f86d081884c7d65 "
            "{'X-MBX-APIKEY': 'abcDEF123'} postgresql://bot:hunter2@db/gobot")
    assert mask_credentials(text) == (
        "GET https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=*** "
        "{'X-MBX-APIKEY': '***'} postgresql://bot:***@db/gobot")
    assert mask_credentials("no credentials: 2026-01-01, https://example.org/a") == (
        "no credentials: 2026-01-01, https://example.org/a")


def test_the_core_the_archiver_and_the_exchange_plugin_follow_the_one_rule(monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", SECRET)
    text = f"failed with {SECRET} at https://x/?signature=abc123 for postgresql://u:pw@h/db (x{SECRET})"
    expected = Redactor([SECRET])(text)
    assert redact(text) == expected
    assert ArchiveRedactor({"BINANCE_API_KEY": SECRET})(text) == expected
    assert binance_redact(text) == mask_credentials(text)  # the plugin knows no secret values: places only


def test_the_core_masks_a_json_document_value_by_value(monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", SECRET)
    text = json.dumps({"price": 2026.5, "note": f"key {SECRET}"}, indent=1)
    assert json.loads(redact(text)) == {"price": 2026.5, "note": f"key {MASK}"}
    assert redact(text).splitlines()[1].startswith(' "price"')  # the layout is kept


# -- indicators ---------------------------------------------------------------------------------


def random_prices(seed: int, n: int = 300) -> list[float]:
    rng = random.Random(seed)
    prices = [100.0]
    for _ in range(n - 1):
        prices.append(prices[-1] * (1 + rng.gauss(0, 0.01)))
    return prices


def reference_sma(values: np.ndarray, period: int) -> list[float | None]:
    return [None if i < period - 1 else float(np.mean(values[i - period + 1 : i + 1])) for i in range(len(values))]


def reference_ema(values: np.ndarray, period: int) -> list[float | None]:
    alpha, out, current = 2 / (period + 1), [None] * len(values), None
    for i in range(period - 1, len(values)):
        current = float(np.mean(values[:period])) if current is None else alpha * values[i] + (1 - alpha) * current
        out[i] = current
    return out


def reference_wilder_rsi(values: np.ndarray, period: int) -> list[float | None]:
    change = np.diff(values)
    gain, loss = np.clip(change, 0, None), np.clip(-change, 0, None)
    out: list[float | None] = [None] * len(values)
    avg_gain, avg_loss = gain[:period].mean(), loss[:period].mean()
    for i in range(period, len(values)):
        if i > period:
            avg_gain = (avg_gain * (period - 1) + gain[i - 1]) / period
            avg_loss = (avg_loss * (period - 1) + loss[i - 1]) / period
        out[i] = (100.0 if avg_gain > 0 else 50.0) if avg_loss == 0 else 100 - 100 / (1 + avg_gain / avg_loss)
    return out


def reference_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> list[float | None]:
    true_range = np.maximum.reduce([high[1:] - low[1:], abs(high[1:] - close[:-1]), abs(low[1:] - close[:-1])])
    return [None if i < period else float(true_range[i - period : i].mean()) for i in range(len(close))]


def same(values, reference) -> bool:
    return [v is None for v in values] == [r is None for r in reference] and [
        v for v in values if v is not None] == pytest.approx([r for r in reference if r is not None], rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("period", [1, 2, 9, 14, 50])
def test_the_indicators_equal_a_straightforward_reference_on_random_prices(seed, period):
    close = np.array(random_prices(seed))
    rng = np.random.default_rng(seed)
    high = close * (1 + rng.uniform(0, 0.01, len(close)))
    low = close * (1 - rng.uniform(0, 0.01, len(close)))
    assert same(indicators.sma(close, period), reference_sma(close, period))
    assert same(indicators.ema(close, period), reference_ema(close, period))
    assert same(indicators.rsi(close, period), reference_wilder_rsi(close, period))
    assert same(indicators.atr(high, low, close, period), reference_atr(high, low, close, period))
    window = close[-period - 1 :]
    gains, losses = np.clip(np.diff(window), 0, None).sum(), np.clip(-np.diff(window), 0, None).sum()
    assert indicators.cutler_rsi(close, period) == pytest.approx(100 * gains / (gains + losses), rel=1e-9)
    assert indicators.mean_of_last(close, period) == pytest.approx(float(close[-period:].mean()), rel=1e-12)


def test_lists_and_numpy_arrays_give_the_same_numbers():
    prices = random_prices(7)
    assert indicators.sma(prices, 20) == indicators.sma(np.array(prices), 20)
    assert indicators.rsi(prices, 14) == indicators.rsi(np.array(prices), 14)
    assert indicators.mean_of_last(prices, 26, 100) == indicators.mean_of_last(np.array(prices), 26, 100)


def test_a_flat_market_has_an_rsi_of_50_and_too_few_values_give_none():
    assert indicators.rsi([5.0] * 20, 14)[-1] == 50.0 and indicators.cutler_rsi([5.0] * 20, 14) == 50.0
    assert indicators.ema([1.0, 2.0], 3) == [None, None] and indicators.atr([1.0], [1.0], [1.0], 14) == [None]


# -- plugin configs -----------------------------------------------------------------------------


class SpreadConfig(PluginConfig):
    max_spread_pct: float = 0.1


class View:
    def __init__(self, sections: dict):
        self.sections = sections

    def plugin_config(self, name: str):
        return self.sections.get(name)


def test_a_plugin_config_refuses_unknown_keys():
    with pytest.raises(ValidationError, match="max_sprad_pct"):
        SpreadConfig(max_sprad_pct=1.0)


def test_of_reads_the_validated_section_or_the_defaults():
    section = SpreadConfig(max_spread_pct=0.5)
    assert SpreadConfig.of(View({"spread": section}), "spread") is section
    assert SpreadConfig.of(View({}), "spread") == SpreadConfig()


def test_every_built_in_plugin_config_is_a_plugin_config():
    builtins = [ep.name for ep in entry_points() if ep.dist is not None and ep.dist.metadata["Name"] == "gobot-trading"]
    models = dict(HookCaller(build_plugin_set(enable=builtins).pm).collect_sync("gobot_config_model"))
    assert models, "no built-in plugin declares a config model"
    assert [name for name, model in models.items() if not issubclass(model, PluginConfig)] == []


# -- the atomic write and the contract's weight ---------------------------------------------------


def test_a_write_cut_before_its_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    write_private(path, "old")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt  # the new content is written, not yet durable nor renamed

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", interrupted)
        with pytest.raises(KeyboardInterrupt):
            write_private(path, "new content")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]
    write_private(path, "new")
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o600


def test_the_contracts_helpers_import_without_numpy():
    probe = ("import sys, gobot_hookspecs, gobot_hookspecs.candles, gobot_hookspecs.indicators, "
             "gobot_hookspecs.redact, gobot_hookspecs.files; print('numpy' in sys.modules)")
    result = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"
