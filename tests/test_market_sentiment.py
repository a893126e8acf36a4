"""The market_sentiment plugin, end to end: the real ccxt client against the Binance test server.

A bot on a movable wall clock runs the plugin with a scripted scan plugin (the snapshots), so every
request the server sees is the plugin's: the fields and the score for values the server is set to,
the parts adding up to the score, the cache per input and period (request counts and request weight
per cycle), an input that fails (503, malformed) named in ``missing``, every input failing (a stale
reading with a note, or none), a 429/418 with Retry-After backed off, nothing on a simulated clock,
recorded readings, and a paper-mode bot with the binance plugin whose snapshots carry the reading.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from gobot.config import settings_from_dict
from gobot.host.plugin_manager import build_plugin_set
from gobot.run.bot import Bot
from gobot_hookspecs import Candles, MarketSnapshot, Priority, hookimpl
from gobot_hookspecs.sentiment import read_recorded, recorded_path
from servers.binance import BinanceTestServer, Fault
from servers.bots import NOT_NEEDED, MovableWallClock, binance_bot, run_cycles

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
PATHS = {"funding_rate": "/fapi/v1/premiumIndex", "funding_trend": "/fapi/v1/fundingRate",
         "open_interest": "/futures/data/openInterestHist", "long_short": "/futures/data/globalLongShortAccountRatio",
         "taker": "/futures/data/takerlongshortRatio"}
#: a crowd leaning long: every input's raw part worked out by hand (docs/plugins.md, score.py)
GREEDY = {"funding_rate": 0.0003,  # (0.0003 - 0.0001) / 0.0005 = 0.4
          "funding_history": [0.0001] * 5 + [0.0003],  # trend 0.0002 / 0.0002 = 1.0
          "open_interest": [100, 104],  # +4 % / 5 % = 0.8, with the price up
          "open_interest_prices": [50000, 50500],
          "long_account": 0.6,  # (0.6 - 0.5) / 0.2 = 0.5
          "taker_buy": 110, "taker_sell": 100}  # (330 - 300) / 630 / 0.2 = 0.238...
GREEDY_RAW = {"funding_rate": 0.4, "funding_trend": 1.0, "open_interest": 0.8, "long_short": 0.5,
              "taker": (330 - 300) / 630 / 0.2}
WEIGHTS = {"funding_rate": 0.25, "funding_trend": 0.10, "open_interest": 0.15, "long_short": 0.25, "taker": 0.25}


class Scan:
    """The market scan: one snapshot per symbol at a fixed price (the sentiment is what is tested)."""

    def __init__(self, clock: MovableWallClock, symbols: list[str]):
        self.clock, self.symbols = clock, symbols

    @hookimpl
    def gobot_scan_market(self):
        now = self.clock.now()
        stamp = int(now.timestamp() // 60 * 60_000) - 60_000
        candles = Candles(timeframe="1m", timestamp=[stamp], open=[100.0], high=[101.0], low=[99.0], close=[100.0],
                          volume=[1.0])
        return [MarketSnapshot(symbol=s, time=now, price=100.0, candles=candles) for s in self.symbols]


def hour_aligned_clock() -> MovableWallClock:
    """A wall clock put 1 s past the next full hour: a test's cycles stay inside one period until it moves it."""
    clock = MovableWallClock()
    now = datetime.now(timezone.utc)
    clock.offset = timedelta(seconds=3600 - now.timestamp() % 3600 + 1)
    return clock


def sentiment_bot(tmp_path, server: BinanceTestServer, clock: MovableWallClock, trading: list[str] = SYMBOLS,
                  plugins: list = (), **section) -> Bot:
    data = {"state_dir": str(tmp_path / "state"),
            "trading": {"symbols": trading, "max_position_usd": 100, "initial_capital_usd": 10000},
            "plugins": {"enable": ["market_sentiment"],
                        "market_sentiment": {"api_url": server.url, "publish_delay_seconds": 0,
                                             "request_timeout": 2} | section}}
    settings = settings_from_dict(data, "test-config.toml", base_dir=str(tmp_path))
    plugins = build_plugin_set(enable=settings.plugins.enable, disable=NOT_NEEDED,
                               extra_plugins=[("scan", Scan(clock, trading)), ("clock", clock), *plugins])
    return Bot(settings, plugins)


@pytest.fixture
def server():
    with BinanceTestServer(markets=None) as running:
        for symbol in ("BTCUSDT", "ETHUSDT"):
            running.set_sentiment(symbol, **GREEDY)
        yield running


def readings(bot: Bot) -> dict:
    return {snap.symbol: snap.sentiment.get("market_sentiment") for snap in bot.ctx.snapshots}


def run(bot: Bot, n: int, between=None) -> list[dict]:
    """Run ``n`` cycles; each cycle's readings by symbol (``between(i)`` runs after cycle i)."""
    seen = []

    def after(i):
        seen.append(readings(bot))
        if between is not None:
            between(i)

    run_cycles(bot, n, after)
    return seen


def requests_by_path(server: BinanceTestServer) -> dict[str, int]:
    return {name: server.count("GET", path) for name, path in PATHS.items()}


# -- what a reading says --------------------------------------------------------------------------------


def test_fields_and_score_for_the_values_the_exchange_reports(tmp_path, server):
    [seen] = run(sentiment_bot(tmp_path, server, hour_aligned_clock()), 1)
    reading = seen["BTC/USDT"]
    assert (reading.source, reading.symbol, reading.stale, reading.missing) == ("market_sentiment", "BTC/USDT",
                                                                                 False, [])
    f = reading.fields
    assert f["funding_rate"] == pytest.approx(0.0003)
    assert f["funding_rate_trend"] == pytest.approx(0.0002)
    assert f["funding_rate_avg"] == pytest.approx(0.0008 / 6)
    assert (f["open_interest"], f["open_interest_value"]) == (pytest.approx(104), pytest.approx(104 * 50500))
    assert f["open_interest_change_pct"] == pytest.approx(4.0) and f["price_change_pct"] == pytest.approx(1.0)
    assert (f["long_account"], f["short_account"], f["long_short_ratio"]) == (0.6, 0.4, 1.5)
    assert (f["taker_buy_volume"], f["taker_sell_volume"]) == (330, 300)  # 3 periods summed
    assert f["taker_buy_sell_ratio"] == pytest.approx(1.1)
    expected = {name: GREEDY_RAW[name] * WEIGHTS[name] for name in WEIGHTS}
    assert reading.inputs == pytest.approx(expected)
    assert reading.score == pytest.approx(sum(expected.values())) and reading.score > 0.5
    assert reading.score == math.fsum(reading.inputs.values())  # the parts add up to it exactly
    assert reading.valid_until > reading.time
    assert seen["ETH/USDT"].symbol == "ETH/USDT"


@pytest.mark.parametrize("values", [
    {"funding_rate": -0.002, "funding_history": [0.0005, 0.0004, -0.0009], "open_interest": [100, 130],
     "open_interest_prices": [50000, 45000], "long_account": 0.2, "taker_buy": 40, "taker_sell": 160},
    {"funding_rate": 0.01, "funding_history": [0, 0.01], "open_interest": [100, 300], "open_interest_prices": [1, 2],
     "long_account": 0.95, "taker_buy": 500, "taker_sell": 1},
    {"funding_rate": 0.0001, "funding_history": [0.0001, 0.0001], "open_interest": [120, 100],
     "open_interest_prices": [50000, 40000], "long_account": 0.5, "taker_buy": 100, "taker_sell": 100},
])
def test_the_inputs_add_up_to_the_score_which_stays_within_minus_one_and_one(tmp_path, server, values):
    server.set_sentiment("BTCUSDT", **values)
    [seen] = run(sentiment_bot(tmp_path, server, hour_aligned_clock()), 1)
    reading = seen["BTC/USDT"]
    assert -1 <= reading.score <= 1
    assert reading.score == pytest.approx(math.fsum(reading.inputs.values()), abs=1e-15)
    assert all(abs(part) <= WEIGHTS[name] + 1e-12 for name, part in reading.inputs.items())


def test_a_crowd_short_and_selling_scores_below_zero(tmp_path, server):
    server.set_sentiment("BTCUSDT", funding_rate=-0.0004, funding_history=[0.0001, 0.0001, -0.0002],
                         open_interest=[100, 106], open_interest_prices=[50000, 48000], long_account=0.35,
                         taker_buy=70, taker_sell=130)
    [seen] = run(sentiment_bot(tmp_path, server, hour_aligned_clock()), 1)
    reading = seen["BTC/USDT"]
    assert reading.score < -0.5 and all(part < 0 for part in reading.inputs.values())
    assert reading.inputs["open_interest"] == pytest.approx(-0.15)  # OI up while the price falls: new shorts


def test_an_input_with_weight_zero_is_not_asked_for(tmp_path, server):
    [seen] = run(sentiment_bot(tmp_path, server, hour_aligned_clock(), weight_funding_trend=0, weight_taker=0), 1)
    reading = seen["BTC/USDT"]
    assert set(reading.inputs) == {"funding_rate", "open_interest", "long_short"}
    assert reading.score == pytest.approx((0.4 * 0.25 + 0.8 * 0.15 + 0.5 * 0.25) / 0.65)  # weights renormalised
    assert server.count("GET", PATHS["funding_trend"]) == server.count("GET", PATHS["taker"]) == 0


# -- caching: what a cycle costs ------------------------------------------------------------------------


def test_each_input_is_fetched_once_per_period_and_cached_cycles_cost_nothing(tmp_path, server):
    clock = hour_aligned_clock()
    costs = []

    def between(i):
        costs.append((requests_by_path(server), server.weight_used["futures"]))
        if i == 2:
            clock.offset += timedelta(minutes=5)  # the next 5m period: the statistics, not the hourly funding history
        if i == 3:
            clock.offset += timedelta(hours=1)

    seen = run(sentiment_bot(tmp_path, server, clock), 5, between)
    per_cycle = [{name: after[name] - before[name] for name in PATHS}
                 for (before, _), (after, _) in zip([(dict.fromkeys(PATHS, 0), 0)] + costs, costs)]
    weights = [after - before for before, after in zip([0] + [w for _, w in costs], [w for _, w in costs])]
    cold = dict.fromkeys(PATHS, 2)  # one request per input and symbol
    assert per_cycle[0] == cold and weights[0] == 2  # Binance's weight: premiumIndex 1 each, the rest 0
    assert per_cycle[1] == per_cycle[2] == dict.fromkeys(PATHS, 0) and weights[1] == weights[2] == 0
    assert per_cycle[3] == cold | {"funding_trend": 0}  # the settled funding history is cached to the hour
    assert per_cycle[4] == cold
    assert [r["BTC/USDT"].score for r in seen] == [pytest.approx(seen[0]["BTC/USDT"].score)] * 5


class CountingPolicy:
    """A rate-limit policy that lets everything through and keeps what it was asked and told."""

    def __init__(self):
        self.asked: list[tuple[float, Priority]] = []
        self.statuses: list[int] = []

    async def acquire(self, weight, priority, orders=0):
        self.asked.append((weight, priority))

    def on_response(self, status, headers):
        self.statuses.append(status)

    @hookimpl(tryfirst=True)
    def gobot_rate_limit_policy(self):
        return self


def test_every_request_asks_the_rate_limiter_for_its_weight_at_low_priority(tmp_path, server):
    policy = CountingPolicy()
    server.inject(Fault(path=PATHS["taker"], action="status", status=429, code=-1003, when="before", retry_after=60))
    asked = []
    bot = sentiment_bot(tmp_path, server, hour_aligned_clock(), plugins=[("policy", policy)])
    run(bot, 2, lambda i: asked.append(list(policy.asked)))
    assert asked[0] == [(1.0, Priority.LOW)] * 10  # ccxt's cost table: 1 per request, 5 inputs x 2 symbols
    assert asked[1] == asked[0]  # the cached cycle asked for nothing
    assert policy.statuses.count(429) == 1 and policy.statuses.count(200) == 9  # it learns from every answer


def test_the_status_reports_the_requests_of_the_last_cycle(tmp_path, server):
    bot = sentiment_bot(tmp_path, server, hour_aligned_clock())
    statuses = []
    run(bot, 2, lambda i: statuses.append(bot.plugin_set.pm.get_plugin("market_sentiment").gobot_status()))
    assert statuses[0].data["requests_last_cycle"] == dict.fromkeys(PATHS, 2)
    assert statuses[1].data["requests_last_cycle"] == {}
    assert statuses[1].data["scores"]["BTC/USDT"] > 0


# -- failures -------------------------------------------------------------------------------------------


def test_one_endpoint_answering_503_is_named_missing_and_the_score_comes_from_the_others(tmp_path, server):
    server.inject(Fault(path=PATHS["taker"], action="status", status=503, when="before", times=2))
    [seen] = run(sentiment_bot(tmp_path, server, hour_aligned_clock()), 1)
    reading = seen["BTC/USDT"]
    assert reading.missing == ["taker"] and not reading.stale
    assert "taker" in reading.note and reading.fields["taker_buy_volume"] is None
    assert set(reading.inputs) == {"funding_rate", "funding_trend", "open_interest", "long_short"}
    assert reading.score == pytest.approx(math.fsum(reading.inputs.values()))
    assert reading.score == pytest.approx(sum(GREEDY_RAW[n] * WEIGHTS[n] for n in reading.inputs) / 0.75)


def test_a_malformed_answer_is_named_missing(tmp_path, server):
    server.inject(Fault(path=PATHS["long_short"], action="mangle", times=2,
                        callback=lambda rows: [{k: v for k, v in row.items() if k != "longAccount"} for row in rows]))
    [seen] = run(sentiment_bot(tmp_path, server, hour_aligned_clock()), 1)
    assert seen["BTC/USDT"].missing == ["long_short"] and "malformed" in seen["BTC/USDT"].note
    assert seen["BTC/USDT"].score is not None


def test_everything_down_returns_the_last_reading_stale_with_a_note_and_never_raises(tmp_path, server):
    clock = hour_aligned_clock()

    def between(i):
        if i == 0:
            clock.offset += timedelta(hours=1)  # every cache expired
            server.inject(*(Fault(path=p, action="status", status=503, when="before", times=100)
                            for p in PATHS.values()))

    seen = run(sentiment_bot(tmp_path, server, clock), 2, between)
    fresh, stale = seen[0]["BTC/USDT"], seen[1]["BTC/USDT"]
    assert stale.stale and stale.score == fresh.score and stale.time == fresh.time
    assert stale.note.startswith("could not refresh since") and "funding_rate" in stale.note
    assert stale.missing == list(PATHS)


def test_everything_down_from_the_start_attaches_nothing(tmp_path, server):
    server.inject(*(Fault(path=p, action="status", status=500, when="before", times=100) for p in PATHS.values()))
    [seen] = run(sentiment_bot(tmp_path, server, hour_aligned_clock()), 1)
    assert seen == {"BTC/USDT": None, "ETH/USDT": None}


@pytest.mark.parametrize("status", [429, 418])
def test_a_rate_limit_answer_with_retry_after_stops_the_requests_until_it_passed(tmp_path, server, status):
    clock = hour_aligned_clock()
    server.inject(Fault(path=PATHS["open_interest"], action="status", status=status, code=-1003, when="before",
                        msg="Too many requests; current limit is exceeded.", retry_after=120))
    counts = []

    def between(i):
        counts.append(requests_by_path(server))
        if i == 1:
            clock.offset += timedelta(seconds=121)  # Retry-After passed, the 5m period not yet

    seen = run(sentiment_bot(tmp_path, server, clock, symbols=["BTC/USDT"]), 3, between)
    assert seen[0]["BTC/USDT"].missing == ["open_interest"] and "DDoSProtection" in seen[0]["BTC/USDT"].note
    assert seen[1]["BTC/USDT"].missing == ["open_interest"] and "backing off" in seen[1]["BTC/USDT"].note
    assert counts[1] == counts[0]  # nothing asked while backing off (the other inputs are cached)
    assert seen[2]["BTC/USDT"].missing == [] and counts[2]["open_interest"] == counts[1]["open_interest"] + 1


def test_without_retry_after_the_backoff_is_backoff_seconds(tmp_path, server):
    clock = hour_aligned_clock()
    server.inject(Fault(path=PATHS["taker"], action="status", status=429, code=-1003, when="before"))

    def between(i):
        if i == 1:
            clock.offset += timedelta(seconds=31)

    seen = run(sentiment_bot(tmp_path, server, clock, symbols=["BTC/USDT"], backoff_seconds=30), 3, between)
    assert [r["BTC/USDT"].missing for r in seen] == [["taker"], ["taker"], []]
    assert server.count("GET", PATHS["taker"]) == 1  # the refused one is not processed: only the one after


def test_a_symbol_without_a_usdt_perpetual_gets_no_reading_and_is_asked_for_once_a_day(tmp_path, server):
    clock = hour_aligned_clock()
    refused = []

    def between(i):
        refused.append(sum(1 for _, _, status in server.state.requests if status == 400))  # -1121 Invalid symbol
        clock.offset += timedelta(hours=1)

    seen = run(sentiment_bot(tmp_path, server, clock, trading=["BTC/USDT", "BNB/USDT"]), 2, between)
    assert [r["BNB/USDT"] for r in seen] == [None, None]
    assert seen[1]["BTC/USDT"].score > 0 and seen[1]["BTC/USDT"].missing == []
    assert refused == [5, 5]  # each input asked once, then not for a day


# -- replay, recording, config ---------------------------------------------------------------------------


def test_on_a_simulated_clock_it_asks_nothing(replay_bot, server):
    bot = replay_bot(enable=["market_sentiment"], config={"plugins": {"market_sentiment": {"api_url": server.url}}})
    run_cycles(bot, 2)
    assert server.state.requests == []
    assert all("market_sentiment" not in snap.sentiment for snap in bot.ctx.snapshots)


def test_record_appends_each_reading_in_the_recorded_format(tmp_path, server):
    clock = hour_aligned_clock()
    bot = sentiment_bot(tmp_path, server, clock, record=True)
    # cycle 2 reads the same period from the cache: a repeat adds no row
    seen = run(bot, 3, lambda i: setattr(clock, "offset", clock.offset + timedelta(minutes=5 if i == 0 else 0)))
    recorded = read_recorded(recorded_path(tmp_path / "state", "market_sentiment"))
    assert len(recorded) == 4
    [again] = recorded.as_of(clock.now(), ["BTC/USDT"])
    assert again.symbol == "BTC/USDT" and again.score == pytest.approx(seen[1]["BTC/USDT"].score)
    assert again.inputs == pytest.approx(seen[1]["BTC/USDT"].inputs)
    assert again.fields["long_short_ratio"] == 1.5


def test_the_recorded_file_keeps_a_column_for_an_input_missing_from_its_first_reading(tmp_path, server):
    clock = hour_aligned_clock()
    server.inject(Fault(path=PATHS["taker"], action="status", status=503, when="before"))
    bot = sentiment_bot(tmp_path, server, clock, trading=["BTC/USDT"], record=True)
    seen = run(bot, 2, lambda i: setattr(clock, "offset", clock.offset + timedelta(minutes=5)))
    recorded = read_recorded(recorded_path(tmp_path / "state", "market_sentiment"))
    [first], [second] = (recorded.as_of(r["BTC/USDT"].time, ["BTC/USDT"]) for r in seen)
    assert "taker" not in first.inputs and first.fields["taker_buy_volume"] is None
    assert second.inputs["taker"] == pytest.approx(GREEDY_RAW["taker"] * WEIGHTS["taker"])


def test_all_weights_zero_is_refused_naming_the_fix(tmp_path, server):
    with pytest.raises(Exception, match="weight_"):
        bot = sentiment_bot(tmp_path, server, hour_aligned_clock(), weight_funding_rate=0, weight_funding_trend=0,
                            weight_open_interest=0, weight_long_short=0, weight_taker=0)
        run_cycles(bot, 1)


# -- the whole bot -----------------------------------------------------------------------------------------


def test_a_paper_bot_on_binance_futures_carries_the_reading_on_its_snapshots(tmp_path, server):
    enable = ["binance", "adaptive_rate_limit", "market_sentiment"]
    bot = binance_bot(tmp_path / "state", server, mode="paper", market="futures",
                      plugins=[("clock", hour_aligned_clock())],
                      config={"plugins": {"enable": enable, "market_sentiment": {"api_url": server.url}}})
    reports = run_cycles(bot, 2)
    [snap] = bot.ctx.snapshots
    reading = snap.sentiment["market_sentiment"]
    assert reading.symbol == "BTC/USDT" and reading.score == pytest.approx(sum(
        GREEDY_RAW[n] * WEIGHTS[n] for n in WEIGHTS))
    assert not reports[-1].errors
    assert server.count("GET", PATHS["long_short"]) == 1  # the second cycle read it from the cache
    lines = [line for phase in reports[-1].phases for line in phase.records if "market_sentiment" in line]
    assert lines and lines[0].startswith("sentiment market_sentiment (BTC/USDT): score +")
