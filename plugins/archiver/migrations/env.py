"""Alembic environment: always run from ``ArchiveStore.migrate`` with an open connection (no alembic.ini)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    version_table=context.config.attributes["version_table"],
    render_as_batch=True,  # SQLite cannot ALTER most things in place: batch mode copies the table
)
with context.begin_transaction():
    context.run_migrations()
