"""``fear_greed``: the Fear & Greed index from a loopback server in alternative.me's format, through the real
httpx client — the reading, its cache (one request per published value), stale values, every kind of
failure (a note, a backoff, never a crash), recording and the history download, and a bot's cycle."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot_hookspecs import Candles, MarketSnapshot
from gobot_hookspecs.sentiment import attach, read_recorded, recorded_path
from gobot_plugins.fear_greed.config import FearGreedConfig
from gobot_plugins.fear_greed.feed import Feed
from tests.servers.bots import WallClockMarket, run_cycles
from tests.servers.fear_greed import FearGreedServer

T0 = datetime(2026, 12, 6, 0, 0, tzinfo=timezone.utc)  # the newest value's time
NOW = T0 + timedelta(hours=5)  # when the bot asks: the next value is due at T0 + 24 h
DUE = timedelta(hours=19)  # time_until_update at NOW
MARGIN = timedelta(seconds=120)  # refresh_margin_seconds' default


@pytest.fixture
def server():
    with FearGreedServer() as running:
        running.publish(25, T0, "Extreme Fear", time_until_update=int(DUE.total_seconds()))
        yield running


def feed_for(server, **config) -> Feed:
    return Feed(FearGreedConfig(url=server.url, timeout_seconds=2, **config), config.pop("record_to", None))


def read(feed: Feed, at: datetime):
    return asyncio.run(feed.read(at))


def test_the_reading_is_the_index_on_the_contracts_scale_valid_until_the_next_value(server):
    reading = read(feed_for(server), NOW)
    assert reading.source == "fear_greed" and reading.symbol is None
    assert reading.time == T0 and reading.valid_until == NOW + DUE + MARGIN  # fresh until it is asked again
    assert reading.score == -0.5 and reading.inputs == {"value": -0.5}
    assert reading.fields == {"value": 25.0, "classification": "Extreme Fear"}
    assert not reading.stale and reading.note == ""
    (request,) = server.requests
    assert request.path == "/fng/" and request.query == {"limit": "1", "format": "json"}


def test_one_request_per_published_value_however_many_cycles_ask(server):
    feed = feed_for(server, refresh_margin_seconds=120)
    for minutes in range(0, 19 * 60, 15):  # a 15-minute loop until the next value is due
        assert read(feed, NOW + timedelta(minutes=minutes)).fields["value"] == 25.0
    assert server.count == 1
    server.publish(60, T0 + timedelta(days=1), "Greed", time_until_update=86_000)
    waiting = read(feed, NOW + DUE + timedelta(seconds=60))
    assert not waiting.stale and waiting.fields["value"] == 25.0, "due, margin not over: not asked, not stale yet"
    assert server.count == 1
    fresh = read(feed, NOW + DUE + timedelta(seconds=121))
    assert server.count == 2 and fresh.fields == {"value": 60.0, "classification": "Greed"} and not fresh.stale
    assert fresh.score == pytest.approx(0.2)


def test_a_value_past_its_valid_until_is_stale_and_the_core_marks_it_too(server):
    feed = feed_for(server)
    read(feed, NOW)
    later = NOW + DUE + MARGIN + timedelta(seconds=30)
    assert feed.as_of(later).stale and "next value was expected by" in feed.as_of(later).note
    snapshot = MarketSnapshot(symbol="BTC/USDT", time=later, price=1.0, candles=Candles(timeframe="5m"))
    attach([snapshot], [feed.reading], later)  # the reading as first answered, not yet marked
    assert snapshot.sentiment["fear_greed"].stale and "not refreshed since" in snapshot.sentiment["fear_greed"].note


def test_a_value_older_than_max_age_is_stale_whatever_the_source_says(server):
    reading = read(feed_for(server, max_age_hours=4), NOW)
    assert reading.stale and "older than max_age_hours (4 h)" in reading.note


def test_nothing_is_answered_before_the_first_success_and_nothing_raises():
    with FearGreedServer() as server:
        server.fail(500, times=1)
        feed = feed_for(server)
        assert read(feed, NOW) is None
        assert feed.error == "HTTP 500 Internal Server Error" and server.count == 1
        assert read(feed, NOW + timedelta(seconds=30)) is None and server.count == 1, "backing off"


BAD_ANSWERS = {
    "timeout": ({"status": 200, "hang": 1.0}, "no answer within 0.3 s"),
    "server error": ({"status": 502}, "HTTP 502 Bad Gateway"),
    "not found": ({"status": 404}, "HTTP 404 Not Found"),
    "malformed JSON": ({"status": 200, "body": '{"name": "Fear and Greed Index", "data": ['}, "malformed JSON"),
    "not an object": ({"status": 200, "body": "[]"}, "not an object with 'data'"),
    "metadata.error": ({"status": 200, "body": json.dumps({"name": "Fear and Greed Index", "data": [],
                                                           "metadata": {"error": "Limit must be a number"}})},
                       "the source reports an error: Limit must be a number"),
    "empty data": ({"status": 200, "body": json.dumps({"name": "Fear and Greed Index", "data": [],
                                                       "metadata": {"error": None}})}, "'data' list is empty"),
    "value above 100": ({"status": 200, "body": json.dumps({"data": [
        {"value": "140", "value_classification": "Greed", "timestamp": "1765000000"}]})}, "outside 0..100"),
    "value not a number": ({"status": 200, "body": json.dumps({"data": [
        {"value": "high", "value_classification": "Greed", "timestamp": "1765000000"}]})}, "'high' is not a number"),
    "missing timestamp": ({"status": 200, "body": json.dumps({"data": [
        {"value": "40", "value_classification": "Fear"}]})}, "data[0] has no 'timestamp'"),
    "dates for timestamps": ({"status": 200, "body": json.dumps({"data": [
        {"value": "40", "value_classification": "Fear", "timestamp": "06-12-2026"}]})},
        "leave date_format out of the url"),
}


@pytest.mark.parametrize("kind", list(BAD_ANSWERS))
def test_each_failure_keeps_the_last_value_marked_stale_with_the_error_and_backs_off(server, kind):
    failure, words = BAD_ANSWERS[kind]
    feed = Feed(FearGreedConfig(url=server.url, timeout_seconds=0.3, retry_initial_seconds=60,
                                retry_max_seconds=200, refresh_margin_seconds=0))
    read(feed, NOW)
    server.fail(times=3, **failure)
    at = NOW + DUE + timedelta(seconds=1)
    reading = read(feed, at)
    assert server.count == 2 and reading.stale and reading.fields["value"] == 25.0
    assert words in reading.note and "could not refresh from" in reading.note, reading.note
    waits = []
    for _ in range(3):  # 60 s, then 120 s, then the 200 s cap
        before = server.count
        assert read(feed, at + timedelta(seconds=59)).stale and server.count == before, "no request while waiting"
        wait = (feed.next_try - at).total_seconds()
        waits.append(wait)
        at = feed.next_try
        read(feed, at)
        assert server.count == before + 1
    assert waits == [60, 120, 200]
    assert not feed.as_of(at).stale and feed.failures == 0, "the fourth try got the real answer"


def test_an_unreachable_endpoint_is_a_note_and_a_backoff_with_its_credentials_masked():
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    feed = Feed(FearGreedConfig(url=f"http://reader:pa55w0rd-of-a-reader@127.0.0.1:{port}/fng/", timeout_seconds=2))
    assert read(feed, NOW) is None
    assert feed.error.startswith("ConnectError") and "pa55w0rd" not in feed.error
    assert feed.next_try == NOW + timedelta(seconds=60) and feed.failures == 1


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    from email.utils import format_datetime

    from gobot_plugins.fear_greed.client import retry_after

    assert retry_after("120") == 120 and retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    later = format_datetime(datetime.now(timezone.utc) + timedelta(minutes=10), usegmt=True)
    assert 590 <= retry_after(later) <= 600


def test_429_waits_as_long_as_retry_after_says(server):
    feed = feed_for(server, retry_initial_seconds=60, refresh_margin_seconds=0)
    read(feed, NOW)
    server.fail(429, retry_after="900")
    at = NOW + DUE
    reading = read(feed, at)
    assert "HTTP 429 Too Many Requests, Retry-After 900 s" in reading.note
    assert feed.next_try == at + timedelta(seconds=900)
    read(feed, at + timedelta(seconds=899))
    assert server.count == 2


def test_a_source_behind_its_schedule_is_asked_again_with_backoff(server):
    server.time_until_update = 0  # up, but the value due now is not out yet
    feed = feed_for(server, retry_initial_seconds=60)
    reading = read(feed, NOW)
    assert reading.stale and "no new value yet" in reading.note
    assert feed.next_try == NOW + timedelta(seconds=60)


def test_a_url_with_credentials_never_reaches_the_logs_or_notes(server, caplog):
    secret, key = "hunter2-very-secret", "k3y-v3ry-s3cr3t-value"
    url = server.url.replace("http://", f"http://reader:{secret}@") + f"?apikey={key}&date_format=world"
    feed = Feed(FearGreedConfig(url=url, timeout_seconds=2, refresh_margin_seconds=0))
    with caplog.at_level(logging.DEBUG):
        read(feed, NOW)
        server.fail(503)
        reading = read(feed, NOW + DUE)
    assert server.requests[0].headers["authorization"].startswith("Basic ")  # the credentials were used
    assert server.requests[0].query == {"apikey": key, "limit": "1", "format": "json"}  # unix timestamps wanted
    text = caplog.text + reading.note + json.dumps(feed.status(NOW + DUE))
    assert "HTTP 503" in reading.note and "HTTP Request" in caplog.text
    assert secret not in text and key not in text


def test_only_http_urls_are_accepted_and_the_config_error_hides_credentials(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[plugins]\nenable = ["fear_greed"]\n'
                      '[plugins.fear_greed]\nurl = "ftp://user:pa55word-long-one@example.com/fng/"\n')
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(config)])
    assert result.exit_code == 2
    assert "config.toml:plugins.fear_greed.url: 'ftp://***@example.com/fng/' is not an http(s) URL" \
        in result.output
    assert "pa55word" not in result.output


def test_each_new_value_is_recorded_once_even_across_restarts(server, tmp_path):
    path = recorded_path(tmp_path, "fear_greed")
    feed = Feed(FearGreedConfig(url=server.url, refresh_margin_seconds=0), path)
    read(feed, NOW)
    server.publish(61, T0 + timedelta(days=1), "Greed", time_until_update=86_400)
    read(feed, NOW + DUE)
    restarted = Feed(FearGreedConfig(url=server.url), path)
    read(restarted, NOW + DUE + timedelta(minutes=5))
    recorded = read_recorded(path)
    assert len(recorded) == 2
    (newest,) = recorded.as_of(NOW + DUE + timedelta(minutes=5), [])
    assert newest.fields == {"value": 61.0, "classification": "Greed"} and newest.valid_until is not None


def test_download_writes_the_history_oldest_first_in_the_recorded_format(server, tmp_path, monkeypatch):
    for day in range(1, 40):
        server.publish(20 + day, T0 + timedelta(days=day), time_until_update=3600)
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "state"\n[plugins]\nenable = ["fear_greed"]\n[plugins.replay]\n'
                      f'data_dir = "market"\n[plugins.fear_greed]\nurl = "{server.url}"\n', encoding="utf-8")
    monkeypatch.setenv("GOBOT_CONFIG", str(config))
    missing = CliRunner().invoke(cli, ["sentiment", "download", "fear-greed", "--config", str(config)])
    assert missing.exit_code == 1 and "market: no such folder ([plugins.replay] data_dir)" in missing.output
    assert server.count == 0
    out = tmp_path / "market"
    out.mkdir()
    result = CliRunner().invoke(cli, ["sentiment", "download", "fear-greed", "--days", "10", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "asking" in result.output and "10 values, 2027-01-05 to 2027-01-14" in result.output
    assert server.requests[-1].query == {"limit": "10", "format": "json"}
    path = recorded_path(out, "fear_greed")
    rows = path.read_text().splitlines()
    assert rows[0] == "timestamp_ms,valid_until_ms,symbol,score,value,classification,input.value"
    recorded = read_recorded(path)
    assert len(recorded) == 10
    (mid,) = recorded.as_of(T0 + timedelta(days=35, hours=12), ["BTC/USDT"])
    assert mid.fields["value"] == 55.0 and mid.valid_until == T0 + timedelta(days=36) and mid.score == 0.1
    assert recorded.as_of(T0 + timedelta(days=29, hours=23), []) == [], "nothing before the first downloaded day"


def test_download_says_what_failed_in_one_line(server, tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text(f'[plugins]\nenable = ["fear_greed"]\n[plugins.fear_greed]\nurl = "{server.url}"\n')
    monkeypatch.setenv("GOBOT_CONFIG", str(config))
    server.fail(503, retry_after="120")
    result = CliRunner().invoke(cli, ["sentiment", "download", "fear-greed", "--out", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert f"Error: {server.url}: HTTP 503 Service Unavailable, Retry-After 120 s" in result.output
    assert not recorded_path(tmp_path / "m", "fear_greed").exists()


def test_a_wall_clock_cycle_carries_the_index_on_every_snapshot_and_records_it(replay_bot):
    with FearGreedServer() as server:
        published = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        server.publish(72, published, "Greed", time_until_update=3600)
        bot = replay_bot(config={"trading": {"symbols": ["BTC/USDT", "ETH/USDT"]},
                                 "plugins": {"fear_greed": {"url": server.url}}},
                         enable=["fear_greed"], disable=["replay"],
                         plugins=[("live_feed", WallClockMarket("BTC/USDT", "ETH/USDT"))])
        assert not bot.clock.simulated
        reports = run_cycles(bot, 3)
        assert server.count == 1, "one request for three cycles"
        for snapshot in bot.ctx.snapshots:
            reading = snapshot.sentiment["fear_greed"]
            assert reading.fields == {"value": 72.0, "classification": "Greed"} and not reading.stale
        assert any("sentiment fear_greed (market): score +0.44 = value +0.44" in line
                   for line in reports[-1].phase("scan").records)
        recorded = read_recorded(recorded_path(bot.settings.state_path, "fear_greed"))
        assert len(recorded) == 1
        status = bot.plugin_set.pm.get_plugin("fear_greed").gobot_status(bot.ctx)
        assert status.reason.startswith("Fear & Greed 72 (Greed), ") and status.state == "fresh"
        assert status.data["requests"] == 1 and status.data["stale"] is False


def test_on_a_simulated_clock_it_asks_nothing(replay_bot, run_bot):
    with FearGreedServer() as server:
        server.publish(72, T0, "Greed")
        bot = replay_bot(config={"plugins": {"fear_greed": {"url": server.url}}}, enable=["fear_greed"])
        assert bot.clock.simulated
        run_bot(bot, 2)
        assert server.count == 0
        assert all("fear_greed" not in s.sentiment for s in bot.ctx.snapshots)


def test_downloaded_history_replays_as_of_each_cycle_without_asking_the_source(
        replay_bot, run_bot, synthetic_data_dir, tmp_path, monkeypatch):
    import shutil

    market = tmp_path / "market"
    shutil.copytree(synthetic_data_dir, market)  # the replay's candles (2026-01-01 .. 01-03, 5m)
    with FearGreedServer() as server:
        start = datetime(2025, 12, 20, tzinfo=timezone.utc)
        for day in range(20):
            server.publish(30 + day, start + timedelta(days=day), time_until_update=3600)
        config = tmp_path / "config.toml"
        config.write_text(f'[plugins]\nenable = ["fear_greed"]\n[plugins.fear_greed]\nurl = "{server.url}"\n')
        monkeypatch.setenv("GOBOT_CONFIG", str(config))
        result = CliRunner().invoke(cli, ["sentiment", "download", "fear-greed", "--days", "0", "--out", str(market)])
        assert result.exit_code == 0, result.output
        assert server.requests[-1].query["limit"] == "0" and "20 values" in result.output
        bot = replay_bot(config={"plugins": {"replay": {"data_dir": str(market)}, "fear_greed": {"url": server.url}}},
                         enable=["fear_greed"])
        run_bot(bot, 2)
        assert server.count == 1, "only the download asked"
    for snapshot in bot.ctx.snapshots:
        reading = snapshot.sentiment["fear_greed"]
        day = (snapshot.time.date() - start.date()).days  # the value published that day, never a later one
        assert reading.fields["value"] == 30 + day and reading.time.date() == snapshot.time.date()
        assert not reading.stale
