"""The Binance test server behaves like Binance where the plugin's correctness depends on it
(checked with the plain ccxt client, no gobot pacing): signatures, repeated client order ids,
weight limits with 429 and 418, and the injected faults."""

from __future__ import annotations

import asyncio

import ccxt
import pytest

from servers.binance import API_KEY, API_SECRET, BinanceTestServer, Fault


def client(server, secret=API_SECRET, market="spot"):
    import ccxt.async_support as accxt

    from gobot_plugins.binance.client import rewrite_urls

    cls = accxt.binance if market == "spot" else accxt.binanceusdm
    exchange = cls({"apiKey": API_KEY, "secret": secret, "enableRateLimit": False,
                    "options": {"fetchMarkets": {"types": ["spot" if market == "spot" else "linear"]},
                                "fetchCurrencies": False, "fetchMargins": False}})
    rewrite_urls(exchange.urls["api"], server.url)
    return exchange


def run(coro):
    return asyncio.run(coro)


def test_a_wrong_signature_is_refused():
    async def scenario(server):
        exchange = client(server, secret="not-the-secret")
        try:
            await exchange.load_markets()
            with pytest.raises(ccxt.AuthenticationError):  # -1022 on Binance's common table
                await exchange.fetch_balance()
        finally:
            await exchange.close()

    with BinanceTestServer() as server:
        run(scenario(server))


def test_a_client_order_id_is_refused_only_while_its_first_order_is_open():
    async def scenario(server):
        exchange = client(server)
        try:
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"clientOrderId": "same"})
            with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
                await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"clientOrderId": "same"})
            server.set_price("BTCUSDT", 39000)  # the resting buy fills
            await exchange.create_order("BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": "same"})
        finally:
            await exchange.close()
        return server.orders_with("same")

    with BinanceTestServer() as server:
        orders = run(scenario(server))
    assert [o["status"] for o in orders] == ["FILLED", "FILLED"]  # executed twice: why the plugin looks first


def test_weight_beyond_the_window_answers_429_with_retry_after_then_418():
    async def scenario(server):
        exchange = client(server)
        seen = []
        try:
            await exchange.load_markets()
            for _ in range(40):
                try:
                    await exchange.fetch_order_book("BTC/USDT", 100)  # weight 5
                    seen.append(200)
                except ccxt.DDoSProtection as exc:
                    seen.append(418 if " 418 " in str(exc) else 429)
                    assert int(exchange.last_response_headers["Retry-After"]) >= 1
        finally:
            await exchange.close()
        return seen

    with BinanceTestServer(window_seconds=60, weight_limit=50, ban_after_429s=2) as server:
        seen = run(scenario(server))
    assert seen[:6] == [200] * 6  # 20 (exchangeInfo) + 6 x 5 = 50
    assert seen[6:9] == [429, 418, 418]


def test_faults_drop_the_connection_or_answer_5xx_and_the_order_may_still_exist():
    async def scenario(server):
        exchange = client(server)
        outcomes = []
        try:
            await exchange.load_markets()
            server.inject(Fault(path="/api/v3/order", method="POST", action="drop", when="after"),
                          Fault(path="/api/v3/order", method="POST", action="status", status=503),
                          Fault(path="/api/v3/order", method="POST", action="status", status=503, text=True))
            for coid in ("a", "b", "c"):
                try:
                    await exchange.create_order("BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": coid})
                except ccxt.BaseError as exc:
                    outcomes.append(type(exc).__name__)
        finally:
            await exchange.close()
        return outcomes, [len(server.orders_with(c)) for c in "abc"]

    with BinanceTestServer() as server:
        outcomes, placed = run(scenario(server))
    assert outcomes == ["ExchangeNotAvailable", "OperationFailed", "ExchangeNotAvailable"]  # the pitfalls, as measured
    assert placed == [1, 1, 1]  # each was processed before its answer was lost
