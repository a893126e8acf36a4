"""Binance market data for the scan, for ``ctx.candles`` and for ``gobot data download``.

The scan asks, per symbol and concurrently (the rate-limit policy orders them), for the closed
candles, the 24 h ticker, the top of the order book and, on futures, the funding rate and the open
interest — each through the read-through cache, so a second plugin asking the same thing within
its TTL costs no request. The snapshot's ``extras`` carry the spread, the funding rate, the open
interest and the market's trading rules (``min_notional``, ``min_amount``, ``amount_step``,
``price_step``), which sizers and risk checks may read. Without candles or a ticker a symbol has no
snapshot this cycle; an order book, funding rate or open interest that could not be fetched is
named in the snapshot's ``missing`` instead, and only the checks that need it fail closed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import datetime, timezone
from typing import Any, Callable

from gobot_hookspecs import CandleDownload, Candles, MarketSnapshot, Priority

from .cache import ReadThroughCache
from .client import make_exchange, priority, redact

log = logging.getLogger(__name__)
MARKET_FIELDS = ("id", "symbol", "type", "base", "quote", "settle", "spot", "swap", "linear", "contractSize",
                 "precision", "limits", "taker", "maker")


def ccxt_symbol(symbol: str, market_type: str) -> str:
    """``BTC/USDT`` on futures is ccxt's ``BTC/USDT:USDT`` (a USDT-settled perpetual)."""
    if market_type == "futures" and ":" not in symbol:
        return f"{symbol}:{symbol.split('/')[1]}"
    return symbol


def to_candles(rows: list[list], timeframe: str) -> Candles:
    return Candles.model_construct(
        timeframe=timeframe,
        timestamp=[int(r[0]) for r in rows], open=[float(r[1]) for r in rows], high=[float(r[2]) for r in rows],
        low=[float(r[3]) for r in rows], close=[float(r[4]) for r in rows], volume=[float(r[5] or 0) for r in rows],
    )


def disagreement(price: float, bid: float | None, ask: float | None, last_close: float | None) -> str:
    """Why a snapshot's prices cannot all be true, or "": the ticker's last price, the order book's
    top and the last candle come from separate answers, so one garbled answer shows as a
    disagreement. The last price must lie within 2% of the book (a crossed or non-positive book is
    itself garbled); without a book, within 20% of the last closed candle."""
    def sane(value: float | None) -> bool:
        return value is not None and math.isfinite(value) and value > 0

    if not sane(price):
        return f"last price {price}"
    if bid is not None or ask is not None:
        if not (sane(bid) and sane(ask) and bid <= ask):
            return f"order book top {bid} / {ask}"
        if not bid * 0.98 <= price <= ask * 1.02:
            return f"last price {price:g} outside the order book's {bid:g} / {ask:g}"
    elif sane(last_close) and not 0.8 <= price / last_close <= 1.25:
        return f"last price {price:g} against the last close {last_close:g}"
    return ""


class MarketData:
    def __init__(self, exchange: Any, config: Any, trading_symbols: list[str]):
        self.ex = exchange
        self.config = config
        self.market_type = config.market
        covered = [s for s in trading_symbols if not config.symbols or s in config.symbols]
        self.symbols = {s: ccxt_symbol(s, config.market) for s in covered}  # core symbol -> ccxt symbol
        self.cache = ReadThroughCache()

    async def load(self) -> None:
        # CRITICAL: without the markets not even a close or a stop can be sent, and a start-up (say
        # `gobot kill --close-positions` right after a ban) must wait out the exchange's ban, not fail.
        with priority(Priority.CRITICAL):
            await self.ex.load_markets()
        missing = [s for s, c in self.symbols.items() if c not in self.ex.markets]
        if missing:
            raise RuntimeError(f"Binance {self.market_type} has no market {', '.join(missing)} "
                               f"(check [trading] symbols)")

    # -- scan ------------------------------------------------------------------------------------

    async def scan(self, ctx: Any) -> list[MarketSnapshot]:
        results = await asyncio.gather(*(self._snapshot(ctx, s) for s in self.symbols), return_exceptions=True)
        snapshots = []
        for symbol, result in zip(self.symbols, results):
            if isinstance(result, BaseException):
                log.warning("binance: no market data for %s: %s: %s", symbol, type(result).__name__,
                            redact(str(result)))
                continue
            snapshots.append(result)
        return snapshots

    async def _snapshot(self, ctx: Any, symbol: str) -> MarketSnapshot:
        """One symbol's snapshot. The candles and the ticker (the price) are required: without them
        the symbol raises and is left out. The order book, the funding rate and the open interest
        are not: one that fails is named in ``missing`` and the snapshot carries the rest."""
        c = self.config
        sym = self.symbols[symbol]
        required = [
            self.candles(ctx, symbol, c.timeframe, c.lookback_candles),
            self._cached(("ticker", sym), c.ttl_ticker, lambda: self.ex.fetch_ticker(sym)),
        ]
        optional = {"order_book": self._cached(("book", sym, c.order_book_depth), c.ttl_order_book,
                                               lambda: self.ex.fetch_order_book(sym, c.order_book_depth))}
        if self.market_type == "futures":
            optional["funding_rate"] = self._cached(("funding", sym), c.ttl_funding,
                                                    lambda: self.ex.fetch_funding_rate(sym))
            optional["open_interest"] = self._cached(("oi", sym), c.ttl_open_interest,
                                                     lambda: self.ex.fetch_open_interest(sym))
        with priority(Priority.LOW):
            answers = await asyncio.gather(*required, *optional.values(), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, Exception):
                raise answer  # cancelled: not a missing answer
        candles, ticker = answers[:2]
        for answer in (candles, ticker):
            if isinstance(answer, Exception):
                raise answer
        got: dict[str, Any] = {}
        missing: list[str] = []
        for name, answer in zip(optional, answers[2:]):
            if isinstance(answer, Exception):
                log.warning("binance: %s %s missing this cycle (checks that need it fail closed): %s: %s",
                            symbol, name, type(answer).__name__, redact(str(answer)))
                missing.append(name)
            else:
                got[name] = answer
        book = got.get("order_book") or {}
        price = float(ticker.get("last") or ticker.get("close") or (candles.close[-1] if candles.close else 0))
        bid = float(book["bids"][0][0]) if book.get("bids") else ticker.get("bid")
        ask = float(book["asks"][0][0]) if book.get("asks") else ticker.get("ask")
        problem = disagreement(price, bid, ask, candles.close[-1] if candles.close else None)
        if problem:
            raise ValueError(f"the answers disagree: {problem}")
        extras: dict[str, Any] = {"data": "binance", "market": self.market_type}
        if bid and ask:
            extras["spread"] = ask - bid
            extras["spread_pct"] = (ask - bid) / ((ask + bid) / 2) * 100
        if ticker.get("baseVolume") is not None:
            extras["volume_24h_base"] = float(ticker["baseVolume"])
        if "funding_rate" in got:
            extras["funding_rate"] = got["funding_rate"].get("fundingRate")
            extras["next_funding_time"] = got["funding_rate"].get("fundingTimestamp")
        if "open_interest" in got:
            amount = got["open_interest"].get("openInterestAmount")
            extras["open_interest"] = amount
            extras["open_interest_value"] = (got["open_interest"].get("openInterestValue")
                                             or (float(amount) * price if amount else None))
        extras.update(self.rules(symbol))
        return MarketSnapshot(
            symbol=symbol, time=ctx.now(), price=price, candles=candles, bid=bid, ask=ask,
            volume_24h=float(ticker["quoteVolume"]) if ticker.get("quoteVolume") is not None else None, extras=extras,
            missing=missing,
        )

    def rules(self, symbol: str) -> dict[str, Any]:
        """The market's trading rules, for sizers and risk checks (``MarketSnapshot.extras``)."""
        market = self.ex.market(self.symbols[symbol])
        limits = market.get("limits") or {}
        precision = market.get("precision") or {}
        return {
            "min_notional": (limits.get("cost") or {}).get("min"),
            "min_amount": (limits.get("amount") or {}).get("min"),
            "max_amount": (limits.get("amount") or {}).get("max"),
            "amount_step": precision.get("amount"),
            "price_step": precision.get("price"),
        }

    async def _cached(self, key: tuple, ttl: float, load: Callable) -> Any:
        return await self.cache.get(key, ttl, load)

    async def candles(self, ctx: Any, symbol: str, timeframe: str, limit: int) -> Candles | None:
        """The last ``limit`` candles closed at ``ctx.now()`` (the forming one is left out)."""
        sym = self.symbols[symbol]
        if timeframe not in self.ex.timeframes:
            return None
        step = self.ex.parse_timeframe(timeframe) * 1000
        now_ms = int(ctx.now().timestamp() * 1000)
        per_page = 1000

        async def load() -> list[list]:
            rows: list[list] = []
            since = now_ms - now_ms % step - (limit + 1) * step
            while True:
                page = await self.ex.fetch_ohlcv(sym, timeframe, since=since, limit=min(per_page, limit + 1))
                rows.extend(r for r in page if not rows or r[0] > rows[-1][0])
                if len(page) < min(per_page, limit + 1) or not page or len(rows) >= limit + 1:
                    return rows
                since = page[-1][0] + step

        with priority(Priority.LOW):
            rows = await self.cache.get(("ohlcv", sym, timeframe, limit), self.config.ttl_ohlcv, load)
        closed = [r for r in rows if r[0] + step <= now_ms]
        return to_candles(closed[-limit:], timeframe)


# -- gobot data download ----------------------------------------------------------------------------


async def download(ctx: Any, config: Any, symbol: str, timeframe: str, since: datetime, until: datetime,
                   progress: Callable[[int, int], None]) -> CandleDownload:
    """Closed candles with open times in [since, until), page by page, paced by ``ctx.rate_limiter``."""
    exchange = make_exchange(config, market=config.market, policy=ctx.rate_limiter)
    try:
        with priority(Priority.LOW):
            await exchange.load_markets()
        sym = ccxt_symbol(symbol, config.market)
        if sym not in exchange.markets:
            raise ValueError(f"Binance {config.market} has no market {symbol}")
        if timeframe not in exchange.timeframes:
            raise ValueError(f"Binance has no timeframe {timeframe!r}; one of {', '.join(exchange.timeframes)}")
        step = exchange.parse_timeframe(timeframe) * 1000
        start = int(since.timestamp() * 1000)
        now_ms = int(time.time() * 1000)
        end = min(int(until.timestamp() * 1000), now_ms - now_ms % step)  # the forming candle is not closed
        rows: list[list] = []
        cursor = start
        total = max(1, end - start)
        while cursor < end:
            with priority(Priority.LOW):
                page = await exchange.fetch_ohlcv(sym, timeframe, since=cursor, limit=1000)
            page = [r for r in page if cursor <= r[0] < end]
            if not page:
                break
            rows.extend(page)
            cursor = page[-1][0] + step
            progress(min(cursor, end) - start, total)
        progress(total, total)
        market = exchange.market(sym)
        info = {key: market.get(key) for key in MARKET_FIELDS}
        info |= {"exchange": "binance", "market_type": config.market,
                 "fetched_at": datetime.now(timezone.utc).isoformat()}
        return CandleDownload(candles=to_candles(rows, timeframe), market=info)
    finally:
        await exchange.close()
