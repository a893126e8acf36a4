"""``replay``: a timeframe coarser than the configured one is resampled from the candles loaded at start when
that is the file ``find_candles`` would read (no second read of the CSV mid-run), else found as before."""

from __future__ import annotations

import shutil

from gobot_hookspecs.candles import bundled_data_dir
from plugins.replay import Replay
from plugins.replay import data as replay_data
from plugins.replay.data import find_candles


def _replay(folder) -> Replay:
    replay = Replay()
    replay.data_dir = folder
    replay.candles = {"BTC/USDT": find_candles(folder, "BTC/USDT", "5m")}
    return replay


def test_a_coarser_timeframe_is_the_resampled_file_without_reading_it_again(monkeypatch):
    replay = _replay(bundled_data_dir())
    expected = {tf: find_candles(bundled_data_dir(), "BTC/USDT", tf) for tf in ("15m", "1h", "4h")}
    monkeypatch.setattr(replay_data, "read_csv", lambda *a: (_ for _ in ()).throw(AssertionError("read again")))
    for timeframe, candles in expected.items():
        assert replay._find("BTC/USDT", timeframe) == candles


def test_a_file_of_the_asked_timeframe_itself_is_read(tmp_path):
    for name in ("BTC_USDT-5m.csv", "BTC_USDT-1h.csv"):
        shutil.copy(bundled_data_dir() / "BTC_USDT-5m.csv", tmp_path / name)  # "1h" rows: the file wins
    replay = _replay(tmp_path)
    assert replay._find("BTC/USDT", "1h") == find_candles(tmp_path, "BTC/USDT", "1h")
    assert replay._find("BTC/USDT", "1h").timestamp == replay.candles["BTC/USDT"].timestamp
