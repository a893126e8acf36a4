"""The archive's tables, as sqlmodel models (imported only by the writer and the report: sqlmodel is heavy).

The schema is versioned by the Alembic migrations in ``migrations/versions``; these models describe
the newest version (``SCHEMA_REVISION``), and a test checks that migrating an empty database gives
exactly these tables. Times are UTC (``UTCDateTime``); JSON columns are text holding JSON.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

#: The Alembic revision these models correspond to (the head of ``migrations/versions``).
SCHEMA_REVISION = "0008"
#: Alembic's bookkeeping table, named for this plugin so it never meets another application's.
VERSION_TABLE = "archiver_schema_version"


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every database (SQLite stores it as UTC text without offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):  # a raw SQLite value read through text()
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _time(**kwargs: Any) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), **kwargs))


def _text() -> Any:
    return Field(default=None, sa_column=Column(Text()))


class ArchiveModel(SQLModel, registry=registry()):
    """Base of the archive's tables: their own metadata, so no other SQLModel user's tables mix in."""


class RunRow(ArchiveModel, table=True):
    """One row per run (a resumed run keeps its row)."""

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("run_id", name="uq_runs_run_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str
    mode: str = Field(description="paper or live")
    started_at: Optional[datetime] = _time()
    initial_capital: float
    symbols: Optional[str] = _text()  # JSON list
    group_id: Optional[str] = Field(default=None, description="the sleeve group of a side-by-side profiles run")
    profile: Optional[str] = Field(default=None, description="the strategy profile of this run's sleeve")


class CycleRow(ArchiveModel, table=True):
    """One row per orchestrator cycle: counts, equity and each phase's duration."""

    __tablename__ = "cycles"
    __table_args__ = (UniqueConstraint("run_id", "iteration", name="uq_cycles_run_iteration"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str
    iteration: int
    time: Optional[datetime] = _time()
    equity: float
    cash: float
    realised_pnl: float
    open_positions: int
    paused: bool
    signals: int
    vetoes: int
    orders: int
    fills: int
    trades_closed: int
    scan_ms: Optional[float] = None
    ideas_ms: Optional[float] = None
    adjust_ms: Optional[float] = None
    validate_ms: Optional[float] = None
    execute_ms: Optional[float] = None
    report_ms: Optional[float] = None
    total_ms: Optional[float] = None
    phase_records: Optional[str] = _text()  # JSON {phase: [decision lines]}
    errors: Optional[str] = _text()  # JSON list of plugin failures


class SignalRow(ArchiveModel, table=True):
    """Every signal of every cycle, HOLD included, with the plugin that produced it."""

    __tablename__ = "signals"
    __table_args__ = (UniqueConstraint("run_id", "iteration", "seq", name="uq_signals_run_iteration_seq"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str
    iteration: int
    seq: int
    time: Optional[datetime] = _time()
    symbol: str
    action: str
    confidence: float
    entry: Optional[float] = None
    stop_loss: Optional[float] = None
    take_profit: Optional[float] = None
    rationale: Optional[str] = _text()
    timeframe: Optional[str] = None
    strategy: Optional[str] = None
    strategy_version: Optional[int] = None
    source: str
    learnings_used: Optional[str] = _text()  # JSON list of learning ids


class RiskVerdictRow(ArchiveModel, table=True):
    """Every risk plugin's verdict on every intent that would open a position."""

    __tablename__ = "risk_verdicts"
    __table_args__ = (UniqueConstraint("run_id", "iteration", "seq", name="uq_risk_verdicts_run_iteration_seq"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str
    iteration: int
    seq: int
    time: Optional[datetime] = _time()
    symbol: Optional[str] = None
    intent_id: Optional[str] = None
    plugin: str
    approved: bool
    reason: Optional[str] = _text()


class OrderRow(ArchiveModel, table=True):
    """Every order placed (or proposed)."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("run_id", "client_order_id", name="uq_orders_run_client_order_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str
    iteration: int
    order_id: str
    client_order_id: str
    intent_id: str
    symbol: str
    side: str
    purpose: str
    type: str
    amount: float
    price: Optional[float] = None
    stop_loss: Optional[float] = None
    take_profit: Optional[float] = None
    status: str
    created_at: Optional[datetime] = _time()
    executor: Optional[str] = None
    reason: Optional[str] = _text()


class FillRow(ArchiveModel, table=True):
    """Every execution. ``fill_key`` makes a fill reported twice (a re-run cycle) one row."""

    __tablename__ = "fills"
    __table_args__ = (
        UniqueConstraint("fill_key", name="uq_fills_fill_key"),
        Index("ix_fills_run_client_order_id", "run_id", "client_order_id"),  # since 0005
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    fill_key: str
    run_id: str
    iteration: int
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    purpose: str
    amount: float
    price: float
    fee: float
    time: Optional[datetime] = _time()
    reason: Optional[str] = None
    commissions: Optional[str] = _text()  # since 0005: JSON {asset: amount}, as the exchange charged them


class TradeRow(ArchiveModel, table=True):
    """Every closed position with its result, risk and origin."""

    __tablename__ = "trades"
    __table_args__ = (
        UniqueConstraint("trade_key", name="uq_trades_trade_key"),
        Index("ix_trades_run_closed", "run_id", "closed_at"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    trade_key: str
    run_id: str
    iteration: int
    symbol: str
    direction: str
    amount: float
    entry_price: float
    exit_price: float
    opened_at: Optional[datetime] = _time()
    closed_at: Optional[datetime] = _time()
    holding_seconds: float
    fees: float
    pnl: float  # funding included
    funding: Optional[float] = None  # since 0007: received (+) or paid (-) while open
    return_pct: float
    exit_reason: str
    confidence: Optional[float] = None
    strategy: Optional[str] = None
    strategy_version: Optional[int] = None
    client_order_id: Optional[str] = None
    initial_stop_loss: Optional[float] = None
    r_multiple: Optional[float] = None  # since 0002
    entry_hour: Optional[int] = None  # since 0002: UTC hour of opened_at


class StrategyVersionRow(ArchiveModel, table=True):
    """Every version of every strategy: parameters, when it was active, and its archived metrics."""

    __tablename__ = "strategy_versions"
    __table_args__ = (UniqueConstraint("run_id", "name", "version", name="uq_strategy_versions_run_name_version"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str
    name: str
    version: int
    params: Optional[str] = _text()  # JSON {parameter: value}
    reason: Optional[str] = _text()
    created_at: Optional[datetime] = _time()
    started_at: Optional[datetime] = _time()
    ended_at: Optional[datetime] = _time()
    status: str = Field(description="active, retired or rejected")
    trades: int = 0
    metrics: Optional[str] = _text()  # JSON of gobot_hookspecs.metrics.TradeMetrics
    archived_at: Optional[datetime] = _time()


class StrategyProposalRow(ArchiveModel, table=True):
    """Every proposed parameter change with its verdict: accepted (and the version it became) or rejected,
    with the validators' reasons (since 0004; before, a rejected proposal was a version with status rejected)."""

    __tablename__ = "strategy_proposals"
    __table_args__ = (UniqueConstraint("run_id", "strategy", "iteration", name="uq_strategy_proposals_run_strategy_"
                                       "iteration"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str
    strategy: str
    iteration: int
    created_at: Optional[datetime] = _time()
    base_version: int
    version: Optional[int] = None  # the version it became, when accepted
    verdict: str = Field(description="accepted or rejected")
    params: Optional[str] = _text()  # JSON {parameter: value}, every parameter
    changes: Optional[str] = _text()  # JSON {parameter: value}
    reason: Optional[str] = _text()
    plugin: Optional[str] = None
    evidence: int = 0  # closed trades of the strategy when proposed
    reasons: Optional[str] = _text()  # JSON list: why the validators rejected it


class LearningRow(ArchiveModel, table=True):
    """The orchestrator's learnings, with their evidence."""

    __tablename__ = "learnings"
    __table_args__ = (UniqueConstraint("run_id", "learning_id", name="uq_learnings_run_learning_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str
    learning_id: str
    iteration: int
    created_at: Optional[datetime] = _time()
    source: Optional[str] = None
    symbol: Optional[str] = None
    text: Optional[str] = _text()
    evidence: Optional[str] = _text()  # JSON


class ExecutionErrorRow(ArchiveModel, table=True):
    """Orders that could not be placed or confirmed (since 0002)."""

    __tablename__ = "execution_errors"
    __table_args__ = (UniqueConstraint("error_key", name="uq_execution_errors_error_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    error_key: str
    run_id: str
    iteration: int
    time: Optional[datetime] = _time()
    plugin: Optional[str] = None
    kind: str
    symbol: Optional[str] = None
    intent_id: Optional[str] = None
    retryable: bool
    message: Optional[str] = _text()


class PatternRow(ArchiveModel, table=True):
    """A discovered pattern: a claim with its sample size, 95 % Wilson interval, p- and q-value (since 0002)."""

    __tablename__ = "patterns"
    __table_args__ = (
        UniqueConstraint("run_id", "dimension", "label", "kind", name="uq_patterns_run_dimension_label_kind"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str
    discovered_at: Optional[datetime] = _time()
    dimension: str
    label: str
    kind: str = Field(description="best, worst, above, below or threshold")
    trades: int
    wins: int
    win_rate: float
    ci_low: float
    ci_high: float
    baseline_win_rate: float
    total_pnl: float
    avg_pnl: float
    profit_factor: Optional[float] = None
    notable: bool
    text: Optional[str] = _text()
    p_value: Optional[float] = None  # since 0003: exact binomial test against all trades' win rate
    q_value: Optional[float] = None  # since 0003: Benjamini–Hochberg over the groups tested
    groups_tested: Optional[int] = None  # since 0003


class DriftRow(ArchiveModel, table=True):
    """Every trade measured against its paper twin (``gobot_on_drift``): the live - twin gap in the portfolio
    currency and in R, split into the parts that add up to it (since 0006; docs/drift.md)."""

    __tablename__ = "drift"
    __table_args__ = (
        UniqueConstraint("run_id", "client_order_id", name="uq_drift_run_client_order_id"),
        Index("ix_drift_run_closed", "run_id", "closed_at"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str
    iteration: int
    client_order_id: str
    mode: str = Field(description="paper, testnet or live")
    kind: str = Field(description="matched, missed or paper_only")
    symbol: str
    direction: str
    strategy: Optional[str] = None
    strategy_version: Optional[int] = None
    opened_at: Optional[datetime] = _time()
    closed_at: Optional[datetime] = _time()
    currency: Optional[str] = None
    live_pnl: Optional[float] = None
    twin_pnl: float
    gap: Optional[float] = None
    gap_r: Optional[float] = None
    live_r: Optional[float] = None
    twin_r: Optional[float] = None
    risk: Optional[float] = None
    missed_or_partial: float
    entry_delay: float
    entry_slippage: float
    exit_delay: float
    exit_slippage: float
    fees: float
    funding: Optional[float] = None  # since 0007 (NULL before: none booked)
    funding_other: float
    commissions: Optional[str] = _text()  # JSON {asset: amount}, as charged
    exit_reason: Optional[str] = None
    twin_exit_reason: Optional[str] = None


#: Table name -> model, in the order a batch writes them (parents before the rows that refer to them).
TABLES: dict[str, type[ArchiveModel]] = {
    model.__tablename__: model
    for model in (
        RunRow, CycleRow, SignalRow, RiskVerdictRow, OrderRow, FillRow, TradeRow,
        StrategyVersionRow, StrategyProposalRow, LearningRow, ExecutionErrorRow, PatternRow, DriftRow,
    )
}

metadata = ArchiveModel.metadata
