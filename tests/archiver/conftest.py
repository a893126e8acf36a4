"""Fixtures of the archiver suite: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``GOBOT_TEST_POSTGRES_URL`` (``make test`` sets it), else
``postgresql+psycopg://postgres@127.0.0.1:5432/test``. Each test gets its own schema (dropped
afterwards), so concurrent runs never collide. Without a reachable server the PostgreSQL cases skip
with the reason — except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Callable, Iterator
from urllib.parse import quote

import pytest

from gobot_hookspecs import hookimpl

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_URL = os.environ.get("GOBOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used (None if it can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is not installed (pip install 'gobot-trading[postgres]'; `make test` does)"
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"no PostgreSQL server at {POSTGRES_URL.split('@')[-1]}: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return None


_PROBLEM: list[str | None] = []


def postgres_url_or_skip() -> str:
    if not _PROBLEM:
        _PROBLEM.append(_postgres_problem())
    problem = _PROBLEM[0]
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {problem}")
        pytest.skip(f"PostgreSQL case skipped: {problem} (set GOBOT_TEST_POSTGRES_URL to run it)")
    return POSTGRES_URL


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema of this test's own."""
    from sqlalchemy import create_engine, text

    base = postgres_url_or_skip()
    schema = f"gobot_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """The archive's URL: a SQLite file in the test's folder, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def archive_bot(replay_bot, database_url) -> Callable[..., Any]:
    """``replay_bot`` with the archiver writing to ``database_url`` (extra archiver settings as kwargs)."""

    def factory(archiver: dict[str, Any] | None = None, config: dict[str, Any] | None = None, **kwargs: Any):
        config = dict(config or {})
        plugins = dict(config.get("plugins", {}))
        plugins["archiver"] = {"database_url": database_url, **(archiver or {})}
        config["plugins"] = plugins
        return replay_bot(config=config, **kwargs)

    return factory


@pytest.fixture
def open_store(database_url) -> Iterator[Callable[..., Any]]:
    """``open_store(url=database_url, migrate=True)``: an ArchiveStore, closed at teardown."""
    from gobot_plugins.archiver.store import ArchiveStore

    stores = []

    def factory(url: str | None = None, migrate: bool = True) -> Any:
        store = ArchiveStore(url or database_url)
        if migrate:
            store.migrate()
        stores.append(store)
        return store

    yield factory
    for store in stores:
        store.close()


class Alerts:
    """A plugin that records every alert (register it with ``plugins=[("alerts", Alerts())]``)."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl
    def gobot_send_alert(self, alert):
        self.seen.append(alert)

    def kinds(self) -> list[str]:
        return [a.kind for a in self.seen]


@pytest.fixture
def alerts() -> Alerts:
    return Alerts()

