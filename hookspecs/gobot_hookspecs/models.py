"""The data that crosses hooks: pydantic models shared by the core and every plugin.

Times are timezone-aware UTC datetimes; money is in the quote currency (USD-like);
amounts are in the base asset; percentages are plain numbers (2.0 means 2 %).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    extras: dict[str, Any] = Field(default_factory=dict, description="funding rate, open interest, ...")


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
    notional_usd: float = Field(ge=0)
    reference_price: float = Field(gt=0)
    stop_loss: float | None = None
    take_profit: float | None = None
    signal: Signal | None = None
    created_at: datetime
    priority: Priority = Field(Priority.HIGH, description="CRITICAL for emergency closes, HIGH otherwise")
    reason: str = Field("", description="why: the signal's rationale, or the close request's reason")

    @property
    def amount(self) -> float:
        return self.notional_usd / self.reference_price

    @property
    def direction(self) -> Action:
        return Action.LONG if self.side is Side.BUY else Action.SHORT


class RiskVerdict(_Model):
    """One risk plugin's answer on one intent. Any ``approved=False`` blocks the trade."""

    approved: bool
    reason: str = ""
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
    fee: float = Field(0.0, ge=0, description="in quote currency")
    time: datetime
    reason: str = "signal"


class Position(_Model):
    """An open position, as the core's portfolio tracks it."""

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

    def unrealised_pnl(self, price: float) -> float:
        sign = 1 if self.direction is Action.LONG else -1
        return sign * (price - self.entry_price) * self.amount

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
    pnl: float = Field(description="net of fees, quote currency")
    exit_reason: str
    confidence: float | None = None
    strategy: str | None = None
    strategy_version: int | None = None


class ExecutionError(_Model):
    """An order that could not be placed or confirmed. The circuit breaker listens for these."""

    message: str
    kind: str = Field("error", description="e.g. network, rejected, rate_limited, banned")
    symbol: str | None = None
    intent_id: str | None = None
    retryable: bool = False
    plugin: str = ""


class Alert(_Model):
    """Something a human should hear about. ``kind`` is a stable key (``trade_opened``, ``risk_veto``, ...)."""

    kind: str
    title: str
    text: str = ""
    severity: Severity = Severity.INFO
    data: dict[str, Any] = Field(default_factory=dict)
    time: datetime | None = None


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
