"""Events and cycle reports turned into rows (plain JSON-serialisable dicts) for the outbox.

Runs in the trading loop, so it is light: the standard library and the contract only. Each row
carries a deterministic key (``fill_key``, ``trade_key``, ...) so an event emitted again by a
re-run cycle is stored once.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Mapping

from gobot_hookspecs import (
    DRIFT_PARTS,
    CycleReport,
    DriftMeasurement,
    ExecutionError,
    Fill,
    Learning,
    Order,
    StrategyProposal,
    StrategyVersion,
    Trade,
    metrics,
    redact,
)
from gobot_hookspecs.money import trade_rate

PHASES = ("scan", "ideas", "adjust", "validate", "execute", "report")


class Redactor(redact.Redactor):
    """Masks secrets before anything is stored, by gobot's one rule (``gobot_hookspecs.redact``): the
    values of environment variables whose names say they are secret (``*_API_KEY``, ``*TOKEN*``,
    ``PGPASSWORD``, ...) as whole values, and credentials in known places (passwords in URLs). Values
    that could equal data (shorter than 12 characters, numbers, dates) are left alone:
    ``GOBOT_X_TOKEN=true`` never turns a ``true`` in a row into ``***``."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        super().__init__(redact.Redactor.from_environ(environ).values)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def key(*parts: Any) -> str:
    """A short stable key from the parts (sha256, 32 hex characters)."""
    return hashlib.sha256("|".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:32]


def dumps(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def run_row(run_id: str, mode: str, started_at: datetime | None, initial_capital: float,
            symbols: list[str], group_id: str = "", profile: str = "") -> dict[str, Any]:
    """The run's row; ``group_id`` and ``profile`` name its sleeve in a side-by-side profiles run ("" = none)."""
    return {"run_id": run_id, "mode": mode, "started_at": iso(started_at), "initial_capital": initial_capital,
            "symbols": dumps(list(symbols)), "group_id": group_id or None, "profile": profile or None}


def order_row(run_id: str, iteration: int, order: Order) -> dict[str, Any]:
    return {
        "run_id": run_id, "iteration": iteration, "order_id": order.id, "client_order_id": order.client_order_id,
        "intent_id": order.intent_id, "symbol": order.symbol, "side": order.side.value, "purpose": order.purpose,
        "type": order.type, "amount": order.amount, "price": order.price, "stop_loss": order.stop_loss,
        "take_profit": order.take_profit, "status": order.status, "created_at": iso(order.created_at),
        "executor": order.executor, "reason": order.reason,
    }


def fill_row(run_id: str, iteration: int, fill: Fill) -> dict[str, Any]:
    return {
        "fill_key": key(run_id, fill.client_order_id, fill.purpose, iso(fill.time), repr(fill.amount),
                        repr(fill.price)),
        "run_id": run_id, "iteration": iteration, "order_id": fill.order_id, "client_order_id": fill.client_order_id,
        "symbol": fill.symbol, "side": fill.side.value, "purpose": fill.purpose, "amount": fill.amount,
        "price": fill.price, "fee": fill.fee, "time": iso(fill.time), "reason": fill.reason,
        "commissions": dumps(fill.commissions) if fill.commissions else None,
    }


def trade_row(run_id: str, iteration: int, trade: Trade, currency: str = "") -> dict[str, Any]:
    """A trade's row; its return and R multiple in ``currency``, the P&L's (``money.trade_rate``)."""
    notional = trade.entry_price * trade.amount * (trade_rate(trade, currency) or 0.0)
    return {
        "trade_key": key(run_id, trade.client_order_id, trade.symbol, iso(trade.opened_at), iso(trade.closed_at),
                         repr(trade.entry_price), repr(trade.exit_price), repr(trade.amount)),
        "run_id": run_id, "iteration": iteration, "symbol": trade.symbol, "direction": trade.direction.value,
        "amount": trade.amount, "entry_price": trade.entry_price, "exit_price": trade.exit_price,
        "opened_at": iso(trade.opened_at), "closed_at": iso(trade.closed_at),
        "holding_seconds": metrics.holding_seconds(trade), "fees": trade.fees, "pnl": trade.pnl,
        "funding": trade.funding,
        "return_pct": trade.pnl / notional * 100 if notional else 0.0, "exit_reason": trade.exit_reason,
        "confidence": trade.confidence, "strategy": trade.strategy, "strategy_version": trade.strategy_version,
        "client_order_id": trade.client_order_id or None, "initial_stop_loss": trade.initial_stop_loss,
        "r_multiple": metrics.r_multiple(trade, currency), "entry_hour": metrics.hour_of_day(trade),
    }


def execution_error_row(run_id: str, iteration: int, time: datetime, error: ExecutionError) -> dict[str, Any]:
    return {
        "error_key": key(run_id, iteration, error.intent_id, error.plugin, error.kind, error.message),
        "run_id": run_id, "iteration": iteration, "time": iso(time), "plugin": error.plugin, "kind": error.kind,
        "symbol": error.symbol, "intent_id": error.intent_id, "retryable": error.retryable, "message": error.message,
    }


def learning_row(run_id: str, learning: Learning) -> dict[str, Any]:
    return {
        "run_id": run_id, "learning_id": learning.id, "iteration": learning.iteration,
        "created_at": iso(learning.created_at), "source": learning.source, "symbol": learning.symbol,
        "text": learning.text, "evidence": dumps(learning.evidence),
    }


def cycle_entry(report: CycleReport, track_learnings: bool) -> dict[str, Any]:
    """The cycle's row with its signals, risk verdicts and (optionally) learnings: one outbox entry."""
    run_id, iteration, time = report.run_id, report.iteration, iso(report.time)
    phase_ms = {p.name: p.duration_ms for p in report.phases}
    cycle = {
        "run_id": run_id, "iteration": iteration, "time": time, "equity": report.equity, "cash": report.cash,
        "realised_pnl": report.realised_pnl, "open_positions": report.open_positions, "paused": report.paused,
        "signals": len(report.signals), "vetoes": len(report.vetoes), "orders": len(report.orders),
        "fills": len(report.fills), "trades_closed": len(report.trades_closed),
        **{f"{phase}_ms": phase_ms.get(phase) for phase in PHASES},
        "total_ms": sum(phase_ms.values()),
        "phase_records": dumps({p.name: p.records for p in report.phases}),
        "errors": dumps(report.errors),
    }
    signals = [
        {
            "run_id": run_id, "iteration": iteration, "seq": seq, "time": time, "symbol": s.symbol,
            "action": s.action.value, "confidence": s.confidence, "entry": s.entry, "stop_loss": s.stop_loss,
            "take_profit": s.take_profit, "rationale": s.rationale, "timeframe": s.timeframe, "strategy": s.strategy,
            "strategy_version": s.strategy_version, "source": s.source, "learnings_used": dumps(s.learnings_used),
        }
        for seq, s in enumerate(report.signals)
    ]
    verdicts = [
        {
            "run_id": run_id, "iteration": iteration, "seq": seq, "time": time, "symbol": v.symbol or None,
            "intent_id": v.intent_id or None, "plugin": v.plugin, "approved": v.approved, "reason": v.reason,
        }
        for seq, v in enumerate(report.verdicts or report.vetoes)
    ]
    learnings = [learning_row(run_id, item) for item in report.learnings] if track_learnings else []
    return {"cycle": cycle, "signals": signals, "verdicts": verdicts, "learnings": learnings}


def strategy_proposal_row(run_id: str, proposal: StrategyProposal) -> dict[str, Any]:
    return {
        "run_id": run_id, "strategy": proposal.strategy, "iteration": proposal.iteration,
        "created_at": iso(proposal.created_at), "base_version": proposal.base_version, "version": proposal.version,
        "verdict": proposal.verdict, "params": dumps(proposal.params), "changes": dumps(proposal.changes),
        "reason": proposal.reason, "plugin": proposal.plugin or None, "evidence": proposal.evidence,
        "reasons": dumps(proposal.reasons),
    }


def strategy_version_row(
    run_id: str, version: StrategyVersion, status: str, started_at: str | None, ended_at: str | None
) -> dict[str, Any]:
    return {
        "run_id": run_id, "name": version.name, "version": version.version, "params": dumps(version.params),
        "reason": version.reason, "created_at": iso(version.created_at), "started_at": started_at,
        "ended_at": ended_at, "status": status, "trades": 0, "metrics": None, "archived_at": None,
    }


def drift_row(run_id: str, iteration: int, measurement: DriftMeasurement, currency: str = "") -> dict[str, Any]:
    """A trade measured against its paper twin (``gobot_on_drift``); its gap in ``currency`` and in R."""
    m = measurement
    return {
        "run_id": run_id, "iteration": iteration, "client_order_id": m.client_order_id, "mode": m.mode,
        "kind": m.kind, "symbol": m.symbol, "direction": m.direction.value, "strategy": m.strategy,
        "strategy_version": m.strategy_version, "opened_at": iso(m.opened_at), "closed_at": iso(m.closed_at),
        "currency": currency or None, "live_pnl": m.live_pnl, "twin_pnl": m.twin_pnl, "gap": m.gap,
        "gap_r": m.gap_r, "live_r": m.live_r, "twin_r": m.twin_r, "risk": m.risk,
        **{part: getattr(m, part) for part in DRIFT_PARTS},
        "commissions": dumps(m.commissions) if m.commissions else None, "exit_reason": m.exit_reason,
        "twin_exit_reason": m.twin_exit_reason,
    }
