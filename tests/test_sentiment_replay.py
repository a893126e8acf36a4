"""Recorded sentiment, offline: the replay plugin answers ``gobot_scan_sentiment`` from
``<data_dir>/sentiment/*.csv`` as of each cycle's time (never a later reading), a bad file stops the
start naming the file and row, and ``gobot backtest --risk plugins`` puts the same readings on the
snapshots of each entry decision, so a recorded day of extreme greed or fear changes the trades, and a
paper run and a backtest judge every decision on the same reading: the newest at or before its time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot_hookspecs import Action, Sentiment, Signal, hookimpl
from gobot_hookspecs.sentiment import append_reading, read_recorded, recorded_path
from sentiment_support import DAY0, audit, config_file, data_folder, fear_greed

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def no_config_around(tmp_path, monkeypatch):
    for name in ("GOBOT_CONFIG", "BINANCE_API_KEY", "BINANCE_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


class Reader:
    """An ideas plugin that notes what each cycle's snapshots carry, and holds."""

    def __init__(self):
        self.seen: list[tuple] = []
        self.scan_records: list[str] = []

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots, learnings):
        self.seen.append((ctx.now(), {s.symbol: dict(s.sentiment) for s in snapshots}))
        return [Signal(symbol=s.symbol, action=Action.HOLD, confidence=0.5) for s in snapshots]

    @hookimpl
    def gobot_on_cycle_end(self, ctx, report):
        self.scan_records.extend(report.phase("scan").records)


def run(replay_bot, run_bot, data, cycles: int, **config):
    reader = Reader()
    bot = replay_bot(config={"orchestrator": {"loop_interval": 300},  # a cycle per 5m candle
                             "plugins": {"replay": {"data_dir": str(data), **config}}},
                     plugins=[("reader", reader)], disable=["sma_rsi"])
    run_bot(bot, cycles)
    return reader, bot


def test_each_cycle_sees_the_newest_reading_at_or_before_its_time(replay_bot, run_bot, tmp_path, synthetic_data_dir):
    switch = DAY0 + 17 * HOUR  # the replay starts at 16:40 (200 warm-up candles of 5m)
    data = data_folder(tmp_path / "data", synthetic_data_dir, [fear_greed(DAY0, 20), fear_greed(switch, 80)])
    reader, _ = run(replay_bot, run_bot, data, 8)  # 16:40 ... 17:15
    seen = reader.seen
    values = [(now, {symbol: s["fear_greed"].fields["value"] for symbol, s in by.items()}) for now, by in seen]
    assert [now for now, _ in values][0] == DAY0 + 16 * HOUR + 40 * timedelta(minutes=1)
    for now, by_symbol in values:
        assert by_symbol == dict.fromkeys(("BTC/USDT", "ETH/USDT"), 80.0 if now >= switch else 20.0)
    reading = seen[-1][1]["BTC/USDT"]["fear_greed"]
    assert reading.source == "fear_greed" and reading.symbol is None and not reading.stale
    assert reading.score == pytest.approx(0.6) and reading.inputs == {"value": pytest.approx(0.6)}
    assert reader.scan_records.count("sentiment fear_greed (market): score -0.60 = value -0.60") == 4
    assert reader.scan_records.count("sentiment fear_greed (market): score +0.60 = value +0.60") == 4


def test_before_the_first_reading_there_is_none_and_an_old_one_turns_stale(replay_bot, run_bot, tmp_path,
                                                                           synthetic_data_dir):
    later = fear_greed(DAY0 + 16 * HOUR + 50 * timedelta(minutes=1), 60, valid_for=5 * timedelta(minutes=1))
    data = data_folder(tmp_path / "data", synthetic_data_dir, [later])
    seen = run(replay_bot, run_bot, data, 5)[0].seen  # 16:40, 16:45, 16:50, 16:55, 17:00
    kinds = [("stale" if s["BTC/USDT"]["fear_greed"].stale else "fresh") if s["BTC/USDT"] else None
             for _, s in seen]
    assert kinds == [None, None, "fresh", "fresh", "stale"]
    assert "not refreshed since 2026-01-01 16:50 UTC (due by 2026-01-01 16:55)" in seen[-1][1]["ETH/USDT"][
        "fear_greed"].note


def test_a_symbols_own_readings_reach_only_its_snapshot(replay_bot, run_bot, tmp_path, synthetic_data_dir):
    data = data_folder(tmp_path / "data", synthetic_data_dir)
    append_reading(recorded_path(data, "market_sentiment"), Sentiment(
        source="market_sentiment", symbol="ETH/USDT", time=DAY0, score=-0.3,
        fields={"funding_rate": -0.0001, "long_short_ratio": 0.8}, inputs={"funding_rate": -0.1,
                                                                          "long_short_ratio": -0.2}))
    seen = run(replay_bot, run_bot, data, 1)[0].seen
    (_, by_symbol), = seen
    assert by_symbol["BTC/USDT"] == {}
    eth = by_symbol["ETH/USDT"]["market_sentiment"]
    assert eth.symbol == "ETH/USDT" and eth.fields == {"funding_rate": -0.0001, "long_short_ratio": 0.8}


def test_without_a_sentiment_folder_the_snapshots_carry_none(replay_bot, run_bot, tmp_path, synthetic_data_dir):
    reader, bot = run(replay_bot, run_bot, synthetic_data_dir, 2)
    assert all(by == {"BTC/USDT": {}, "ETH/USDT": {}} for _, by in reader.seen)
    assert not any(line.startswith("sentiment") for line in reader.scan_records)
    assert bot.plugin_set.pm.get_plugin("replay").sentiment == []


def test_a_bad_recorded_file_stops_the_start_naming_file_and_row(tmp_path, synthetic_data_dir):
    data = data_folder(tmp_path / "data", synthetic_data_dir, [fear_greed(DAY0, 20)])
    path = recorded_path(data, "fear_greed")
    path.write_text(path.read_text() + "1735776000000,,,very greedy,80,Greed,0.6\n")
    result = CliRunner().invoke(cli, ["start", "--config", str(config_file(tmp_path, data, check=False)),
                                      "--max-iterations", "2", "--quiet"])
    assert result.exit_code != 0
    assert f"{path}, row 3: score 'very greedy' is not a number" in result.output + str(result.exception)
    assert "Traceback" not in result.output


# -- the backtester ---------------------------------------------------------------------------------


def backtest(tmp_path, data, *, check: bool) -> list[dict]:
    config = config_file(tmp_path, data, check=check)
    result = CliRunner().invoke(cli, ["backtest", "--config", str(config), "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["trades"]


def opened(trades: list[dict], direction: str, day: int) -> int:
    start = DAY0 + day * DAY
    return sum(1 for t in trades if t["direction"] == direction
               and start.isoformat() <= t["opened_at"] < (start + DAY).isoformat())


def test_recorded_sentiment_changes_a_backtests_trades_from_the_hour_it_was_recorded(tmp_path, synthetic_data_dir):
    data = data_folder(tmp_path / "data", synthetic_data_dir,
                       [fear_greed(DAY0, 90), fear_greed(DAY0 + DAY, 10), fear_greed(DAY0 + 2 * DAY, 50)])
    free, checked = backtest(tmp_path, data, check=False), backtest(tmp_path, data, check=True)
    assert opened(free, "LONG", 0) and opened(free, "SHORT", 1)  # what the check takes away
    assert opened(checked, "LONG", 0) == 0 and opened(checked, "SHORT", 0)  # extreme greed: shorts only
    assert opened(checked, "SHORT", 1) == 0 and opened(checked, "LONG", 1)  # extreme fear, from midnight
    assert opened(checked, "LONG", 2) and opened(checked, "SHORT", 2)  # neutral: both ways
    assert checked != free


def test_a_backtest_without_recorded_sentiment_fails_closed_with_the_reason(tmp_path, synthetic_data_dir):
    data = data_folder(tmp_path / "data", synthetic_data_dir)
    config = config_file(tmp_path, data, check=True)
    result = CliRunner().invoke(cli, ["backtest", "--config", str(config), "--data", str(data), "--json"])
    document = json.loads(result.output)
    assert document["trades"] == []
    assert any(reason.startswith("sentiment_extremes: no fear_greed reading for") for reason in document["vetoes"])


def test_a_bad_recorded_file_stops_the_backtest_naming_file_and_row(tmp_path, synthetic_data_dir):
    data = data_folder(tmp_path / "data", synthetic_data_dir)
    path = recorded_path(data, "fear_greed")
    path.parent.mkdir()
    path.write_text("timestamp_ms,valid_until_ms,symbol,score\n1735689600000,,,0.2\n,,,0.1\n")
    done = CliRunner().invoke(cli, ["backtest", "--config", str(config_file(tmp_path, data, check=True)),
                                    "--data", str(data)])
    assert done.exit_code != 0
    assert f"{path}, row 3: timestamp_ms is empty" in done.output + str(done.exception)


def paper_verdicts(state_dir) -> dict[tuple[str, datetime], str]:
    """(symbol, cycle time) -> the sentiment_extremes verdict's reason, from a paper run's audit log."""
    return {(event["intent"]["symbol"], datetime.fromisoformat(event["sim_time"])): verdict["reason"]
            for event in audit(state_dir) if event["event"] == "risk_verdicts"
            for verdict in event["verdicts"] if verdict["plugin"] == "sentiment_extremes"}


def backtest_verdicts(config) -> dict[tuple[str, datetime], str]:
    """(symbol, decision time) -> the sentiment_extremes verdict's reason, from a backtest's entry decisions."""
    from gobot.cli.common import load
    from gobot.research.backtest.engine import run as run_backtest
    from gobot.research.backtest.setup import BacktestSetup

    setup = BacktestSetup.build(*load(str(config), explain=False))
    strategy, execution = setup.strategy("sma_rsi"), setup.execution()
    gate = setup.gate(execution, strategy).keep_decisions()
    run_backtest(strategy, setup.params(strategy), setup.series(), execution, gate=gate)
    return {(verdict.symbol, decision.intent.created_at): verdict.reason
            for decision in gate.decisions.values() for verdict in decision.verdicts
            if verdict.plugin == "sentiment_extremes"}


def test_paper_and_backtest_judge_each_decision_on_the_reading_as_of_its_time(tmp_path, synthetic_data_dir):
    hourly = [fear_greed(DAY0 + h * HOUR, 5 + (h * 37) % 91, valid_for=2 * HOUR) for h in range(72)]
    data = data_folder(tmp_path / "data", synthetic_data_dir, hourly)
    recorded = read_recorded(recorded_path(data, "fear_greed"))
    config = config_file(tmp_path, data, check=True, extra=f'[backtest]\ndata_dir = "{data}"\n')
    paper = CliRunner().invoke(cli, ["start", "--config", str(config), "--max-iterations", "100", "--quiet"])
    assert paper.exit_code == 0, paper.output
    judged = {"paper": paper_verdicts(tmp_path / "state"), "backtest": backtest_verdicts(config)}
    assert len(judged["paper"]) > 10 and len(judged["backtest"]) > 100
    for where, reasons in judged.items():
        assert any(" above no_longs_above " in r for r in reasons.values()), where
        assert any(" below no_shorts_below " in r for r in reasons.values()), where
        for (symbol, when), reason in reasons.items():
            (reading,) = recorded.as_of(when, [symbol])  # the newest at or before the decision
            said = f"fear_greed score {reading.score:g} ({reading.fields['classification']})"
            assert reason.startswith(said), (where, symbol, when, reason)


class Peek:
    """Asks ``ctx.backtest`` over the scan's candles, as the validator does."""

    def __init__(self):
        self.result = None

    @hookimpl
    def gobot_validate_strategy(self, ctx, strategy):
        snap = ctx.snapshots[0]
        self.result = ctx.backtest(strategy.name, strategy.params, snap.candles, snap.symbol)


def test_the_validators_backtests_read_the_replays_recorded_sentiment(replay_bot, run_bot, tmp_path,
                                                                       synthetic_data_dir):
    results = {}
    for name, readings in (("greed", [fear_greed(DAY0, 90)]), ("fear", [fear_greed(DAY0, 10)]), ("none", [])):
        data = data_folder(tmp_path / name, synthetic_data_dir, readings)
        peek = Peek()
        run_bot(replay_bot(config={"plugins": {"enable": ["sentiment_extremes"], "replay": {"data_dir": str(data)}}},
                           plugins=[("peek", peek)], disable=["validator"], state_dir=tmp_path / name / "state"), 1)
        results[name] = {t.direction.value for t in peek.result.trades}
    assert results == {"greed": {"SHORT"}, "fear": {"LONG"}, "none": set()}  # none: fail closed
