"""The data that crosses hooks: pydantic models shared by the core and every plugin.

Times are timezone-aware UTC datetimes; prices and a fill's fee are in the symbol's quote
currency; capital, notionals, equity and a trade's P&L are in the portfolio currency (the one
quote of the traded symbols, else ``[trading] currency``: ``gobot_hookspecs.money``); amounts are
in the base asset; percentages are plain numbers (2.0 means 2 %).
"""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from .fills import Exit, resting_exit


class _Model(BaseModel):
    # defer_build: a model's validator is built when first used, not at import (a backtest uses few of them)
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Action(str, enum.Enum):
    """What a signal proposes."""

    LONG = "LONG"
    SHORT = "SHORT"
    HOLD = "HOLD"


class Side(str, enum.Enum):
    """Order side on the exchange."""

    BUY = "buy"
    SELL = "sell"


class Severity(str, enum.Enum):
    """How loudly an alert should be delivered."""

    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class Priority(enum.IntEnum):
    """Request priority for rate-limit policies: lower value goes first."""

    CRITICAL = 0  # cancel, close position, emergency stop
    HIGH = 1  # new orders
    NORMAL = 2  # account reads
    LOW = 3  # market data


class Candles(_Model):
    """OHLCV candles in columns (oldest first), cheap to hand to numpy with ``numpy.asarray``."""

    timeframe: str = Field(description="e.g. '5m', '1h'")
    timestamp: list[int] = Field(default_factory=list, description="candle open time, epoch ms UTC")
    open: list[float] = Field(default_factory=list)
    high: list[float] = Field(default_factory=list)
    low: list[float] = Field(default_factory=list)
    close: list[float] = Field(default_factory=list)
    volume: list[float] = Field(default_factory=list)

    def __len__(self) -> int:
        return len(self.timestamp)

    def tail(self, n: int) -> Candles:
        """The last ``n`` candles."""
        return Candles.model_construct(
            timeframe=self.timeframe,
            **{k: getattr(self, k)[-n:] for k in ("timestamp", "open", "high", "low", "close", "volume")},
        )


class ChartImage(_Model):
    """A chart of one symbol and timeframe as a PNG image (``gobot_render_chart``, ``ctx.chart``)."""

    model_config = ConfigDict(extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    symbol: str
    timeframe: str = Field(description="e.g. '5m', '15m'")
    png: bytes = Field(repr=False, description="the PNG file's bytes")
    width: int = Field(gt=0, description="pixels")
    height: int = Field(gt=0, description="pixels")
    candles: int = Field(0, ge=0, description="candles drawn; 0 for a screenshot of a page")
    end: datetime | None = Field(None, description="close time of the newest candle drawn (None for a screenshot)")
    origin: str = Field("", description="how it was made: 'render', or the page screenshotted (no secrets)")
    caption: str = Field("", description="what it shows, in words (indicators drawn), for prompts and records")
    source: str = Field("", description="plugin that produced it (filled in by the core)")

    @property
    def sha256(self) -> str:
        """Hex digest of the PNG: the same picture has the same digest (cache keys, file names)."""
        return hashlib.sha256(self.png).hexdigest()


class Sentiment(_Model):
    """One sentiment reading, attached to the snapshots it concerns (contract 1.4).

    Answered by ``gobot_scan_sentiment`` plugins (``market_sentiment``, ``fear_greed``) or replayed
    from recorded files (``gobot_hookspecs.sentiment``); read as ``snapshot.sentiment[source]``. The
    score's sign is the crowd's: +1 = extreme greed / crowded longs, -1 = extreme fear / crowded
    shorts, 0 = neutral. A reading past ``valid_until`` is marked ``stale`` by the core and kept:
    a check that needs fresh sentiment fails closed on it, the others ignore it.
    """

    source: str = Field(description="what measured it, e.g. 'market_sentiment', 'fear_greed' (the key in "
                        "MarketSnapshot.sentiment)")
    symbol: str | None = Field(None, description="the symbol it is about; None = market-wide (attached to every "
                               "snapshot)")
    time: datetime = Field(description="when the source measured or published it")
    valid_until: datetime | None = Field(None, description="when it is due to be replaced; later = stale")
    score: float | None = Field(None, ge=-1.0, le=1.0, description="-1 (fear, crowded shorts) ... +1 (greed, "
                                "crowded longs); None = not enough inputs")
    fields: dict[str, float | str | None] = Field(default_factory=dict, description="the named readings, e.g. "
                                                  "funding_rate, long_short_ratio, value, classification")
    inputs: dict[str, float] = Field(default_factory=dict, description="each input's part of the score (they add up "
                                     "to it): how the score was made")
    stale: bool = Field(False, description="past valid_until, or the source could not be refreshed")
    missing: list[str] = Field(default_factory=list, description="inputs that could not be fetched this time")
    note: str = Field("", description="why it is stale or partial, in words")


class MarketSnapshot(_Model):
    """What the market scan saw for one symbol at the cycle's time."""

    symbol: str
    time: datetime
    price: float = Field(description="last traded price (the latest close in replay)")
    candles: Candles
    bid: float | None = None
    ask: float | None = None
    volume_24h: float | None = None
    source: str = Field("", description="plugin that produced it (filled in by the core)")
    extras: dict[str, Any] = Field(
        default_factory=dict,
        description="funding rate, open interest, ...; 'min_notional': the market's smallest order notional, "
        "quote currency (exchange plugins fill it in; risk_limits vetoes smaller orders)",
    )
    missing: list[str] = Field(
        default_factory=list,
        description="what could not be fetched this cycle, e.g. 'order_book', 'funding_rate', 'open_interest': "
        "the snapshot carries everything else; a check that needs a missing field fails closed",
    )
    sentiment: dict[str, Sentiment] = Field(
        default_factory=dict,
        description="sentiment readings by source (gobot_scan_sentiment; contract 1.4), market-wide ones included",
    )


class Signal(_Model):
    """A trading idea. HOLD is a real answer: it says the plugin looked and chose not to act."""

    symbol: str
    action: Action
    confidence: float = Field(ge=0.0, le=1.0)
    entry: float | None = Field(None, gt=0, description="reference entry price; None = market")
    stop_loss: float | None = Field(None, gt=0, description="price; None = use [trading].stop_loss_percent")
    take_profit: float | None = Field(None, gt=0, description="price; None = use [trading].take_profit_percent")
    rationale: str = ""
    timeframe: str | None = None
    strategy: str | None = Field(None, description="strategy name, when the idea comes from one")
    strategy_version: int | None = None
    source: str = Field("", description="plugin that produced it (filled in by the core)")
    learnings_used: list[str] = Field(default_factory=list, description="ids of learnings the plugin used")


class OrderIntent(_Model):
    """An order the bot wants to place, before risk checks and execution.

    ``purpose`` is ``open`` for new exposure (risk-checked) or ``close`` for an exit
    (never blocked by risk: a risk rule must not trap a position).
    """

    id: str = Field(description="deterministic: same cycle + same idea -> same id")
    client_order_id: str = Field(description="idempotency key sent to the exchange")
    symbol: str
    side: Side
    purpose: Literal["open", "close"] = "open"
    notional_usd: float = Field(ge=0, description="size in the portfolio currency (the name is historical)")
    reference_price: float = Field(gt=0)
    quote_rate: float = Field(1.0, gt=0, description="one unit of the symbol's quote in the portfolio currency when "
                              "the intent was made (1 when they are the same; gobot_hookspecs.money)")
    stop_loss: float | None = None
    take_profit: float | None = None
    signal: Signal | None = None
    created_at: datetime
    priority: Priority = Field(Priority.HIGH, description="CRITICAL for emergency closes, HIGH otherwise")
    reason: str = Field("", description="why: the signal's rationale, or the close request's reason")

    @property
    def amount(self) -> float:
        """The base amount: the notional in the symbol's quote (``notional_usd / quote_rate``) at the price."""
        return self.notional_usd / self.quote_rate / self.reference_price

    @property
    def direction(self) -> Action:
        return Action.LONG if self.side is Side.BUY else Action.SHORT


class RiskVerdict(_Model):
    """One risk plugin's answer on one intent. Any ``approved=False`` blocks the trade."""

    approved: bool
    reason: str = ""
    plugin: str = Field("", description="filled in by the core")
    symbol: str = Field("", description="the intent's symbol (filled in by the core)")
    intent_id: str = Field("", description="the intent judged (filled in by the core)")


class RiskCounter(_Model):
    """One limit of a risk plugin as ``gobot risk status`` shows it: a counter against its limit."""

    name: str = Field(description="what is counted, e.g. 'trades today' or 'consecutive losses'")
    value: float | str | None = Field(None, description="where it stands now (None = unknown)")
    limit: float | str | None = Field(None, description="the limit it is held against (None = no limit)")
    unit: str = Field("", description="e.g. ctx.currency for money ('USDT', 'BTC'), 'trades', 'min'")
    blocking: bool = Field(False, description="True when this limit stops new positions right now")
    note: str = Field("", description="anything else worth a line: until when, since when, why unknown")


class RiskStatus(_Model):
    """A risk plugin's report for ``gobot risk status``: its state, its counters, and whether it lets trades through."""

    allows_trading: bool = Field(description="False when this plugin would veto every new position now")
    reason: str = Field(description="why trading is or is not allowed now, one line")
    state: str = Field("", description="a state machine's state, e.g. CLOSED, OPEN, HALF_OPEN (empty if none)")
    counters: list[RiskCounter] = Field(default_factory=list)
    plugin: str = Field("", description="filled in by the core")


class Order(_Model):
    """An order as the executor placed it."""

    id: str
    client_order_id: str
    intent_id: str
    symbol: str
    side: Side
    purpose: Literal["open", "close"] = "open"
    type: str = "market"
    amount: float = Field(ge=0)
    price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    status: Literal["new", "open", "filled", "canceled", "rejected", "proposed"] = "new"
    created_at: datetime
    executor: str = ""
    reason: str = ""


class Fill(_Model):
    """An execution. ``reason`` says why an exit happened: signal, stop_loss, take_profit, ..."""

    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    purpose: Literal["open", "close"]
    amount: float = Field(gt=0)
    price: float = Field(gt=0)
    fee: float = Field(0.0, ge=0, description="in quote currency (a commission paid in another asset, "
                                              "converted at the fill's time)")
    time: datetime
    reason: str = "signal"
    commissions: dict[str, float] = Field(
        default_factory=dict,
        description="the commissions as the exchange charged them, in their own assets: {'BNB': 0.0000375}")


class Funding(_Model):
    """A funding payment on a perpetual futures position, as the exchange booked it (reported by an
    executor from ``gobot_sync_executions``; the core books each ``id`` once)."""

    id: str = Field(description="the exchange's id for the payment (Binance's tranId): the core books it once")
    symbol: str
    amount: float = Field(description="in the symbol's quote currency: positive received, negative paid")
    time: datetime
    rate: float | None = Field(None, description="the funding rate applied, when the exchange says")


class Position(_Model):
    """An open position with its resting stop-loss and take-profit: as the core's portfolio tracks it,
    and as the ``paper`` executor remembers it (``model_dump`` in its plugin state). The backtester's
    ``OpenPosition`` is its twin for the hot loop; both exit through ``fills.resting_exit``."""

    symbol: str
    direction: Action
    amount: float
    entry_price: float
    entry_fee: float = 0.0
    opened_at: datetime
    stop_loss: float | None = None
    take_profit: float | None = None
    confidence: float | None = None
    strategy: str | None = None
    strategy_version: int | None = None
    client_order_id: str = ""
    funding: float = Field(0.0, description="funding received (+) or paid (-) so far, in the portfolio currency "
                                            "(each payment at its time's rate); already in cash, not in "
                                            "``unrealised_pnl``")

    @property
    def sign(self) -> int:
        """``+1`` long, ``-1`` short: the direction as the fill rules (``gobot_hookspecs.fills``) take it."""
        return 1 if self.direction is Action.LONG else -1

    def unrealised_pnl(self, price: float) -> float:
        return self.sign * (price - self.entry_price) * self.amount

    def resting_exit(self, open_: float, high: float, low: float, slippage_percent: float) -> Exit | None:
        """Where the stop-loss or take-profit fills inside one candle, and why; None if it touches neither."""
        return resting_exit(self.sign, self.stop_loss, self.take_profit, open_, high, low, slippage_percent)

    def notional(self, price: float) -> float:
        return abs(self.amount * price)


class Trade(_Model):
    """A closed position with its result."""

    symbol: str
    direction: Action
    amount: float
    entry_price: float
    exit_price: float
    opened_at: datetime
    closed_at: datetime
    fees: float
    pnl: float = Field(description="net of fees and funding, portfolio currency: (direction x (exit - entry) x "
                                   "amount - fees) at the close's rate, plus ``funding``")
    funding: float = Field(0.0, description="funding received (+) or paid (-) while the position was open, portfolio "
                                            "currency (each payment at its time's rate); included in ``pnl``")
    exit_reason: str
    confidence: float | None = None
    strategy: str | None = None
    strategy_version: int | None = None
    client_order_id: str = Field("", description="the opening order's client order id")
    initial_stop_loss: float | None = Field(None, description="stop price at entry (for the R multiple)")


#: The parts of a ``DriftMeasurement`` that add up to its ``gap`` (docs/drift.md has the formulas).
DRIFT_PARTS = ("missed_or_partial", "entry_delay", "entry_slippage", "exit_delay", "exit_slippage", "fees",
               "funding", "funding_other")


class DriftMeasurement(_Model):
    """One trade measured against its paper twin (the same order filled by the paper rules on the same
    candles): the gap between the two P&Ls, in the portfolio currency, split into parts that add up to it."""

    client_order_id: str = Field(description="the opening order's client order id (the trade's key)")
    mode: Literal["paper", "testnet", "live"] = Field(description="where the measured orders went")
    kind: Literal["matched", "missed", "paper_only"] = Field(
        description="matched: both traded; missed: the live order never filled (the twin traded alone); "
                    "paper_only: only the twin traded (a live entry vetoed by a drift breach)")
    symbol: str
    direction: Action
    strategy: str | None = None
    strategy_version: int | None = None
    opened_at: datetime
    closed_at: datetime
    live_pnl: float | None = Field(None, description="the live trade's P&L net of fees (None: paper_only)")
    twin_pnl: float
    gap: float | None = Field(None, description="live_pnl - twin_pnl, the sum of the parts (None: paper_only)")
    live_r: float | None = None
    twin_r: float | None = None
    risk: float | None = Field(None, description="the live trade's initial risk: |entry - stop| x amount")
    missed_or_partial: float = 0.0
    entry_delay: float = 0.0
    entry_slippage: float = 0.0
    exit_delay: float = 0.0
    exit_slippage: float = 0.0
    fees: float = Field(0.0, description="twin fees - live fees (BNB commissions valued in the quote)")
    funding: float = Field(0.0, description="the live trade's funding (``Trade.funding``): the twin pays none")
    funding_other: float = Field(0.0, description="the rest of the live P&L the fills, fees and funding do not "
                                                  "explain (a portfolio currency other than the quote)")
    commissions: dict[str, float] = Field(default_factory=dict, description="the live commissions as charged, "
                                                                            "in their own assets")
    exit_reason: str | None = None
    twin_exit_reason: str | None = None

    @property
    def gap_r(self) -> float | None:
        """The gap in R: over the live trade's initial risk (None without one)."""
        return self.gap / self.risk if self.gap is not None and self.risk else None


class StorySignal(_Model):
    """The signal that opened a trade, as the strategy or model gave it."""

    source: str = Field(description="the plugin that produced it")
    action: Action
    confidence: float
    rationale: str = ""
    time: datetime | None = None
    timeframe: str | None = None


class StoryVerdict(_Model):
    """One risk plugin's verdict on the intent that opened a trade."""

    plugin: str
    approved: bool
    reason: str = ""


class StoryFill(_Model):
    """One execution of a trade (entry or exit), fees in the quote currency and as charged."""

    time: datetime
    side: Side
    purpose: Literal["open", "close"]
    price: float
    amount: float
    fee: float = 0.0
    commissions: dict[str, float] = Field(default_factory=dict)
    reason: str = ""


class TradeStory(_Model):
    """A trade with why it happened: the signal, every risk verdict, the sizing, the fills and, for a
    vision signal, the chart images the model saw and its answer. What a chart's drill-down shows.

    Open positions are stories too (``exit_time`` None). ``id`` is stable across calls (the archive's
    trade key, the opening client order id, or the backtester's trade number)."""

    id: str
    symbol: str
    direction: Action
    amount: float
    entry_time: datetime
    entry_price: float
    exit_time: datetime | None = None
    exit_price: float | None = None
    exit_reason: str | None = None
    stop_loss: float | None = Field(None, description="the stop at entry")
    take_profit: float | None = Field(None, description="the target at entry")
    pnl: float | None = Field(None, description="net of fees, in ``currency``; None while open")
    fees: float = 0.0
    currency: str = Field("", description="the quote currency the figures are in")
    strategy: str | None = None
    strategy_version: int | None = None
    signal: StorySignal | None = None
    verdicts: list[StoryVerdict] = Field(default_factory=list)
    sizing: str = Field("", description="how the size was chosen, one line: the sizer and its reason")
    fills: list[StoryFill] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list,
                              description="the charts a vision model saw, as data: URIs (image/png)")
    answer: str | None = Field(None, description="the vision model's answer, as it gave it")


class ExecutionError(_Model):
    """An order that could not be placed or confirmed. The circuit breaker listens for these."""

    message: str
    kind: str = Field("error", description="e.g. network, rejected, rate_limited, banned")
    symbol: str | None = None
    intent_id: str | None = None
    retryable: bool = False
    plugin: str = ""


class ExecutionFailed(Exception):
    """Raise from ``gobot_execute_order`` (or a rate-limit policy) to say *how* an order failed.

    The core unwraps it into the ``ExecutionError`` it carries (``kind`` such as ``network``,
    ``timeout``, ``rejected``, ``rate_limited``, ``banned``; ``retryable``), fills in ``plugin``,
    ``symbol`` and ``intent_id`` when empty, and emits ``gobot_on_execution_error`` with it. Any
    other exception becomes an ``ExecutionError`` of kind ``error``.
    """

    def __init__(self, error: ExecutionError):
        super().__init__(error.message)
        self.error = error


class RateLimit(_Model):
    """One budget an exchange advertises (Binance's ``exchangeInfo`` ``rateLimits``), in a neutral shape.

    Handed to a rate-limit policy's optional ``set_limits(limits, scope)`` by exchange plugins.
    """

    kind: Literal["weight", "orders", "requests"] = Field(
        description="weight: request weight; orders: new orders; requests: raw request count"
    )
    limit: int = Field(gt=0, description="units allowed per window")
    window_seconds: float = Field(gt=0, description="length of the window, seconds")


class CandleDownload(_Model):
    """What ``gobot_download_candles`` returns: the candles and the market's trading rules."""

    candles: Candles
    market: dict[str, Any] = Field(
        default_factory=dict,
        description="precision and limits as the exchange reports them (ccxt's unified market shape)"
    )


class Alert(_Model):
    """Something a human should hear about. ``kind`` is a stable key listed in ``ALERT_KINDS``."""

    kind: str
    title: str
    text: str = ""
    severity: Severity = Severity.INFO
    data: dict[str, Any] = Field(default_factory=dict)
    time: datetime | None = None


class AlertKind(NamedTuple):
    """What one alert kind means: its usual severity, who raises it, and when."""

    severity: Severity
    raised_by: str
    description: str


#: The alert kinds of the core and of the trading, risk, exchange and watchdog events every channel
#: should carry, in one place (a test checks every ``Alert(kind=...)`` of the core against it).
#: Channels may format the kinds they know specially and must deliver any other kind as it is: a
#: plugin may raise kinds of its own (prefer its name as a prefix, e.g. ``vision_error``).
#: ``gobot alerts test`` sends one sample of each kind listed here.
ALERT_KINDS: dict[str, AlertKind] = {
    "run_started": AlertKind(Severity.INFO, "core", "the bot started a run or resumed an unfinished one"),
    "run_stopped": AlertKind(
        Severity.INFO, "core", "the run ended, for any reason; WARNING after the kill switch, CRITICAL after a crash"
    ),
    "validation_skipped": AlertKind(
        Severity.CRITICAL, "core", "gobot start --live --skip-validation: live without a passing readiness report"
    ),
    "run_completed": AlertKind(
        Severity.INFO, "core",
        "a run finished: max_iterations, the end of the replay data, or a completion target "
        "(daily_profit_target; max_daily_loss is WARNING) was reached",
    ),
    "daily_summary": AlertKind(
        Severity.INFO, "core",
        "a UTC day of the bot's clock ended: trades closed, P&L, win rate, equity; data['equity_curve'] "
        "holds [time, equity] pairs of the day's cycles (channels may draw it)",
    ),
    "trade_opened": AlertKind(Severity.INFO, "core", "a fill opened a position"),
    "trade_closed": AlertKind(Severity.INFO, "core", "a position was closed; the title carries the P&L net of fees"),
    "order_proposed": AlertKind(
        Severity.INFO, "core", "[trading] auto_execute = false: an approved order was proposed, not sent"
    ),
    "risk_veto": AlertKind(Severity.WARNING, "core", "risk checks blocked a new position; the text has every reason"),
    "loss_limit": AlertKind(
        Severity.CRITICAL, "risk_limits",
        "a daily, weekly or monthly loss limit was reached: no new trades until it resets"
    ),
    "execution_error": AlertKind(Severity.CRITICAL, "core", "an order could not be placed or confirmed"),
    "order_not_placed": AlertKind(
        Severity.WARNING, "exchange executors",
        "an order whose sending was not confirmed turned out never to exist on the exchange"
    ),
    "unprotected_position": AlertKind(
        Severity.CRITICAL, "exchange executors", "a position has no stop-loss on the exchange (placing it failed)"
    ),
    "reconciliation": AlertKind(
        Severity.WARNING, "exchange executors", "the exchange's and the bot's positions or orders differ"
    ),
    "rate_limited": AlertKind(
        Severity.WARNING, "rate-limit policy",
        "the exchange answered 429: every request waits its Retry-After, and the budget comes down to what the "
        "exchange counted",
    ),
    "rate_limit_store": AlertKind(
        Severity.CRITICAL, "rate-limit policy",
        "the shared budget (SQLite or Redis) is unreachable: this bot keeps to its share locally "
        "(INFO when sharing again)",
    ),
    "exchange_ban": AlertKind(
        Severity.CRITICAL, "rate-limit policy, exchange executors",
        "the exchange banned the bot's IP (HTTP 418): trading is halted until the ban lifts",
    ),
    "circuit_breaker": AlertKind(
        Severity.WARNING, "circuit breaker", "the circuit breaker changed state (CRITICAL when it opens)"
    ),
    "kill_switch": AlertKind(Severity.CRITICAL, "core", "the kill switch stopped the run: no new orders"),
    "close_out_complete": AlertKind(
        Severity.WARNING, "core", "a close-out (gobot kill --close-positions) closed every position"
    ),
    "close_out_incomplete": AlertKind(
        Severity.CRITICAL, "core", "a close-out gave up with positions still open: look at the exchange"
    ),
    "risk_reset": AlertKind(Severity.WARNING, "core", "risk plugins' state was reset (gobot risk reset)"),
    "disk_full": AlertKind(
        Severity.CRITICAL, "core",
        "the state folder takes no writes (disk full, quota, file size limit, I/O error): no new positions, open ones "
        "stay protected, the state is saved again every cycle",
    ),
    "disk_recovered": AlertKind(
        Severity.WARNING, "core", "the state could be saved again after disk_full: new positions allowed"
    ),
    "paused": AlertKind(Severity.WARNING, "core", "new positions paused (gobot pause, Telegram /pause, a plugin)"),
    "unpaused": AlertKind(Severity.INFO, "core", "new positions allowed again"),
    "watchdog_stale": AlertKind(
        Severity.CRITICAL, "gobot watchdog", "the bot's heartbeat is stale or missing: it crashed, hangs or was killed"
    ),
    "watchdog_recovered": AlertKind(
        Severity.INFO, "gobot watchdog", "the heartbeat is fresh again after a stale alert"
    ),
    "dashboard_lockout": AlertKind(
        Severity.WARNING, "dashboard server",
        "a client sent too many wrong GOBOT_DASHBOARD_TOKEN values and is locked out for a while (its address in the "
        "text; at most one alert a minute)",
    ),
    "strategy_failed": AlertKind(
        Severity.WARNING, "core",
        "the active strategy version failed validation: kept, reverted to the last version that passed, or no new "
        "positions with it ([strategy_versions] on_active_failure); INFO when it passes again",
    ),
    "optimizer_report": AlertKind(
        Severity.INFO, "core",
        "a scheduled optimizer run ended: the winner (if any) with its in- and out-of-sample metrics, and whether "
        "it was applied ([optimizer] auto_apply); WARNING when the run failed",
    ),
}


class Learning(_Model):
    """An observation worth remembering across cycles, with the evidence behind it."""

    id: str = Field("", description="filled in by the core when empty")
    text: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    symbol: str | None = None
    source: str = ""
    iteration: int = 0
    created_at: datetime | None = None


class ParamSpec(_Model):
    """A tunable strategy parameter and its allowed range."""

    default: float
    low: float
    high: float
    step: float = 1.0
    integer: bool = True
    description: str = ""


class StrategyVersion(_Model):
    """A strategy's parameters at one point in time; every change makes a new version."""

    name: str
    version: int = 1
    params: dict[str, float]
    created_at: datetime | None = None
    reason: str = "initial parameters"


class AdjustmentDecision(_Model):
    """The adjust phase's decision for one strategy; empty ``changes`` means keep the current version."""

    strategy: str
    changes: dict[str, float] = Field(default_factory=dict)
    reason: str
    plugin: str = ""


class StrategyProposal(_Model):
    """A proposed change of a strategy's parameters (an adjuster's decision, the optimizer's winner).

    The validators judge it before it becomes a version: accepted, it becomes the next version
    number (``version``); rejected, it is kept with its ``reasons`` and the same parameters are not
    proposed again until ``[strategy_versions] new_evidence_trades`` more trades of the strategy closed.
    """

    strategy: str
    base_version: int = Field(description="the version it would replace")
    params: dict[str, float] = Field(description="every parameter, as the new version would have them")
    changes: dict[str, float] = Field(default_factory=dict)
    reason: str
    plugin: str = ""
    created_at: datetime | None = None
    iteration: int = 0
    evidence: int = Field(0, description="closed trades of the strategy when it was proposed")
    verdict: Literal["pending", "accepted", "rejected"] = "pending"
    reasons: list[str] = Field(default_factory=list, description="why the validators rejected it")
    version: int | None = Field(None, description="the version number it became, when accepted")


class ValidationResult(_Model):
    """The validation phase's judgement of a strategy version (e.g. from a backtest)."""

    strategy: str
    version: int
    passed: bool
    reason: str
    metrics: dict[str, float] = Field(default_factory=dict)
    plugin: str = ""


class BacktestResult(_Model):
    """What the core's backtester returns (see ``BotContext.backtest``)."""

    trades: list[Trade] = Field(default_factory=list)
    start_equity: float
    end_equity: float
    candles: int

    @property
    def return_pct(self) -> float:
        return (self.end_equity / self.start_equity - 1.0) * 100.0


class PhaseRecord(_Model):
    """What one phase of one cycle did: its time and a line per decision."""

    name: str
    duration_ms: float = 0.0
    records: list[str] = Field(default_factory=list)


class CycleReport(_Model):
    """Everything one orchestrator cycle did, handed to reporters and kept in the state."""

    run_id: str
    iteration: int
    time: datetime
    phases: list[PhaseRecord] = Field(default_factory=list)
    signals: list[Signal] = Field(default_factory=list)
    vetoes: list[RiskVerdict] = Field(default_factory=list)
    verdicts: list[RiskVerdict] = Field(default_factory=list, description="every verdict, approvals and vetoes")
    orders: list[Order] = Field(default_factory=list)
    fills: list[Fill] = Field(default_factory=list)
    trades_closed: list[Trade] = Field(default_factory=list)
    learnings: list[Learning] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    equity: float = 0.0
    cash: float = 0.0
    realised_pnl: float = 0.0
    open_positions: int = 0
    paused: bool = False

    def phase(self, name: str) -> PhaseRecord:
        for record in self.phases:
            if record.name == name:
                return record
        raise KeyError(name)


class MetricSample(_Model):
    """One Prometheus sample a plugin adds to ``GET /metrics``, through ``gobot_status``."""

    name: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
                      description="metric name, e.g. 'gobot_rate_limit_weight_used'")
    value: float
    labels: dict[str, str] = Field(default_factory=dict, description="label name -> value; the core adds plugin=<name>")
    type: Literal["gauge", "counter"] = Field("gauge", description="gauge: goes up and down; counter: only up")
    help: str = Field("", description="one line: what it measures, with its unit")


class PluginStatus(_Model):
    """A plugin's contribution to the operator's view (``gobot_status``): health, metrics, a few facts."""

    healthy: bool | None = Field(None, description="False turns GET /health unhealthy (HTTP 503); None = no opinion")
    reason: str = Field("", description="one line: why, shown by /health and the dashboard")
    state: str = Field("", description="a state machine's state, e.g. CLOSED or OPEN (empty if none)")
    breaker: bool = Field(
        False,
        description="True from the bot's circuit breaker: its state is the breaker of /health, /api/status, "
        "the dashboard, /metrics, progress.json and `gobot risk status`, and healthy=False means it stops new "
        "positions now",
    )
    metrics: list[MetricSample] = Field(default_factory=list)
    data: dict[str, Any] = Field(
        default_factory=dict, description="small JSON-serialisable facts for /api/status and the dashboard"
    )
    plugin: str = Field("", description="filled in by the core")
