"""0005: what a trade's story needs: each fill's commissions as the exchange charged them (JSON, in
their own assets), and an index that finds a run's fills by order (the drill-down reads them per run).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fills") as batch:
        batch.add_column(sa.Column("commissions", sa.Text(), nullable=True))
    op.create_index("ix_fills_run_client_order_id", "fills", ["run_id", "client_order_id"])


def downgrade() -> None:
    op.drop_index("ix_fills_run_client_order_id", table_name="fills")
    with op.batch_alter_table("fills") as batch:
        batch.drop_column("commissions")
