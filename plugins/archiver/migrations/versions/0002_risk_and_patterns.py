"""0002: R multiple and entry hour on trades (backfilled from the stored columns), execution
errors, discovered patterns.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("trades") as batch:
        batch.add_column(sa.Column("r_multiple", sa.Float(), nullable=True))
        batch.add_column(sa.Column("entry_hour", sa.Integer(), nullable=True))
    # Existing trades keep their history and gain the new columns, computed from what was stored.
    hour = (
        "CAST(strftime('%H', opened_at) AS INTEGER)"
        if op.get_bind().dialect.name == "sqlite"
        else "CAST(EXTRACT(HOUR FROM opened_at AT TIME ZONE 'UTC') AS INTEGER)"
    )
    op.execute(f"UPDATE trades SET entry_hour = {hour} WHERE opened_at IS NOT NULL")
    op.execute(
        "UPDATE trades SET r_multiple = pnl / (ABS(entry_price - initial_stop_loss) * amount) "
        "WHERE initial_stop_loss IS NOT NULL AND entry_price <> initial_stop_loss AND amount > 0"
    )
    op.create_table(
        "execution_errors",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("error_key", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("time", TIME, nullable=True),
        sa.Column("plugin", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=True),
        sa.Column("intent_id", sa.String(), nullable=True),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.UniqueConstraint("error_key", name="uq_execution_errors_error_key"),
    )
    op.create_table(
        "patterns",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("discovered_at", TIME, nullable=True),
        sa.Column("dimension", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("win_rate", sa.Float(), nullable=False),
        sa.Column("ci_low", sa.Float(), nullable=False),
        sa.Column("ci_high", sa.Float(), nullable=False),
        sa.Column("baseline_win_rate", sa.Float(), nullable=False),
        sa.Column("total_pnl", sa.Float(), nullable=False),
        sa.Column("avg_pnl", sa.Float(), nullable=False),
        sa.Column("profit_factor", sa.Float(), nullable=True),
        sa.Column("notable", sa.Boolean(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.UniqueConstraint("run_id", "dimension", "label", "kind", name="uq_patterns_run_dimension_label_kind"),
    )


def downgrade() -> None:
    op.drop_table("patterns")
    op.drop_table("execution_errors")
    with op.batch_alter_table("trades") as batch:
        batch.drop_column("entry_hour")
        batch.drop_column("r_multiple")
