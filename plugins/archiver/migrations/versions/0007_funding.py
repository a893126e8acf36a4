"""0007: funding payments on perpetual futures: a trade's ``funding`` (received +, paid -, part of its
``pnl``) and the drift part ``funding`` (the live trade's funding; its paper twin pays none). Rows
written before are NULL: no funding was booked then.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("trades", "drift"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("funding", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in ("drift", "trades"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("funding")
