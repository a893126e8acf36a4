"""``binance``: Binance spot or USDT-M futures through ccxt — market data, orders, reconciliation.

Modes (``[plugins.binance] mode``): ``paper`` — Binance market data, the ``paper`` plugin fills the
orders (no keys, no orders sent); ``testnet`` — real orders on Binance's testnet (ccxt sandbox mode,
testnet keys); ``live`` — real orders, only with ``gobot start --live`` and ``BINANCE_API_KEY`` /
``BINANCE_API_SECRET`` in the environment. Off by default: replay stays the default market.

Every request is paced by the bot's rate-limit policy (enable ``adaptive_rate_limit`` with it) and
market data goes through a read-through cache with request coalescing. ``client.py`` builds the
ccxt client (``api_url``, sandbox, error mapping), ``execution.py`` places and watches orders,
``market_data.py`` scans and downloads. docs/exchanges.md is the user's guide.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field, field_validator

from gobot_hookspecs import PluginConfig, RiskVerdict, Side, hookimpl
from gobot_hookspecs.money import money, quote_of

from .client import floor_to_step

log = logging.getLogger(__name__)
NAME = "binance"
KEY_ENV, SECRET_ENV = "BINANCE_API_KEY", "BINANCE_API_SECRET"


class BinanceConfig(PluginConfig):
    mode: Literal["paper", "testnet", "live"] = Field(
        "paper", description=("paper: Binance data, simulated fills; testnet: orders on the testnet; "
                              "live: real orders (needs --live)")
    )
    market: Literal["spot", "futures"] = Field("spot",
                                               description="spot (ccxt.binance) or USDT-M futures (ccxt.binanceusdm)")
    testnet: bool = Field(False,
                          description="read market data from the testnet too in paper mode (mode = testnet implies it)")
    api_url: str = Field("", description=("one base URL replacing every Binance REST endpoint "
                                          "(a gateway, a proxy, a test server); empty = Binance's"))
    symbols: list[str] = Field(default_factory=list,
                               description="symbols of [trading] symbols this plugin covers; empty = all")
    leverage: int = Field(1, ge=1, le=125, description="futures: leverage set on each symbol before its first order")
    margin_mode: Literal["isolated", "cross"] = Field(
        "isolated", description="futures: margin mode set on each symbol before its first order")
    timeframe: str = Field("5m",
                           description="candle size the scan hands to the strategies: any Binance timeframe, 1m to 1M")
    lookback_candles: int = Field(200, ge=2, le=1000, description="closed candles handed to the scan each cycle")
    order_book_depth: int = Field(5, description="order-book levels fetched for the spread (5, 10, 20, 50 or 100)")
    ttl_ticker: float = Field(5.0, ge=0, description="cache lifetime of tickers, seconds")
    ttl_order_book: float = Field(2.0, ge=0, description="cache lifetime of order books, seconds")
    ttl_ohlcv: float = Field(30.0, ge=0, description="cache lifetime of candles, seconds")
    ttl_funding: float = Field(60.0, ge=0, description="cache lifetime of futures funding rates, seconds")
    ttl_open_interest: float = Field(60.0, ge=0, description="cache lifetime of futures open interest, seconds")
    request_timeout: float = Field(10.0, gt=0, description="one HTTP request's time limit, seconds")
    recv_window_ms: int = Field(5000, ge=100, le=60000,
                                description="Binance recvWindow: a request older than this is refused, ms")
    retry_backoff: float = Field(0.5, ge=0, description=("first pause before looking an order up again "
                                                         "after a timeout or 5xx, seconds (doubles)"))
    max_attempts: int = Field(3, ge=1, le=10, description="sends of one order (each after a look-up) before giving up")
    use_oco: bool = Field(True,
                          description="spot: protect a position with an OCO order list where the market allows it")
    stop_limit_offset_percent: float = Field(
        0.5, gt=0, le=10, description=("spot markets without STOP_LOSS orders: "
                                       "a STOP_LOSS_LIMIT's limit this far beyond its stop, %"))
    funding_check_minutes: float = Field(
        60.0, ge=0, description=("futures: ask for funding payments (GET /fapi/v1/income, weight 30) at most this "
                                 "often while a position is open, and at each close; minutes"))
    foreign_positions: Literal["alert", "adopt", "ignore"] = Field(
        "alert", description=("a position on the exchange that gobot did not open: "
                              "alert (once), adopt (book it and protect it) or ignore"))

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"'{value}' is not an http(s) URL such as http://127.0.0.1:8080")
        return value.rstrip("/")

    @field_validator("order_book_depth")
    @classmethod
    def _depth(cls, value: int) -> int:
        if value not in (5, 10, 20, 50, 100):
            raise ValueError("Binance serves 5, 10, 20, 50 or 100 levels")
        return value


class Binance:
    """One instance per bot: the exchange connection, the market-data cache and the trader."""

    def __init__(self) -> None:
        self.config = BinanceConfig()
        self.exchange: Any = None
        self.data: Any = None  # market_data.MarketData
        self.trader: Any = None  # execution.Trader

    @hookimpl
    def gobot_config_model(self):
        return BinanceConfig

    # -- life cycle ------------------------------------------------------------------------------

    @hookimpl
    async def gobot_startup(self, ctx):
        from .client import make_exchange
        from .execution import Trader
        from .market_data import MarketData

        self.config = config = BinanceConfig.of(ctx, NAME)
        self._check_mode(ctx, config)
        trading = config.mode in ("testnet", "live")
        key, secret = os.environ.get(KEY_ENV), os.environ.get(SECRET_ENV)
        if trading and not (key and secret):
            raise RuntimeError(f"[plugins.binance] mode = {config.mode} needs {KEY_ENV} and {SECRET_ENV} "
                               f"in the environment")
        self.exchange = make_exchange(config, market=config.market, policy=ctx.rate_limiter,
                                      api_key=key if trading else None, secret=secret if trading else None)
        try:
            self.data = MarketData(self.exchange, config, ctx.config.trading.symbols)
            await self.data.load()
            self.trader = Trader(self.exchange, config, config.market, self.data.symbols)
            if trading:
                await self.trader.reconcile(ctx)
        except Exception:
            await self.exchange.close()
            self.exchange = None
            raise

    def _check_mode(self, ctx, config: BinanceConfig) -> None:
        if getattr(ctx.rate_limiter, "never_waits", False):
            raise RuntimeError("no rate-limit policy is enabled (the default never waits): "
                               "add adaptive_rate_limit to [plugins] enable next to binance")
        if config.mode == "live" and not ctx.live:
            raise RuntimeError("[plugins.binance] mode = live needs `gobot start --live`")
        if ctx.live and config.mode == "paper":
            raise RuntimeError("`gobot start --live` needs [plugins.binance] mode = \"live\" or \"testnet\" "
                               "(it is \"paper\")")
        drift = abs((ctx.now() - datetime.now(timezone.utc)).total_seconds())
        if drift > 86400:
            raise RuntimeError("binance trades on the wall clock, but a simulated clock is running: "
                               "add replay to [plugins] disable")

    @hookimpl
    def gobot_environment(self, ctx):
        config = BinanceConfig.of(ctx, NAME)
        return "testnet" if config.mode == "testnet" else "live" if config.mode == "live" else None

    @hookimpl
    async def gobot_shutdown(self):
        if self.exchange is not None:
            await self.exchange.close()
            self.exchange = None

    # -- market data -----------------------------------------------------------------------------

    @hookimpl
    async def gobot_scan_market(self, ctx):
        if self.data is None:
            return None
        return await self.data.scan(ctx)

    @hookimpl
    async def gobot_fetch_candles(self, ctx, symbol, timeframe, limit):
        if self.data is None or symbol not in self.data.symbols:
            return None
        return await self.data.candles(ctx, symbol, timeframe, limit)

    @hookimpl
    async def gobot_download_candles(self, ctx, exchange, symbol, timeframe, since, until, progress):
        if exchange != NAME:
            return None
        from .market_data import download

        return await download(ctx, BinanceConfig.of(ctx, NAME), symbol, timeframe, since, until, progress)

    # -- risk: the exchange's own limits, before anything is sent ---------------------------------

    @hookimpl
    def gobot_risk_check(self, ctx, intent):
        if self.data is None or intent.symbol not in self.data.symbols:
            return None
        market = self.exchange.market(self.data.symbols[intent.symbol])
        if market.get("spot") and intent.side is Side.SELL:
            return RiskVerdict(approved=False, reason="a spot market cannot open a short; use market = \"futures\"")
        limits = market.get("limits") or {}
        cap = ctx.config.trading.max_position_usd
        min_cost = (limits.get("cost") or {}).get("min")
        if min_cost and min_cost > cap:
            return RiskVerdict(approved=False, reason=(f"the market's minimum notional {min_cost:g} "
                                                       f"exceeds max_position_usd {cap:g}: never upsized"))
        step = (market.get("precision") or {}).get("amount")
        amount = floor_to_step(intent.amount, step)
        min_amount = (limits.get("amount") or {}).get("min")
        max_amount = (limits.get("amount") or {}).get("max")
        if amount <= 0 or (min_amount and amount < min_amount):
            return RiskVerdict(approved=False, reason=(f"amount {intent.amount:.8g} rounds to {amount:g} "
                                                       f"at lot step {step or 0:g}, "
                                                       f"below the minimum {min_amount or 0:g}"))
        if max_amount and amount > max_amount:
            return RiskVerdict(approved=False, reason=f"amount {amount:g} above the market's maximum {max_amount:g}")
        notional = amount * intent.reference_price
        if min_cost and notional < min_cost:
            return RiskVerdict(approved=False, reason=(f"notional {money(notional, quote_of(intent.symbol))} after "
                                                       f"rounding is below the market's minimum {min_cost:g}"))
        return RiskVerdict(approved=True, reason=(f"within Binance's limits: {amount:g} at step {step or 0:g}, "
                                                  f"notional {money(notional, quote_of(intent.symbol))}"))

    # -- execution -------------------------------------------------------------------------------

    @hookimpl
    async def gobot_execute_order(self, ctx, intent):
        if self.trader is None or self.config.mode == "paper" or intent.symbol not in self.data.symbols:
            return None  # paper mode: the paper plugin fills on Binance's prices
        return await self.trader.execute(ctx, intent)

    @hookimpl
    async def gobot_sync_executions(self, ctx, snapshots):
        if self.trader is None or self.config.mode == "paper":
            return None
        return await self.trader.sync(ctx, {snap.symbol: snap.price for snap in snapshots})
