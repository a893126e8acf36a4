"""0006: ``drift``, every trade measured against its paper twin (``gobot_on_drift``, the ``drift`` plugin):
the live - twin gap in the portfolio currency and in R, and the parts that add up to it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
PARTS = ("missed_or_partial", "entry_delay", "entry_slippage", "exit_delay", "exit_slippage", "fees",
         "funding_other")


def upgrade() -> None:
    op.create_table(
        "drift",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("client_order_id", sa.String(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=True),
        sa.Column("strategy_version", sa.Integer(), nullable=True),
        sa.Column("opened_at", TIME, nullable=True),
        sa.Column("closed_at", TIME, nullable=True),
        sa.Column("currency", sa.String(), nullable=True),
        sa.Column("live_pnl", sa.Float(), nullable=True),
        sa.Column("twin_pnl", sa.Float(), nullable=False),
        sa.Column("gap", sa.Float(), nullable=True),
        sa.Column("gap_r", sa.Float(), nullable=True),
        sa.Column("live_r", sa.Float(), nullable=True),
        sa.Column("twin_r", sa.Float(), nullable=True),
        sa.Column("risk", sa.Float(), nullable=True),
        *(sa.Column(part, sa.Float(), nullable=False) for part in PARTS),
        sa.Column("commissions", sa.Text(), nullable=True),
        sa.Column("exit_reason", sa.String(), nullable=True),
        sa.Column("twin_exit_reason", sa.String(), nullable=True),
        sa.UniqueConstraint("run_id", "client_order_id", name="uq_drift_run_client_order_id"),
    )
    op.create_index("ix_drift_run_closed", "drift", ["run_id", "closed_at"])


def downgrade() -> None:
    op.drop_index("ix_drift_run_closed", table_name="drift")
    op.drop_table("drift")
