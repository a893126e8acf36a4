"""0008: side-by-side profiles (``gobot start --profile a --profile b``): a run's ``group_id`` (the sleeve
group it belongs to) and ``profile`` (the strategy profile its sleeve ran). Runs written before, and
single runs, are NULL in both.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("group_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("profile", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("profile")
        batch.drop_column("group_id")
