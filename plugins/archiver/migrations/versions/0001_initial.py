"""0001: the first archive schema — runs, cycles, signals, risk verdicts, orders, fills, trades,
strategy versions and learnings.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        _id(),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("started_at", TIME, nullable=True),
        sa.Column("initial_capital", sa.Float(), nullable=False),
        sa.Column("symbols", sa.Text(), nullable=True),
        sa.UniqueConstraint("run_id", name="uq_runs_run_id"),
    )
    op.create_table(
        "cycles",
        _id(),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("time", TIME, nullable=True),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.Column("cash", sa.Float(), nullable=False),
        sa.Column("realised_pnl", sa.Float(), nullable=False),
        sa.Column("open_positions", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("signals", sa.Integer(), nullable=False),
        sa.Column("vetoes", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("fills", sa.Integer(), nullable=False),
        sa.Column("trades_closed", sa.Integer(), nullable=False),
        *[sa.Column(f"{phase}_ms", sa.Float(), nullable=True)
          for phase in ("scan", "ideas", "adjust", "validate", "execute", "report", "total")],
        sa.Column("phase_records", sa.Text(), nullable=True),
        sa.Column("errors", sa.Text(), nullable=True),
        sa.UniqueConstraint("run_id", "iteration", name="uq_cycles_run_iteration"),
    )
    op.create_table(
        "signals",
        _id(),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("time", TIME, nullable=True),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("entry", sa.Float(), nullable=True),
        sa.Column("stop_loss", sa.Float(), nullable=True),
        sa.Column("take_profit", sa.Float(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("timeframe", sa.String(), nullable=True),
        sa.Column("strategy", sa.String(), nullable=True),
        sa.Column("strategy_version", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("learnings_used", sa.Text(), nullable=True),
        sa.UniqueConstraint("run_id", "iteration", "seq", name="uq_signals_run_iteration_seq"),
    )
    op.create_table(
        "risk_verdicts",
        _id(),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("time", TIME, nullable=True),
        sa.Column("symbol", sa.String(), nullable=True),
        sa.Column("intent_id", sa.String(), nullable=True),
        sa.Column("plugin", sa.String(), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("run_id", "iteration", "seq", name="uq_risk_verdicts_run_iteration_seq"),
    )
    op.create_table(
        "orders",
        _id(),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("client_order_id", sa.String(), nullable=False),
        sa.Column("intent_id", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("side", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("stop_loss", sa.Float(), nullable=True),
        sa.Column("take_profit", sa.Float(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", TIME, nullable=True),
        sa.Column("executor", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("run_id", "client_order_id", name="uq_orders_run_client_order_id"),
    )
    op.create_table(
        "fills",
        _id(),
        sa.Column("fill_key", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("client_order_id", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("side", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("fee", sa.Float(), nullable=False),
        sa.Column("time", TIME, nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.UniqueConstraint("fill_key", name="uq_fills_fill_key"),
    )
    op.create_table(
        "trades",
        _id(),
        sa.Column("trade_key", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("exit_price", sa.Float(), nullable=False),
        sa.Column("opened_at", TIME, nullable=True),
        sa.Column("closed_at", TIME, nullable=True),
        sa.Column("holding_seconds", sa.Float(), nullable=False),
        sa.Column("fees", sa.Float(), nullable=False),
        sa.Column("pnl", sa.Float(), nullable=False),
        sa.Column("return_pct", sa.Float(), nullable=False),
        sa.Column("exit_reason", sa.String(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("strategy", sa.String(), nullable=True),
        sa.Column("strategy_version", sa.Integer(), nullable=True),
        sa.Column("client_order_id", sa.String(), nullable=True),
        sa.Column("initial_stop_loss", sa.Float(), nullable=True),
        sa.UniqueConstraint("trade_key", name="uq_trades_trade_key"),
    )
    op.create_index("ix_trades_run_closed", "trades", ["run_id", "closed_at"])
    op.create_table(
        "strategy_versions",
        _id(),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("params", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=True),
        sa.Column("started_at", TIME, nullable=True),
        sa.Column("ended_at", TIME, nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=True),
        sa.Column("archived_at", TIME, nullable=True),
        sa.UniqueConstraint("run_id", "name", "version", name="uq_strategy_versions_run_name_version"),
    )
    op.create_table(
        "learnings",
        _id(),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("learning_id", sa.String(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("symbol", sa.String(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.UniqueConstraint("run_id", "learning_id", name="uq_learnings_run_learning_id"),
    )


def downgrade() -> None:
    for table in ("learnings", "strategy_versions", "trades", "fills", "orders", "risk_verdicts", "signals", "cycles", "runs"):
        op.drop_table(table)
