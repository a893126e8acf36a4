"""0004: strategy proposals, each with its verdict. Since 0004 a proposal gets a version number only when
the validators accept it; a rejected one is a row here (with the reasons), not a strategy version.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "strategy_proposals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=True),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(), nullable=False),
        sa.Column("params", sa.Text(), nullable=True),
        sa.Column("changes", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("plugin", sa.String(), nullable=True),
        sa.Column("evidence", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.UniqueConstraint("run_id", "strategy", "iteration", name="uq_strategy_proposals_run_strategy_iteration"),
    )


def downgrade() -> None:
    op.drop_table("strategy_proposals")
