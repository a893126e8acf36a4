"""Alembic migrations of the archive's schema (run by ``store.migrate``; see docs/archiver.md)."""
