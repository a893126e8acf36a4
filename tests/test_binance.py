"""The binance plugin, end to end: the real ccxt client against the Binance test server.

Order round trips with stop-loss and take-profit on spot (OCO, and the pair the plugin watches
when OCO is refused) and on USDT-M futures (reduce-only algo orders), the market scan, the
pre-trade veto from the exchange's own rules, the cache, api_url's error mapping, and the
start-up checks.
"""

from __future__ import annotations

import asyncio

import pytest

from gobot_hookspecs import Action
from servers.binance import BinanceTestServer
from servers.bots import Ideas, Recorder, binance_bot, keys
from servers.bots import run_cycles as cycles


@pytest.fixture
def server():
    with BinanceTestServer() as running:
        yield running


def test_spot_round_trip_with_an_oco_stop_loss(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}))
    seen = {}

    def market(i):
        if i == 0:
            seen["legs"] = sorted(o["type"] for o in server.open_orders())
        if i == 1:
            server.set_price("BTCUSDT", 48000)  # below the 2 % stop

    cycles(bot, 3, market)
    assert seen["legs"] == ["LIMIT_MAKER", "STOP_LOSS"]  # one OCO order list
    [trade] = bot.state.trades
    assert (trade.exit_reason, trade.exit_price) == ("stop_loss", 48000.0)
    assert server.open_orders() == []  # the exchange cancelled the take-profit leg
    entry = [o for o in server.filled_orders() if o["side"] == "BUY"]
    assert len(entry) == 1 and entry[0]["clientOrderId"] == trade.client_order_id


def test_spot_without_oco_places_a_stop_and_a_limit_and_cancels_the_stop_when_the_target_fills(tmp_path, monkeypatch):
    keys(monkeypatch)
    with BinanceTestServer(refuse_oco=True) as server:
        bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}))
        seen = {}

        def market(i):
            if i == 0:
                seen["legs"] = sorted(o["type"] for o in server.open_orders())
                server.set_price("BTCUSDT", 52500)  # above the 4 % target

        cycles(bot, 3, market)
        assert seen["legs"] == ["LIMIT", "STOP_LOSS"]
        [trade] = bot.state.trades
        assert trade.exit_reason == "take_profit"
        assert server.open_orders() == []  # the plugin cancelled the stop
        assert server.count("POST", "/api/v3/orderList/oco") == 0  # the market says ocoAllowed = false


def test_futures_round_trip_with_reduce_only_algo_orders_leverage_and_margin_mode(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.SHORT}), market="futures", leverage=3,
                      margin_mode="isolated")
    seen = {}

    def market(i):
        if i == 0:
            seen["algo"] = sorted((a["orderType"], a["side"], a["reduceOnly"]) for a in server.open_algo_orders())
            seen["position"] = server.position("BTCUSDT")
            server.set_price("BTCUSDT", 47900)  # a short's 4 % target

    cycles(bot, 3, market)
    assert seen["algo"] == [("STOP_MARKET", "BUY", True), ("TAKE_PROFIT_MARKET", "BUY", True)]
    assert seen["position"] < 0
    [trade] = bot.state.trades
    assert (trade.direction, trade.exit_reason) == (Action.SHORT, "take_profit")
    assert server.position("BTCUSDT") == 0
    assert server.open_algo_orders() == []  # the stop was cancelled when the target filled
    state = server.state.positions["BTCUSDT"]
    assert (state["leverage"], state["margin"]) == (3, "ISOLATED")


def test_an_exit_signal_cancels_the_stops_before_it_closes_the_position(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    ideas = Ideas({"BTC/USDT": Action.LONG})
    bot = binance_bot(tmp_path / "state", server, ideas=ideas)

    def market(i):
        if i == 1:
            ideas.wanted["BTC/USDT"] = Action.SHORT  # the opposite signal exits (spot never shorts)

    cycles(bot, 4, market)
    [trade] = bot.state.trades
    assert trade.exit_reason == "signal"
    assert server.open_orders() == []
    assert server.balance("BTC") < 1e-4  # sold what the entry bought (net of the fee)


def test_the_futures_scan_reports_spread_volume_funding_open_interest_and_the_markets_rules(tmp_path, server,
                                                                                              monkeypatch):
    keys(monkeypatch)
    bot = binance_bot(tmp_path / "state", server, market="futures")
    cycles(bot, 1)
    [snap] = bot.ctx.snapshots
    assert snap.price == 50000 and snap.bid < snap.price < snap.ask
    assert snap.volume_24h > 0 and len(snap.candles) == 30
    assert snap.candles.timestamp[-1] + 60_000 <= snap.time.timestamp() * 1000  # only closed candles
    assert snap.extras["funding_rate"] == pytest.approx(0.0001)
    assert snap.extras["open_interest"] == pytest.approx(10659.509)
    assert snap.extras["spread"] > 0 and snap.extras["min_notional"] == 5 and snap.extras["amount_step"] == 0.001


def test_a_minimum_notional_above_max_position_usd_is_vetoed_never_upsized(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    server.set_min_notional("BTCUSDT", 150)
    recorder = Recorder()
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}), recorder=recorder)
    cycles(bot, 1)
    [veto] = [v for v in bot.state.vetoes]
    assert "minimum notional 150 exceeds max_position_usd 100: never upsized" in veto["reasons"]
    assert server.count("POST", "/api/v3/order") == 0
    assert any(a.kind == "risk_veto" for a in recorder.alerts)


def test_an_amount_below_the_lot_size_is_vetoed_before_anything_is_sent(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    server.set_min_notional("BTCUSDT", 0.1)
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}),
                      config={"trading": {"max_position_usd": 0.4}})  # 0.000008 BTC: below the 0.00001 step
    cycles(bot, 1)
    [veto] = bot.state.vetoes
    assert "below the minimum 1e-05" in veto["reasons"]
    assert server.count("POST", "/api/v3/order") == 0


def test_a_spot_short_is_vetoed(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.SHORT}))
    cycles(bot, 1)
    assert "spot market cannot open a short" in bot.state.vetoes[0]["reasons"]


def test_paper_mode_trades_binance_prices_with_simulated_fills_and_sends_no_order(tmp_path, server, monkeypatch):
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}), mode="paper")
    [report] = cycles(bot, 1)
    assert [o.executor for o in report.orders] == ["paper"]  # it fills at the next candle's open
    assert report.phase("scan").records[0].startswith("BTC/USDT 50000 (binance")
    assert server.count("POST", "/api/v3/order") == 0 and server.count("GET", "/api/v3/account") == 0


def test_concurrent_identical_requests_share_one_call(server):
    from types import SimpleNamespace

    from gobot_plugins.adaptive_rate_limit import AdaptiveRateLimitConfig
    from gobot_plugins.adaptive_rate_limit.policy import AdaptiveRateLimiter
    from gobot_plugins.binance import BinanceConfig
    from gobot_plugins.binance.client import make_exchange
    from gobot_plugins.binance.market_data import MarketData

    async def scenario():
        config = BinanceConfig(api_url=server.url)
        exchange = make_exchange(config, market="spot", policy=AdaptiveRateLimiter(AdaptiveRateLimitConfig()))
        data = MarketData(exchange, config, ["BTC/USDT"])
        try:
            await data.load()
            before = server.count("GET", "/api/v3/ticker/24hr")
            tickers = await asyncio.gather(*(data._cached(("ticker", "BTC/USDT"), 5,
                                                          lambda: exchange.fetch_ticker("BTC/USDT"))
                                             for _ in range(10)))
            again = await data._cached(("ticker", "BTC/USDT"), 5, lambda: exchange.fetch_ticker("BTC/USDT"))
            ctx = SimpleNamespace(now=lambda: __import__("datetime").datetime.now(__import__("datetime").timezone.utc))
            candles = await asyncio.gather(*(data.candles(ctx, "BTC/USDT", "1m", 20) for _ in range(5)))
            return (server.count("GET", "/api/v3/ticker/24hr") - before, tickers, again, candles,
                    server.count("GET", "/api/v3/klines"))
        finally:
            await exchange.close()

    calls, tickers, again, candles, kline_calls = asyncio.run(scenario())
    assert calls == 1 and kline_calls == 1
    assert all(t["last"] == 50000 for t in tickers) and again["last"] == 50000
    assert all(len(c) == 20 for c in candles)


def test_api_url_keeps_binances_futures_error_mapping(server):
    import ccxt

    from gobot_plugins.adaptive_rate_limit import AdaptiveRateLimitConfig
    from gobot_plugins.adaptive_rate_limit.policy import AdaptiveRateLimiter
    from gobot_plugins.binance import BinanceConfig
    from gobot_plugins.binance.client import make_exchange
    from servers.binance import API_KEY, API_SECRET

    async def scenario():
        config = BinanceConfig(api_url=server.url, market="futures", mode="testnet")
        exchange = make_exchange(config, market="futures", policy=AdaptiveRateLimiter(AdaptiveRateLimitConfig()),
                                 api_key=API_KEY, secret=API_SECRET)
        raised = {}
        try:
            try:  # -2022: reduce-only with no position
                await exchange.create_order("BTC/USDT:USDT", "market", "sell", 0.001, None, {"reduceOnly": True})
            except ccxt.BaseError as exc:
                raised["-2022"] = type(exc)
            await exchange.set_margin_mode("isolated", "BTC/USDT:USDT")
            await exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.001, None, {"clientOrderId": "gbdup"})
            await exchange.create_order("BTC/USDT:USDT", "market", "sell", 0.001, None,
                                        {"stopLossPrice": 40000, "reduceOnly": True, "clientOrderId": "gbdup-sl"})
            try:  # -4116: the algo order with this id is still open
                await exchange.create_order("BTC/USDT:USDT", "market", "sell", 0.001, None,
                                            {"stopLossPrice": 40000, "reduceOnly": True, "clientOrderId": "gbdup-sl"})
            except ccxt.BaseError as exc:
                raised["-4116"] = type(exc)
            assert exchange.urls["api"]["fapiPrivate"] == f"{server.url}/fapi/v1"
            assert exchange.urls["api"]["public"] == f"{server.url}/api/v3"
        finally:
            await exchange.close()
        return raised

    raised = asyncio.run(scenario())
    assert raised == {"-2022": ccxt.InvalidOrder, "-4116": ccxt.InvalidOrder}


def test_the_limiter_takes_its_budgets_from_exchange_info_and_ccxts_throttle_is_off(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    bot = binance_bot(tmp_path / "state", server)
    cycles(bot, 1)
    policy = bot.ctx.rate_limiter
    assert (policy.scope, {(b.kind, b.window_ms, b.limit) for b in policy.budgets}) == (
        "binance:spot:testnet", {("weight", 2000, 1200), ("orders", 1000, 50), ("orders", 86_400_000, 160000),
                                 ("weight", 3_600_000, 100000)})
    assert policy.stats["granted"] == len(server.state.requests)  # every request went through it


@pytest.mark.parametrize(
    "section, env, live, message",
    [
        ({"mode": "testnet"}, False, False, "needs BINANCE_API_KEY and BINANCE_API_SECRET in the environment"),
        ({"mode": "live"}, True, False, "mode = live needs `gobot start --live`"),
        ({"mode": "paper"}, True, True, "needs [plugins.binance] mode = \"live\" or \"testnet\""),
    ],
)
def test_start_up_refuses_what_is_unsafe_and_says_why(tmp_path, server, monkeypatch, section, env, live, message):
    from gobot.errors import PluginError

    if env:
        keys(monkeypatch)
    else:
        monkeypatch.delenv("BINANCE_API_KEY", raising=False)
        monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    bot = binance_bot(tmp_path / "state", server, live=live, **section)
    with pytest.raises(PluginError, match="binance"):
        try:
            asyncio.run(bot.startup())
        except PluginError as exc:
            assert message in str(exc)
            raise


def test_without_a_rate_limit_policy_the_plugin_refuses_to_start(tmp_path, server, monkeypatch):
    from gobot.config import settings_from_dict
    from gobot.errors import PluginError
    from gobot.host.plugin_manager import build_plugin_set
    from gobot.run.bot import Bot
    from servers.bots import NOT_NEEDED, binance_settings

    keys(monkeypatch)
    data = binance_settings(tmp_path / "state", server)
    settings = settings_from_dict(data, "test.toml", base_dir=str(tmp_path))
    bot = Bot(settings, build_plugin_set(enable=["binance"], disable=NOT_NEEDED))
    with pytest.raises(PluginError, match="add adaptive_rate_limit"):
        asyncio.run(bot.startup())


@pytest.mark.slow
def test_data_download_writes_the_replay_format_and_the_markets_rules(tmp_path, server):
    import json
    import subprocess
    import sys
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    from gobot_plugins.replay.data import find_candles

    since = (datetime.now(timezone.utc) - timedelta(hours=20)).strftime("%Y-%m-%dT%H:00")
    gobot = str(Path(sys.executable).parent / "gobot")
    done = subprocess.run([gobot, "data", "download", "--symbol", "BTC/USDT", "--symbol", "ETH/USDT",
                           "--timeframe", "1m", "--since", since, "--api-url", server.url,
                           "--out", str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    candles = find_candles(tmp_path / "data", "BTC/USDT", "1m")  # what [plugins.replay] reads
    assert 1200 <= len(candles) <= 1260  # 20 to 21 hours of closed 1-minute candles, fetched in pages of 1000
    assert all(b - a == 60_000 for a, b in zip(candles.timestamp, candles.timestamp[1:]))
    assert candles.timestamp[-1] + 60_000 <= datetime.now(timezone.utc).timestamp() * 1000
    markets = json.loads((tmp_path / "data" / "markets.json").read_text())
    assert markets["BTC/USDT"]["limits"]["cost"]["min"] == 5 and markets["ETH/USDT"]["precision"]["amount"] == 0.0001
    assert "BTC/USDT 1m" in done.stdout and server.count("GET", "/api/v3/klines") >= 4


def test_when_the_stop_holds_the_balance_the_plugin_watches_the_target_itself(tmp_path, monkeypatch):
    keys(monkeypatch)
    with BinanceTestServer(refuse_oco=True, lock_balances=True) as server:
        bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}))
        seen = {}

        def market(i):
            if i == 0:
                seen["legs"] = sorted(o["type"] for o in server.open_orders())  # the limit was refused
                server.set_price("BTCUSDT", 52500)

        cycles(bot, 3, market)
        assert seen["legs"] == ["STOP_LOSS"]
        [trade] = bot.state.trades
        assert (trade.exit_reason, trade.exit_price) == ("take_profit", 52500.0)
        assert server.open_orders() == [] and server.balance("BTC") < 1e-4


def test_a_users_own_rate_limit_policy_replaces_the_built_in_one(tmp_path, server, monkeypatch):
    from gobot.config import settings_from_dict
    from gobot.host.plugin_manager import build_plugin_set
    from gobot.run.bot import Bot
    from gobot_hookspecs import hookimpl
    from servers.bots import NOT_NEEDED, binance_settings

    class CountingPolicy:  # the two-argument shape of docs/plugins.md's example
        def __init__(self):
            self.acquired, self.answers = [], []

        async def acquire(self, weight, priority):
            self.acquired.append((weight, priority))

        def on_response(self, status, headers):
            self.answers.append(status)

    class MyPolicy:
        policy = CountingPolicy()

        @hookimpl
        def gobot_rate_limit_policy(self):
            return self.policy

    keys(monkeypatch)
    settings = settings_from_dict(binance_settings(tmp_path / "state", server), "test.toml", base_dir=str(tmp_path))
    plugin_set = build_plugin_set(enable=["binance"], disable=NOT_NEEDED,
                                  extra_plugins=[("my_policy", MyPolicy()), ("ideas", Ideas())])
    cycles(Bot(settings, plugin_set), 1)
    policy = MyPolicy.policy
    assert len(policy.acquired) == len(server.state.requests) == len(policy.answers) > 3
    assert (20.0, 2) in [(w, int(p)) for w, p in policy.acquired]  # exchangeInfo: weight 20, an account-read priority


def test_start_up_reports_a_position_the_bot_does_not_know_about(tmp_path, server, monkeypatch):
    from decimal import Decimal

    keys(monkeypatch)
    server._position("BTCUSDT").update(amt=Decimal("0.01"), entry=Decimal("49000"))  # opened by hand, or by a lost run
    recorder = Recorder()
    bot = binance_bot(tmp_path / "state", server, recorder=recorder, market="futures")
    cycles(bot, 0)
    texts = [a.text for a in recorder.alerts if a.kind == "reconciliation"]
    assert texts == ["BTC/USDT: the exchange holds 0.01, the bot's state 0"]
