"""Reading the sentiment inputs from Binance USDT-M futures, each cached for its period, with backoff.

One request per input and symbol (``ENDPOINTS``), through ccxt's implicit API methods on a public
``binanceusdm`` client paced like the binance plugin's (``gobot_plugins.binance.client``: the bot's
rate-limit policy is asked for the request's weight at ``Priority.LOW`` before each request and
learns from each answer). Every answer is parsed strictly (``ValueError`` on anything Binance would
not send) and kept until the input's next period is published: the ``/futures/data`` statistics
and the funding rate until the next ``period`` boundary plus ``publish_delay_seconds``, the
settled funding history until the next full hour. A 429 or 418 stops every request until its
``Retry-After`` has passed (``backoff_seconds``, doubling, when it names none).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from gobot_hookspecs import Priority

log = logging.getLogger(__name__)

#: input -> (ccxt implicit method, Binance path)
ENDPOINTS = {
    "funding_rate": ("fapiPublicGetPremiumIndex", "/fapi/v1/premiumIndex"),
    "funding_trend": ("fapiPublicGetFundingRate", "/fapi/v1/fundingRate"),
    "open_interest": ("fapiDataGetOpenInterestHist", "/futures/data/openInterestHist"),
    "long_short": ("fapiDataGetGlobalLongShortAccountRatio", "/futures/data/globalLongShortAccountRatio"),
    "taker": ("fapiDataGetTakerlongshortRatio", "/futures/data/takerlongshortRatio"),
}
PERIOD_SECONDS = {"5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "4h": 14400, "6h": 21600,
                  "12h": 43200, "1d": 86400}
TESTNET_DATA_URL = "https://testnet.binancefuture.com/futures/data"  # ccxt's sandbox table lacks fapiData
MAX_BACKOFF_SECONDS = 900.0
NOT_LISTED_SECONDS = 86400.0  # a symbol Binance does not list is asked for again a day later


def exchange_id(symbol: str) -> str:
    """``BTC/USDT`` or ``BTC/USDT:USDT`` -> Binance's ``BTCUSDT`` (the USDT-M perpetual)."""
    return symbol.split(":")[0].replace("/", "").upper()


def make_client(config: Any, policy: Any) -> Any:
    """A public async ``ccxt.binanceusdm`` paced by ``policy``, pointed at ``api_url`` or the testnet."""
    import ccxt.async_support as ccxt

    from ..binance.client import paced_class, rewrite_urls

    class SentimentClient(paced_class(ccxt.binanceusdm)):  # type: ignore[misc]
        retry_after: float | None = None

        def handle_errors(self, code, reason, url, method, headers, body, response, request_headers,
                          request_body):
            if code in (418, 429):  # kept here: last_response_headers is shared by concurrent requests
                try:
                    self.retry_after = float((headers or {}).get("Retry-After"))
                except (TypeError, ValueError):
                    self.retry_after = None
            return super().handle_errors(code, reason, url, method, headers, body, response, request_headers,
                                         request_body)

    client = SentimentClient({"enableRateLimit": False, "timeout": int(config.request_timeout * 1000),
                              "options": {"adjustForTimeDifference": False}})
    if config.testnet:
        client.set_sandbox_mode(True)
        client.urls["api"].setdefault("fapiData", TESTNET_DATA_URL)
    if config.api_url:
        client.gobot_originals = rewrite_urls(client.urls["api"], config.api_url)
    client.gobot_policy = policy
    client.gobot_scope = "binance:futures" + (":testnet" if config.testnet else "")
    return client


# -- parsing Binance's answers ------------------------------------------------------------------------


def number(row: dict, key: str) -> float:
    value = float(row[key])  # Binance sends decimals as strings; KeyError/TypeError/ValueError = malformed
    if not math.isfinite(value):
        raise ValueError(f"{key} {row[key]!r} is not finite")
    return value


def rows(answer: Any, time_key: str, least: int = 1) -> list[dict]:
    """The answer's rows, oldest first (sorted by ``time_key``, an int or a string of digits)."""
    if not isinstance(answer, list) or len(answer) < least or not all(isinstance(r, dict) for r in answer):
        raise ValueError(f"expected a list of at least {least} rows, got {str(answer)[:80]}")
    return sorted(answer, key=lambda r: int(r[time_key]))


def parse(name: str, answer: Any) -> dict[str, float]:
    """An input's values from its endpoint's answer (the shapes of Binance's USDⓈ-M docs)."""
    if name == "funding_rate":  # "Mark Price": one object with symbol
        if not isinstance(answer, dict):
            raise ValueError(f"expected an object, got {str(answer)[:80]}")
        return {"funding_rate": number(answer, "lastFundingRate")}
    if name == "funding_trend":  # "Get Funding Rate History": ascending by fundingTime
        rates = [number(r, "fundingRate") for r in rows(answer, "fundingTime", least=2)]
        earlier = rates[:-1]
        return {"funding_rate_trend": rates[-1] - sum(earlier) / len(earlier),
                "funding_rate_avg": sum(rates) / len(rates)}
    if name == "open_interest":  # "Open Interest Statistics"
        found = rows(answer, "timestamp", least=2)
        first, last = found[0], found[-1]
        oi0, oi1 = number(first, "sumOpenInterest"), number(last, "sumOpenInterest")
        value0, value1 = number(first, "sumOpenInterestValue"), number(last, "sumOpenInterestValue")
        if oi0 <= 0 or oi1 <= 0 or value0 <= 0:
            raise ValueError("open interest must be positive")
        price0, price1 = value0 / oi0, value1 / oi1  # the value is open interest x the price then
        return {"open_interest": oi1, "open_interest_value": value1,
                "open_interest_change_pct": (oi1 / oi0 - 1) * 100, "price_change_pct": (price1 / price0 - 1) * 100}
    if name == "long_short":  # "Long/Short Ratio"
        last = rows(answer, "timestamp")[-1]
        return {"long_short_ratio": number(last, "longShortRatio"), "long_account": number(last, "longAccount"),
                "short_account": number(last, "shortAccount")}
    if name == "taker":  # "Taker Buy/Sell Volume"
        found = rows(answer, "timestamp")
        buy, sell = sum(number(r, "buyVol") for r in found), sum(number(r, "sellVol") for r in found)
        if buy < 0 or sell < 0:
            raise ValueError("negative volume")
        return {"taker_buy_sell_ratio": buy / sell if sell > 0 else number(found[-1], "buySellRatio"),
                "taker_buy_volume": buy, "taker_sell_volume": sell}
    raise KeyError(name)


# -- the fetcher: cache, backoff, counts -------------------------------------------------------------


class BackingOff(Exception):
    """Not asked: the exchange said 429/418 and its Retry-After has not passed."""


class NotListed(Exception):
    """Not asked: Binance answered "Invalid symbol" for this symbol lately (no USDT-M perpetual)."""


@dataclass
class Cached:
    values: dict[str, float]
    fetched: datetime
    expires: datetime


@dataclass
class Fetcher:
    """Fetches an input for a symbol through the cache; counts the requests it makes per input."""

    client: Any
    config: Any
    cache: dict[tuple[str, str], Cached] = field(default_factory=dict)
    blocked_until: datetime | None = None
    backoff: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)  # input -> requests sent, all time
    not_listed: dict[str, datetime] = field(default_factory=dict)  # symbol -> asked again after

    def params(self, name: str, symbol_id: str) -> dict[str, Any]:
        period = self.config.period
        if name == "funding_rate":
            return {"symbol": symbol_id}
        if name == "funding_trend":
            return {"symbol": symbol_id, "limit": self.config.funding_history}
        if name == "open_interest":
            return {"symbol": symbol_id, "period": period, "limit": self.config.open_interest_periods + 1}
        if name == "taker":
            return {"symbol": symbol_id, "period": period, "limit": self.config.taker_periods}
        return {"symbol": symbol_id, "period": period, "limit": 1}

    def expiry(self, name: str, now: datetime) -> datetime:
        """When the next value of the input is published: the next period boundary (plus the publish delay)."""
        period = 3600 if name == "funding_trend" else PERIOD_SECONDS[self.config.period]
        delay = self.config.publish_delay_seconds
        epoch = now.timestamp() - delay
        return datetime.fromtimestamp((epoch // period + 1) * period + delay, tz=now.tzinfo)

    async def get(self, name: str, symbol: str, now: datetime) -> dict[str, float]:
        key = (symbol, name)
        cached = self.cache.get(key)
        if cached is not None and now < cached.expires:
            return cached.values
        if self.blocked_until is not None and now < self.blocked_until:
            raise BackingOff(f"backing off until {self.blocked_until:%H:%M:%S} UTC (rate limited)")
        if symbol in self.not_listed and now < self.not_listed[symbol]:
            raise NotListed(f"{exchange_id(symbol)} is not a Binance USDT-M perpetual (asked again after "
                            f"{self.not_listed[symbol]:%Y-%m-%d %H:%M} UTC)")
        answer = await self.request(name, symbol, now)
        values = parse(name, answer)
        self.cache[key] = Cached(values, now, self.expiry(name, now))
        return values

    async def request(self, name: str, symbol: str, now: datetime) -> Any:
        import ccxt

        from ..binance.client import priority

        method, _ = ENDPOINTS[name]
        self.requests[name] = self.requests.get(name, 0) + 1
        try:
            with priority(Priority.LOW):  # market data: orders and closes go first
                answer = await getattr(self.client, method)(self.params(name, exchange_id(symbol)))
        except ccxt.DDoSProtection:  # 429 and 418 (a ban)
            self.rate_limited(now)
            raise
        except ccxt.BadSymbol:  # -1121 "Invalid symbol": no need to ask every cycle
            self.not_listed[symbol] = now + timedelta(seconds=NOT_LISTED_SECONDS)
            raise
        self.backoff = 0.0
        return answer

    def rate_limited(self, now: datetime) -> None:
        wait = self.client.retry_after
        if wait is None:
            self.backoff = min(MAX_BACKOFF_SECONDS, self.backoff * 2 or self.config.backoff_seconds)
            wait = self.backoff
        self.client.retry_after = None
        until = now + timedelta(seconds=wait)
        self.blocked_until = max(until, self.blocked_until or until)
        log.warning("market_sentiment: Binance rate-limited the sentiment requests; none until %s UTC",
                    f"{self.blocked_until:%H:%M:%S}")


async def gather_inputs(fetcher: Fetcher, names: list[str], symbol: str, now: datetime,
                        describe: Callable[[BaseException], str]) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """({input: values} of the inputs read, {input: why not} of the others), concurrently."""
    results = await asyncio.gather(*(fetcher.get(name, symbol, now) for name in names), return_exceptions=True)
    present, failed = {}, {}
    for name, result in zip(names, results):
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            failed[name] = describe(result)
        else:
            present[name] = result
    return present, failed
