"""Contract 1.4: ``gobot_scan_sentiment`` readings reach the snapshots (``snapshot.sentiment``), a
reading past its ``valid_until`` is marked stale, and recorded readings replay without lookahead."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gobot_hookspecs import Action, Candles, MarketSnapshot, Sentiment, Signal, hookimpl
from gobot_hookspecs.sentiment import Recorded, append_reading, attach, read_recorded, recorded_path

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _snap(symbol: str) -> MarketSnapshot:
    return MarketSnapshot(symbol=symbol, time=T0, price=1.0, candles=Candles(timeframe="1m"))


def test_attach_prefers_a_symbols_own_reading_and_marks_stale_ones():
    btc, eth = _snap("BTC/USDT"), _snap("ETH/USDT")
    market = Sentiment(source="fg", time=T0 - timedelta(days=2), valid_until=T0 - timedelta(days=1), score=0.5)
    own = Sentiment(source="fg", symbol="BTC/USDT", time=T0, score=-0.2, inputs={"a": -0.2})
    lines = attach([btc, eth], [market, own], T0)
    assert btc.sentiment["fg"].score == -0.2  # the symbol's own beats the market-wide one
    assert eth.sentiment["fg"].score == 0.5 and eth.sentiment["fg"].stale
    assert "not refreshed since" in eth.sentiment["fg"].note
    assert any("STALE" in line for line in lines) and any("a -0.20" in line for line in lines)


def test_recorded_readings_round_trip_and_never_look_ahead(tmp_path):
    path = recorded_path(tmp_path, "fear_greed")
    for day, value in enumerate((20, 50, 90)):
        append_reading(path, Sentiment(
            source="fear_greed", time=T0 + timedelta(days=day), valid_until=T0 + timedelta(days=day + 1),
            score=(value - 50) / 50, fields={"value": float(value), "classification": "x"},
            inputs={"value": (value - 50) / 50}))
    recorded = read_recorded(path)
    assert isinstance(recorded, Recorded) and len(recorded) == 3
    assert recorded.as_of(T0 - timedelta(seconds=1), ["BTC/USDT"]) == []
    (reading,) = recorded.as_of(T0 + timedelta(days=1, hours=23), ["BTC/USDT"])
    assert reading.fields == {"value": 50.0, "classification": "x"} and reading.score == 0.0
    assert reading.valid_until == T0 + timedelta(days=2) and reading.inputs == {"value": 0.0}


def test_a_bad_recorded_cell_names_the_file_and_row(tmp_path):
    path = tmp_path / "fg.csv"
    path.write_text("timestamp_ms,valid_until_ms,symbol,score\n1,,,0.1\n2,,,high\n")
    with pytest.raises(ValueError, match=r"fg.csv, row 3: score 'high' is not a number"):
        read_recorded(path)


class _Sentiment:
    @hookimpl
    def gobot_scan_sentiment(self, ctx, snapshots):
        return [Sentiment(source="", time=ctx.now(), score=0.9, fields={"value": 95.0})]


class _Reader:
    seen: list[dict] = []

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots, learnings):
        self.seen.append({s.symbol: s.sentiment for s in snapshots})
        return [Signal(symbol=s.symbol, action=Action.HOLD, confidence=0.5) for s in snapshots]


def test_a_cycle_attaches_every_plugins_readings(replay_bot):
    import asyncio

    reader = _Reader()
    bot = replay_bot(plugins=[("crowd", _Sentiment()), ("reader", reader)])

    async def one():
        await bot.startup()
        try:
            return await bot.run_cycle()
        finally:
            await bot.shutdown("test")

    report = asyncio.run(one())
    (seen,) = reader.seen
    assert set(seen) == {"BTC/USDT", "ETH/USDT"}
    assert all(s["crowd"].score == 0.9 and s["crowd"].source == "crowd" for s in seen.values())
    assert any(line.startswith("sentiment crowd (market): score +0.90") for line in report.phase("scan").records)
