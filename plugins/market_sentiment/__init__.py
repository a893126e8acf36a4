"""``market_sentiment``: the crowd's positioning on Binance USDT-M futures, one reading per symbol each cycle.

Answers ``gobot_scan_sentiment`` (contract 1.4) with ``Sentiment(source="market_sentiment",
symbol=...)`` for every snapshot symbol, read from Binance's public futures endpoints (no key, no
account) for the symbol's USDT-M perpetual (``BTC/USDT`` -> ``BTCUSDT``): the funding rate and its
trend, the open interest's change, the global long/short account ratio and the taker buy/sell
volume. ``fetch.py`` asks Binance (each input cached for its period), ``score.py`` condenses the
readings into named fields and one score in -1..1 (+1 = crowd long and greedy) whose ``inputs``
add up to it. docs/plugins.md ("Sentiment fields") names the fields, docs/exchanges.md what a
cycle costs.

Safe by default: an input that fails is named in ``missing`` and the score comes from the others;
when every input fails the last reading comes back ``stale`` with a note (or nothing); an exchange
error never leaves the hook. On a simulated clock (replay, backtest) it does nothing: live data
would be lookahead (the replay plugin answers from recorded readings). ``record = true`` appends
each fresh reading to ``<state_dir>/sentiment/market_sentiment.csv`` for later replays.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from gobot_hookspecs import PluginConfig, PluginStatus, Sentiment, hookimpl
from gobot_hookspecs.redact import mask_credentials
from gobot_hookspecs.sentiment import append_reading, recorded_path

from .score import FIELDS, INPUTS, condense

log = logging.getLogger(__name__)
NAME = "market_sentiment"


class MarketSentimentConfig(PluginConfig):
    api_url: str = Field("", description=("one base URL replacing Binance's futures REST endpoints (a gateway, a "
                                          "proxy, a test server); empty = Binance's"))
    testnet: bool = Field(False, description="read from Binance's futures testnet instead of the live market")
    symbols: list[str] = Field(default_factory=list,
                               description="symbols of [trading] symbols to read sentiment for; empty = all")
    period: Literal["5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"] = Field(
        "5m", description="period of Binance's statistics (open interest, long/short ratio, taker volume)")
    open_interest_periods: int = Field(12, ge=1, le=499,
                                       description="open interest change measured over this many periods")
    taker_periods: int = Field(3, ge=1, le=500, description="taker buy/sell volume summed over this many periods")
    funding_history: int = Field(6, ge=2, le=1000,
                                 description="settled funding rates read for the trend (the last against the rest)")
    funding_neutral: float = Field(0.0001, description="funding rate that counts as neutral (Binance's usual 0.01%)")
    weight_funding_rate: float = Field(0.25, ge=0, description="weight of the funding rate in the score (0 = off)")
    weight_funding_trend: float = Field(0.10, ge=0, description="weight of the funding rate's trend (0 = off)")
    weight_open_interest: float = Field(0.15, ge=0, description="weight of the open interest change (0 = off)")
    weight_long_short: float = Field(0.25, ge=0, description="weight of the global long/short account ratio (0 = off)")
    weight_taker: float = Field(0.25, ge=0, description="weight of the taker buy/sell volume (0 = off)")
    funding_rate_saturation: float = Field(0.0005, gt=0,
                                           description="funding rate above neutral that counts fully (+1)")
    funding_trend_saturation: float = Field(0.0002, gt=0, description="funding rate trend that counts fully")
    open_interest_saturation: float = Field(5.0, gt=0, description="open interest rise, %, that counts fully")
    long_short_saturation: float = Field(0.2, gt=0,
                                         description="share of long accounts above 0.5 that counts fully (0.2 = 70%)")
    taker_saturation: float = Field(0.2, gt=0,
                                    description="taker imbalance (buy - sell) / (buy + sell) that counts fully")
    publish_delay_seconds: float = Field(15.0, ge=0, le=300,
                                         description="wait this long after a period ends before asking for it")
    backoff_seconds: float = Field(60.0, gt=0,
                                   description="pause after a 429/418 without Retry-After, seconds (doubles)")
    request_timeout: float = Field(10.0, gt=0, description="one HTTP request's time limit, seconds")
    record: bool = Field(False, description="append each reading to <state_dir>/sentiment/market_sentiment.csv")

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"'{value}' is not an http(s) URL such as http://127.0.0.1:8080")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _some_weight(self) -> MarketSentimentConfig:
        if not any(getattr(self, f"weight_{name}") > 0 for name in INPUTS):
            raise ValueError("every weight_* is 0: give at least one input a weight above 0 (or disable the plugin)")
        return self


def describe_error(exc: BaseException) -> str:
    """One short line for ``note``: the exception's kind and its first words, credentials masked."""
    from .fetch import BackingOff, NotListed

    if isinstance(exc, (BackingOff, NotListed)):
        return str(exc)
    if isinstance(exc, (ValueError, KeyError, TypeError)):
        return f"malformed answer ({type(exc).__name__}: {mask_credentials(str(exc))[:120]})"
    return f"{type(exc).__name__}: {mask_credentials(str(exc))[:160]}"


class MarketSentiment:
    """One instance per bot: the client, the cache (in the fetcher) and each symbol's last reading."""

    def __init__(self) -> None:
        self.config = MarketSentimentConfig()
        self.fetcher: Any = None  # fetch.Fetcher, on the wall clock only
        self.last: dict[str, Sentiment] = {}
        self.last_cycle_requests: dict[str, int] = {}

    @hookimpl
    def gobot_config_model(self):
        return MarketSentimentConfig

    @hookimpl
    def gobot_startup(self, ctx):
        self.config = MarketSentimentConfig.of(ctx, NAME)
        if ctx.simulated:
            log.info("market_sentiment: simulated clock, no live sentiment (recorded readings come from replay)")
            return
        from .fetch import Fetcher, make_client

        self.fetcher = Fetcher(make_client(self.config, ctx.rate_limiter), self.config)

    @hookimpl
    async def gobot_shutdown(self):
        if self.fetcher is not None:
            await self.fetcher.client.close()
            self.fetcher = None

    @hookimpl
    async def gobot_scan_sentiment(self, ctx, snapshots):
        if ctx.simulated or self.fetcher is None:
            return None  # live data on a simulated clock would be lookahead
        symbols = [s.symbol for s in snapshots if not self.config.symbols or s.symbol in self.config.symbols]
        before = dict(self.fetcher.requests)
        answers = await asyncio.gather(*(self.safe_reading(ctx, symbol) for symbol in dict.fromkeys(symbols)))
        self.last_cycle_requests = {name: count - before.get(name, 0) for name, count in self.fetcher.requests.items()
                                    if count > before.get(name, 0)}
        return [reading for reading in answers if reading is not None] or None

    async def safe_reading(self, ctx, symbol: str) -> Sentiment | None:
        try:
            return await self.reading(ctx, symbol)
        except Exception as exc:  # never out of the hook: the trading goes on without it
            log.warning("market_sentiment: %s: %s", symbol, describe_error(exc))
            return self.stale(symbol, describe_error(exc))

    async def reading(self, ctx, symbol: str) -> Sentiment | None:
        from .fetch import gather_inputs

        now = ctx.now()
        present, failed = await gather_inputs(self.fetcher, self.inputs(), symbol, now, describe_error)
        if not present:
            return self.stale(symbol, "; ".join(f"{name}: {why}" for name, why in failed.items()))
        fields, inputs, score = condense(present, self.config)
        expires = min(self.fetcher.cache[(symbol, name)].expires for name in present)
        reading = Sentiment(source=NAME, symbol=symbol, time=now, score=score, fields=fields, inputs=inputs,
                            valid_until=expires + timedelta(seconds=self._period_seconds()),
                            missing=sorted(failed, key=INPUTS.index),
                            note="; ".join(f"{name}: {why}" for name, why in failed.items()))
        self.last[symbol] = reading
        if self.config.record and any(self.fetcher.cache[(symbol, name)].fetched == now for name in present):
            self.record(ctx, reading)  # only a reading with news: a cached repeat adds no row
        return reading

    def stale(self, symbol: str, why: str) -> Sentiment | None:
        """The last reading of ``symbol`` marked stale with the reason, or None when there is none."""
        last = self.last.get(symbol)
        if last is None:
            return None
        return last.model_copy(update={"stale": True, "missing": self.inputs(), "note": (
            f"could not refresh since {last.time:%Y-%m-%d %H:%M:%S} UTC: {why}")})

    def record(self, ctx, reading: Sentiment) -> None:
        """Append the reading; a new file gets every field and input as a column (not only the first reading's)."""
        try:
            append_reading(recorded_path(ctx.config.state_path, NAME), reading, fields=FIELDS, inputs=INPUTS)
        except OSError as exc:
            log.warning("market_sentiment: cannot record the reading: %s", exc)

    def inputs(self) -> list[str]:
        """The inputs asked for: those with a weight above 0."""
        return [name for name in INPUTS if getattr(self.config, f"weight_{name}") > 0]

    def _period_seconds(self) -> int:
        from .fetch import PERIOD_SECONDS

        return PERIOD_SECONDS[self.config.period]

    @hookimpl
    def gobot_status(self):
        if self.fetcher is None:
            return None
        scores = {symbol: (None if r.score is None else round(r.score, 3)) for symbol, r in self.last.items()}
        return PluginStatus(reason=f"{len(self.last)} symbols read", data={
            "scores": scores, "requests_last_cycle": self.last_cycle_requests,
            "requests_total": dict(self.fetcher.requests),
            "backing_off_until": (self.fetcher.blocked_until.isoformat()
                                  if self.fetcher.blocked_until is not None else None)})
