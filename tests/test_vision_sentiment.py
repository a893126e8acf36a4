"""The vision prompt carries the snapshot's sentiment: what the loopback OpenAI server receives holds one
line per reading (score, inputs, fields, stale) when the replayed data has recorded sentiment, and
nothing when it has none; and an answer made without the sentiment is never served from the cache to
a request with it. Charts are two small PNGs made here (no browser needed)."""

from __future__ import annotations

import struct
import zlib
from datetime import datetime, timedelta

import pytest

from gobot.testing.loopback_openai import Reply
from gobot_hookspecs import ChartImage, hookimpl
from sentiment_support import DAY0, data_folder, fear_greed

ANSWER = {"action": "HOLD", "confidence": 0.5, "entry": None, "stop_loss": None, "take_profit": None,
          "timeframes": [{"timeframe": "5m", "action": "HOLD"}, {"timeframe": "15m", "action": "HOLD"}],
          "rationale": "no clear structure"}


@pytest.fixture(autouse=True)
def no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def png(width: int, height: int, grey: int) -> bytes:
    """A valid 8-bit greyscale PNG of one shade (the PNG spec: signature, IHDR, IDAT, IEND with CRCs)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + bytes([grey]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class SmallCharts:
    """A chart plugin answering 5m and 15m with the same small picture each cycle."""

    @hookimpl
    def gobot_render_chart(self, symbol, timeframe, limit):
        if timeframe not in ("5m", "15m"):
            return None
        return ChartImage(symbol=symbol, timeframe=timeframe, png=png(16, 8, 40 if timeframe == "5m" else 200),
                          width=16, height=8, candles=limit, end=datetime(2026, 1, 1, 16, 40), origin="render")


def run_vision(replay_bot, run_bot, loopback_openai, tmp_path, data, name: str):
    bot = replay_bot(config={"trading": {"symbols": ["BTC/USDT"]},
                             "plugins": {"enable": ["vision"], "disable": ["sma_rsi"],
                                         "replay": {"data_dir": str(data)},
                                         "vision": {"base_url": loopback_openai.base_url,
                                                    "cache_dir": str(tmp_path / "vision-cache")}}},
                     plugins=[("small_charts", SmallCharts())], state_dir=tmp_path / name)
    run_bot(bot, 1)
    return bot


def sentiment_texts(request) -> list[str]:
    return [text for text in request.texts if "sentiment" in text.lower()]


def test_the_prompt_carries_each_reading_with_its_fields(replay_bot, run_bot, loopback_openai, tmp_path,
                                                         synthetic_data_dir):
    loopback_openai.default = Reply.answer(ANSWER)
    data = data_folder(tmp_path / "data", synthetic_data_dir, [fear_greed(DAY0, 90)])
    run_vision(replay_bot, run_bot, loopback_openai, tmp_path, data, "state")
    [request] = loopback_openai.received
    [text] = sentiment_texts(request)
    assert text.splitlines()[1:] == [
        "- sentiment fear_greed (market): score +0.80 = value +0.80; value 90, classification Extreme Greed "
        "(measured 2026-01-01 00:00 UTC)"]


def test_a_stale_reading_is_said_stale_in_the_prompt(replay_bot, run_bot, loopback_openai, tmp_path,
                                                     synthetic_data_dir):
    loopback_openai.default = Reply.answer(ANSWER)
    data = data_folder(tmp_path / "data", synthetic_data_dir, [fear_greed(DAY0, 30, valid_for=timedelta(hours=2))])
    run_vision(replay_bot, run_bot, loopback_openai, tmp_path, data, "state")
    [text] = sentiment_texts(loopback_openai.received[0])
    assert "score -0.40 = value -0.40 — STALE: not refreshed since 2026-01-01 00:00 UTC (due by 2026-01-01 02:00)" \
        in text


def test_without_sentiment_the_prompt_has_none(replay_bot, run_bot, loopback_openai, tmp_path, synthetic_data_dir):
    loopback_openai.default = Reply.answer(ANSWER)
    run_vision(replay_bot, run_bot, loopback_openai, tmp_path, synthetic_data_dir, "state")
    [request] = loopback_openai.received
    assert sentiment_texts(request) == [] and any("Market: BTC/USDT" in text for text in request.texts)


def test_an_answer_made_without_sentiment_is_not_reused_with_it(replay_bot, run_bot, loopback_openai, tmp_path,
                                                                synthetic_data_dir):
    loopback_openai.default = Reply.answer(ANSWER)
    with_sentiment = data_folder(tmp_path / "data", synthetic_data_dir, [fear_greed(DAY0, 90)])
    run_vision(replay_bot, run_bot, loopback_openai, tmp_path, synthetic_data_dir, "first")  # asked, cached
    run_vision(replay_bot, run_bot, loopback_openai, tmp_path, synthetic_data_dir, "again")  # from the cache
    assert len(loopback_openai.received) == 1
    run_vision(replay_bot, run_bot, loopback_openai, tmp_path, with_sentiment, "greed")  # a new question
    assert len(loopback_openai.received) == 2 and sentiment_texts(loopback_openai.received[1])
    run_vision(replay_bot, run_bot, loopback_openai, tmp_path, with_sentiment, "greed-again")  # its own cache entry
    assert len(loopback_openai.received) == 2
