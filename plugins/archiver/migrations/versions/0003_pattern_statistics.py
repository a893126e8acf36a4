"""0003: each discovered pattern keeps its p-value, its Benjamini–Hochberg q-value and how many groups
were tested with it (pattern discovery controls the false discovery rate since 0003). Patterns
stored before keep their rows, with these columns empty.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patterns") as batch:
        batch.add_column(sa.Column("p_value", sa.Float(), nullable=True))
        batch.add_column(sa.Column("q_value", sa.Float(), nullable=True))
        batch.add_column(sa.Column("groups_tested", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patterns") as batch:
        batch.drop_column("groups_tested")
        batch.drop_column("q_value")
        batch.drop_column("p_value")
