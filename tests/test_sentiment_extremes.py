"""``sentiment_extremes``: no new longs above a level, no new shorts below one, and — because the check
is enabled — a missing or stale reading is a veto with its reason (fail closed). Paper runs through
``gobot start`` on the synthetic market with a recorded ``sentiment/fear_greed.csv`` (replayed by
the replay plugin), the check's levels and config errors, and ``gobot risk status``."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from gobot.cli import cli
from gobot_hookspecs import Action, Candles, MarketSnapshot, OrderIntent, Side
from gobot_plugins.sentiment_extremes import SentimentExtremes, SentimentExtremesConfig, judge
from sentiment_support import DAY0, config_file, data_folder, fear_greed, verdicts

CYCLES = "40"


@pytest.fixture(autouse=True)
def no_config_around(tmp_path, monkeypatch):
    for name in ("GOBOT_CONFIG", "BINANCE_API_KEY", "BINANCE_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def start(config) -> str:
    result = CliRunner().invoke(cli, ["start", "--config", str(config), "--max-iterations", CYCLES, "--quiet"])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_paper_run_in_extreme_greed_opens_no_longs_and_says_why(tmp_path, synthetic_data_dir):
    data = data_folder(tmp_path / "data", synthetic_data_dir, [fear_greed(DAY0, 90)])
    output = start(config_file(tmp_path, data, check=True))
    seen = verdicts(tmp_path / "state")
    longs = [v for v in seen if v["side"] == "buy"]
    shorts = [v for v in seen if v["side"] == "sell"]
    assert longs and shorts
    assert all(not v["approved"] for v in longs)
    assert {v["reason"] for v in longs} == {
        f"fear_greed score 0.8 (Extreme Greed) above no_longs_above 0.5: no new longs on {v['symbol']}"
        for v in longs}
    assert all(v["approved"] and v["reason"].startswith("fear_greed score 0.8 (Extreme Greed) within") for v in shorts)
    assert "sentiment_extremes: fear_greed score 0.8 (Extreme Greed) above no_longs_above 0.5" in output
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["trades"] or state["positions"]  # the shorts trade
    assert all(t["direction"] == "SHORT" for t in state["trades"])

    status = json.loads(CliRunner().invoke(cli, ["risk", "status", "--config", "config.toml", "--json"]).output)
    (mine,) = [p for p in status["plugins"] if p["plugin"] == "sentiment_extremes"]
    counters = {c["name"]: c for c in mine["counters"]}
    assert counters["vetoes: longs above the level"]["value"] == len(longs)
    assert counters["last fear_greed score seen"]["limit"] == "no longs above 0.5, no shorts below -0.5"


def test_without_a_reading_every_new_position_is_vetoed_fail_closed(tmp_path, synthetic_data_dir):
    data = data_folder(tmp_path / "data", synthetic_data_dir)  # no sentiment folder: no fear_greed reading
    output = start(config_file(tmp_path, data, check=True))
    seen = verdicts(tmp_path / "state")
    assert seen and not any(v["approved"] for v in seen)
    assert {v["reason"] for v in seen} == {
        f"no fear_greed reading for {v['symbol']}: is the fear_greed plugin enabled? "
        "(replay and backtest read <data_dir>/sentiment/fear_greed.csv) "
        "(fail closed: sentiment_extremes needs it; disable sentiment_extremes to trade without it)" for v in seen}
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert not state["trades"] and not state["positions"]
    assert "sentiment_extremes: no fear_greed reading for" in output
    status = json.loads(CliRunner().invoke(cli, ["risk", "status", "--config", "config.toml", "--json"]).output)
    (mine,) = [p for p in status["plugins"] if p["plugin"] == "sentiment_extremes"]
    assert not mine["allows_trading"] and "is the fear_greed plugin enabled?" in mine["reason"]
    assert {c["name"]: c["value"] for c in mine["counters"]}["vetoes: no reading"] == len(seen)


def test_the_same_run_without_the_check_trades_both_ways(tmp_path, synthetic_data_dir):
    data = data_folder(tmp_path / "data", synthetic_data_dir, [fear_greed(DAY0, 90)])
    start(config_file(tmp_path, data, check=False))
    assert not verdicts(tmp_path / "state")
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    opened = {t["direction"] for t in state["trades"]} | {p["direction"] for p in state["positions"].values()}
    assert opened == {"LONG", "SHORT"}


def test_a_stale_reading_fails_closed_with_its_note(replay_bot, run_bot, tmp_path, synthetic_data_dir):
    data = data_folder(tmp_path / "data", synthetic_data_dir, [fear_greed(DAY0, 50, valid_for=timedelta(hours=1))])
    bot = replay_bot(config={"plugins": {"enable": ["sentiment_extremes"], "replay": {"data_dir": str(data)}}})
    run_bot(bot, 10)
    reasons = [v["reasons"] for v in bot.state.vetoes]
    assert reasons and all("sentiment_extremes: fear_greed reading is stale: not refreshed since 2026-01-01 00:00 UTC "
                           "(due by 2026-01-01 01:00) (fail closed" in r for r in reasons)
    assert not bot.state.trades and not bot.state.positions


def snapshot(symbol: str, *readings) -> MarketSnapshot:
    return MarketSnapshot(symbol=symbol, time=DAY0, price=1.0, candles=Candles(timeframe="5m"),
                          sentiment={r.source: r for r in readings})


def test_levels_in_a_fields_units():
    config = SentimentExtremesConfig(field="value", no_longs_above=75, no_shorts_below=25)
    fear = [snapshot("BTC/USDT", fear_greed(DAY0, 20))]
    assert judge(config, fear, "BTC/USDT", Action.LONG) == ("within", "fear_greed value 20 (Extreme Fear)")
    assert judge(config, fear, "BTC/USDT", Action.SHORT) == (
        "fear", "fear_greed value 20 (Extreme Fear) below no_shorts_below 25: no new shorts on BTC/USDT")
    assert judge(config, [snapshot("BTC/USDT", fear_greed(DAY0, 75))], "BTC/USDT", Action.LONG)[0] == "within"


def test_a_close_is_never_judged():
    close = OrderIntent(id="1-BTC/USDT-close", client_order_id="c1", symbol="BTC/USDT", side=Side.SELL,
                        purpose="close", notional_usd=10, reference_price=100, created_at=DAY0)
    assert SentimentExtremes().gobot_risk_check(ctx=None, intent=close) is None  # whatever the sentiment


def test_a_reading_without_the_field_fails_closed():
    reading = fear_greed(DAY0, 60).model_copy(update={"fields": {}, "missing": ["value"]})
    kind, reason = judge(SentimentExtremesConfig(field="value", no_longs_above=75, no_shorts_below=25),
                         [snapshot("ETH/USDT", reading)], "ETH/USDT", Action.SHORT)
    assert kind == "no_level" and reason.startswith("fear_greed reading for ETH/USDT has no value (missing value)")
    nan = fear_greed(DAY0, 60).model_copy(update={"fields": {"value": float("nan")}})
    assert judge(SentimentExtremesConfig(field="value", no_longs_above=75, no_shorts_below=25),
                 [snapshot("ETH/USDT", nan)], "ETH/USDT", Action.LONG)[0] == "no_level"


@pytest.mark.parametrize("keys, error", [
    ({"no_longs_above": -0.6}, "no_shorts_below (-0.5) must be below no_longs_above (-0.6)"),
    ({"no_longs_above": 75, "no_shorts_below": 25}, "no_longs_above = 75 is outside the score's range -1..1; "
                                                    'set field = "value"'),
    ({"treshold": 1}, "Extra inputs are not permitted"),
])
def test_bad_levels_are_refused_with_the_fix(keys, error):
    with pytest.raises(ValidationError, match=error.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        SentimentExtremesConfig(**keys)


def test_config_check_names_the_file_and_the_keys(tmp_path, synthetic_data_dir):
    config = config_file(tmp_path, synthetic_data_dir, check=True,
                         extra="[plugins.sentiment_extremes]\nno_longs_above = 0.2\nno_shorts_below = 0.4\n")
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(config)])
    assert result.exit_code != 0
    assert "sentiment_extremes" in result.stderr and "no_shorts_below (0.4) must be below no_longs_above (0.2)" in \
        result.stderr
