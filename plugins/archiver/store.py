"""The archive database: connecting (SQLite in WAL mode, or any SQLAlchemy URL), migrating with
Alembic, writing outbox batches in one transaction with bulk inserts, and reading for reports.

Imported lazily (SQLAlchemy, sqlmodel and Alembic are heavy); only the writer thread and
``gobot report`` use it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from operator import add, itemgetter
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import bindparam, create_engine, delete, event, func, inspect, select, text, update
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gobot_hookspecs.files import use_wal

from .schema import SCHEMA_REVISION, TABLES, VERSION_TABLE, UTCDateTime

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
#: Batches at least this long go to PostgreSQL through COPY (much faster than INSERT ... VALUES).
COPY_THRESHOLD = 500

#: The settings of every SQLite connection, after WAL (bench/archiver.py's raw baseline takes the same).
#: synchronous=NORMAL: a commit is not fsynced, the WAL keeps the file consistent (a checkpoint syncs).
#: cache_spill=OFF: a write keeps the pages it changed in memory until its commit instead of writing them to
#: the WAL early (and again when changed again, as the random keys' index is): a bulk insert of 100,000 trades
#: is ~17 % faster; the pages (~40 MB for those) are freed at the commit.
SQLITE_PRAGMAS = ("synchronous=NORMAL", "cache_spill=OFF")

#: How each kind of outbox entry is written: table, unique key, and what a duplicate does.
#: "ignore": the first write wins (an event emitted again by a re-run cycle is the same event);
#: "update": the latest write wins (a re-run cycle replaces its record), for the columns listed
#: (all when None).
WRITES: dict[str, tuple[str, tuple[str, ...], str, tuple[str, ...] | None]] = {
    "run": ("runs", ("run_id",), "update", None),
    "order": ("orders", ("run_id", "client_order_id"), "ignore", None),
    "fill": ("fills", ("fill_key",), "ignore", None),
    "trade": ("trades", ("trade_key",), "ignore", None),
    "execution_error": ("execution_errors", ("error_key",), "ignore", None),
    "strategy_proposal": ("strategy_proposals", ("run_id", "strategy", "iteration"), "update", None),
    "drift": ("drift", ("run_id", "client_order_id"), "update", None),  # a re-made measurement replaces
    # Metrics arrive separately ("strategy_metrics"): a version's row update never resets them.
    "strategy_version": (
        "strategy_versions", ("run_id", "name", "version"), "update",
        ("params", "reason", "created_at", "started_at", "ended_at", "status"),
    ),
}


def _statements() -> tuple[tuple[Any, Any], Any, Any, Any]:
    """The batch's deletes and updates, built once (building one costs SQLAlchemy more than running it)."""
    signals, verdicts, cycles, versions, patterns = (
        TABLES[name].__table__ for name in ("signals", "risk_verdicts", "cycles", "strategy_versions", "patterns"))
    children = tuple(delete(t).where(t.c.run_id == bindparam("r"), t.c.iteration == bindparam("i"))
                     for t in (signals, verdicts))
    timings = (update(cycles).where(cycles.c.run_id == bindparam("r"), cycles.c.iteration == bindparam("i"))
               .values(report_ms=bindparam("report_ms"), total_ms=bindparam("total_ms")))
    metrics = (update(versions).where(versions.c.run_id == bindparam("r"), versions.c.name == bindparam("n"),
                                      versions.c.version == bindparam("v"))
               .values(trades=bindparam("trades"), metrics=bindparam("metrics"), archived_at=bindparam("archived_at")))
    return children, timings, metrics, delete(patterns).where(patterns.c.run_id == bindparam("r"))


#: the signals and verdicts of re-written cycles; cycles' report_ms and total_ms; a version's metrics; patterns
_DELETE_CHILDREN, _UPDATE_TIMINGS, _UPDATE_METRICS, _DELETE_PATTERNS = _statements()


class SchemaTooNew(Exception):
    """The database was migrated by a newer gobot: this one must not write to it."""


def known_revisions() -> set[str]:
    """The revisions of the migration files shipped with this gobot (``0001_initial.py`` -> ``0001``)."""
    return {path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py")}


class PoisonEntry(Exception):
    """An outbox entry that can never be written as it is (an unknown kind, a malformed row)."""


def is_transient(error: BaseException) -> bool:
    """True for failures that a retry can cure: the server is down, busy, locked or timed out."""
    if isinstance(error, (OperationalError, InterfaceError, DisconnectionError, PoolTimeout, OSError)):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def safe_url(url: str | URL) -> str:
    """The URL with its password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable database URL)"


def default_url(state_dir: Path) -> str:
    return f"sqlite:///{(state_dir / 'archive.db').resolve()}"


class ArchiveStore:
    """One archive database. Thread-safe for one writer thread plus readers (WAL on SQLite)."""

    def __init__(self, url: str, write_timeout: float = 10.0):
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self.write_timeout = write_timeout
        self.engine = self._engine()

    def _engine(self) -> Engine:
        if self.dialect == "sqlite":
            database = self.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                folder = Path(database).expanduser().resolve().parent
                folder.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self.url, connect_args={"check_same_thread": False, "timeout": self.write_timeout})
            busy_ms = int(self.write_timeout * 1000)

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                # WAL: the dashboard (or `gobot report`) reads while the bot writes, without blocking.
                use_wal(cursor, self.write_timeout)
                for pragma in SQLITE_PRAGMAS:
                    cursor.execute(f"PRAGMA {pragma}")
                cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
                cursor.close()

            return engine
        connect_args: dict[str, Any] = {}
        if self.dialect == "postgresql" and self.url.get_driver_name() in ("psycopg", "psycopg2"):
            connect_args["connect_timeout"] = max(1, int(self.write_timeout))
        engine = create_engine(self.url, pool_pre_ping=True, connect_args=connect_args)
        if self.dialect == "postgresql":
            timeout_ms = int(self.write_timeout * 1000)

            @event.listens_for(engine, "connect")
            def _timeouts(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                # A locked table or a stuck server fails the write (then it is retried) instead of hanging.
                cursor.execute(f"SET statement_timeout = {timeout_ms}")
                cursor.execute(f"SET lock_timeout = {timeout_ms}")
                cursor.close()
                dbapi_connection.commit()

        return engine

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------------

    def revision(self) -> str | None:
        """The schema revision the database is at (None: not an archive yet)."""
        with self.engine.connect() as connection:
            if not inspect(connection).has_table(VERSION_TABLE):
                return None
            return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()

    def migrate(self, target: str = "head") -> None:
        """Bring the schema to ``target`` (default: the newest), keeping every row. Safe to repeat."""
        with self.engine.begin() as connection:
            current = _current_revision(connection)
            if current == SCHEMA_REVISION and target == "head":
                return  # the common case, without importing Alembic
            if current is not None and current not in known_revisions():
                raise SchemaTooNew(
                    f"the archive's schema is at revision {current}, newer than this gobot knows "
                    f"({SCHEMA_REVISION}): upgrade gobot, or point database_url at another archive"
                )
            from alembic import command
            from alembic.config import Config

            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["version_table"] = VERSION_TABLE
            config.attributes["connection"] = connection
            log.info("archive schema %s -> %s (%s)", current or "empty", target, safe_url(self.url))
            command.upgrade(config, target)
        self._private()

    def _private(self) -> None:
        """An SQLite archive is readable by its owner only, like the rest of state_dir."""
        database = self.url.database if self.dialect == "sqlite" else None
        if database and database != ":memory:" and not database.startswith("file:"):
            for suffix in ("", "-wal", "-shm"):
                path = Path(database + suffix)
                if path.exists():
                    path.chmod(0o600)

    # -- writing ------------------------------------------------------------------------------

    def write(self, entries: Sequence[dict[str, Any]]) -> None:
        """Write outbox entries in one transaction: all of them are stored, or none."""
        plan = _plan(entries)
        with self.engine.begin() as connection:
            self._apply(connection, plan)

    def _apply(self, connection: Connection, plan: _Plan) -> None:
        for kind, (table, keys, on_conflict, updates) in WRITES.items():
            rows = plan.rows.get(kind)
            if rows:
                self.insert(connection, table, rows, keys, on_conflict, updates)
        if plan.cycles:
            cycles = list(plan.cycles.values())
            replaced = [{"r": c["run_id"], "i": c["iteration"]} for c in cycles]
            for statement in _DELETE_CHILDREN:  # a re-run cycle replaces its children
                connection.execute(statement, replaced)
            self.insert(connection, "cycles", cycles, ("run_id", "iteration"), "update")
            if plan.signals:
                self.insert(connection, "signals", plan.signals, ("run_id", "iteration", "seq"), "ignore")
            if plan.verdicts:
                self.insert(connection, "risk_verdicts", plan.verdicts, ("run_id", "iteration", "seq"), "ignore")
            if plan.learnings:
                self.insert(connection, "learnings", plan.learnings, ("run_id", "learning_id"), "ignore")
        if plan.timings:
            connection.execute(
                _UPDATE_TIMINGS,
                [{"r": t["run_id"], "i": t["iteration"], "report_ms": t["report_ms"], "total_ms": t["total_ms"]}
                 for t in plan.timings],
            )
        if plan.metrics:
            connection.execute(
                _UPDATE_METRICS,
                [{"r": m["run_id"], "n": m["name"], "v": m["version"], "trades": m["trades"], "metrics": m["metrics"],
                  "archived_at": _utc(m.get("archived_at"))} for m in plan.metrics],
            )
        for run_id, patterns in plan.patterns.items():
            connection.execute(_DELETE_PATTERNS, {"r": run_id})
            if patterns:
                self.insert(connection, "patterns", patterns, ("run_id", "dimension", "label", "kind"), "ignore")

    def insert(
        self,
        connection: Connection,
        table_name: str,
        rows: list[dict[str, Any]],
        keys: Sequence[str] = (),
        on_conflict: str | None = None,
        updates: Sequence[str] | None = None,
    ) -> int:
        """Bulk-insert ``rows`` (dicts of column values) into one table; a duplicate of ``keys`` is
        ignored or updates the row (``on_conflict``; the ``updates`` columns, default all).

        The fast paths skip SQLAlchemy's per-row parameter processing (most of the cost of a bulk
        insert): SQLite gets one ``executemany`` of plain tuples, PostgreSQL batches go through COPY.
        Other databases take the portable SQLAlchemy Core path.
        """
        table = TABLES[table_name].__table__
        columns = [c.name for c in table.columns if c.name != "id"]
        if on_conflict == "update":
            rows = _dedupe(rows, keys)
        if not rows:
            return 0
        updates = [c for c in (updates or columns) if c not in keys]
        if self.dialect == "sqlite":
            order, values = _sqlite_values(table, columns, rows)
            try:
                _executemany(connection, _sql(table.name, order, keys, on_conflict, updates, "?"), values)
            except KeyError:  # a row with an unknown column in place of a known one
                for _ in _iter_tuples(table, columns, rows, _sqlite_time):
                    pass  # raises the PoisonEntry that names it
                raise
            return len(rows)
        if self.dialect == "postgresql" and len(rows) >= COPY_THRESHOLD and _is_psycopg(connection):
            if on_conflict == "ignore":
                rows = _dedupe(rows, keys, keep="first")
            return _copy_insert(connection, table, columns, rows, keys, on_conflict, updates)
        prepared = [dict(zip(columns, values)) for values in _tuples(table, columns, rows, _utc_time)]
        connection.execute(_insert_statement(self.dialect, table, keys, on_conflict, updates), prepared)
        return len(prepared)

    def checkpoint(self) -> bool:
        """True when every committed write is in the database file itself. On SQLite a commit first
        lands in the write-ahead log; a PASSIVE checkpoint (it never waits) copies the log into the
        file, and a log damaged after that loses nothing. False while a reader holds part of the log
        back. Other databases: always True."""
        if self.dialect != "sqlite":
            return True
        with self.engine.connect() as connection:
            busy, frames, done = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        return frames == -1 or (not busy and done >= frames)

    # -- checking -----------------------------------------------------------------------------

    def quick_check(self) -> list[str]:
        """SQLite's ``PRAGMA quick_check``: [] when the file is sound, else its first complaints.
        Other databases keep their own files consistent: []."""
        if self.dialect != "sqlite":
            return []
        with self.engine.connect() as connection:
            rows = [str(row[0]) for row in connection.exec_driver_sql("PRAGMA quick_check(20)")]
        return [] if rows == ["ok"] else rows

    def cycle_iterations(self, run_id: str) -> set[int]:
        """The iterations of ``run_id`` that have a row in ``cycles``."""
        table = TABLES["cycles"].__table__
        with self.engine.connect() as connection:
            return {row[0] for row in connection.execute(select(table.c.iteration).where(table.c.run_id == run_id))}

    # -- reading ------------------------------------------------------------------------------

    def runs(self) -> list[dict[str, Any]]:
        """Every run, the most recently started first, with its cycle and trade counts and time span."""
        runs = TABLES["runs"].__table__
        cycles = TABLES["cycles"].__table__
        trades = TABLES["trades"].__table__
        counts = (
            select(cycles.c.run_id, func.count().label("cycles"), func.min(cycles.c.time).label("first"),
                   func.max(cycles.c.time).label("last"))
            .group_by(cycles.c.run_id).subquery()
        )
        trade_counts = select(trades.c.run_id, func.count().label("trades")).group_by(trades.c.run_id).subquery()
        query = (
            select(runs, counts.c.cycles, counts.c.first, counts.c.last, trade_counts.c.trades)
            .select_from(runs.outerjoin(counts, counts.c.run_id == runs.c.run_id)
                         .outerjoin(trade_counts, trade_counts.c.run_id == runs.c.run_id))
        )
        with self.engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        for row in rows:
            row["first"] = _utc(row["first"]) or row["started_at"]
            row["last"] = _utc(row["last"]) or row["started_at"]
            row["cycles"] = row["cycles"] or 0
            row["trades"] = row["trades"] or 0
        # Newest first by when the archive first saw the run (replays of the same market share sim times).
        return sorted(rows, key=lambda r: r["id"], reverse=True)

    def rows(self, table_name: str, run_ids: Iterable[str] | None = None,
             order_by: Sequence[str] = ("id",)) -> list[dict[str, Any]]:
        """Rows of one table as dicts (times as aware UTC datetimes), for some runs or all."""
        table = TABLES[table_name].__table__
        query = select(table).order_by(*[table.c[name] for name in order_by])
        if run_ids is not None:
            query = query.where(table.c.run_id.in_(list(run_ids)))
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def latest_trades(self, limit: int, run_id: str | None = None) -> list[dict[str, Any]]:
        """The ``limit`` most recently closed trades of every run (or of ``run_id``), oldest first."""
        table = TABLES["trades"].__table__
        query = select(table).order_by(table.c.closed_at.desc(), table.c.id.desc()).limit(limit)
        if run_id is not None:
            query = query.where(table.c.run_id == run_id)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)][::-1]

    def grouped_counts(self, table_name: str, column: str, run_ids: Iterable[str] | None = None) -> dict[Any, int]:
        """``SELECT column, count(*) ... GROUP BY column`` for some runs or all."""
        table = TABLES[table_name].__table__
        query = select(table.c[column], func.count()).group_by(table.c[column])
        if run_ids is not None:
            query = query.where(table.c.run_id.in_(list(run_ids)))
        with self.engine.connect() as connection:
            return {value: count for value, count in connection.execute(query)}

    def count(self, table_name: str) -> int:
        table = TABLES[table_name].__table__
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(table)).scalar_one()


# -- planning a batch -----------------------------------------------------------------------------


class _Plan:
    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.cycles: dict[tuple[str, int], dict[str, Any]] = {}
        self.signals: list[dict[str, Any]] = []
        self.verdicts: list[dict[str, Any]] = []
        self.learnings: list[dict[str, Any]] = []
        self.timings: list[dict[str, Any]] = []
        self.metrics: list[dict[str, Any]] = []
        self.patterns: dict[str, list[dict[str, Any]]] = {}


def _plan(entries: Sequence[dict[str, Any]]) -> _Plan:
    """Sort a batch's entries into row lists per table (a later cycle record replaces an earlier one)."""
    plan = _Plan()
    children: dict[tuple[str, int], tuple[list, list, list]] = {}
    for entry in entries:
        kind, data = entry.get("kind"), entry.get("data")
        if not isinstance(data, dict):
            raise PoisonEntry(f"outbox entry {entry.get('seq')}: no data")
        if kind in WRITES:
            plan.rows.setdefault(kind, []).append(data)
        elif kind == "cycle":
            cycle = dict(data["cycle"])
            key = (cycle["run_id"], cycle["iteration"])
            plan.cycles[key] = cycle
            children[key] = (data.get("signals", []), data.get("verdicts", []), data.get("learnings", []))
        elif kind == "cycle_timing":
            plan.timings.append(data)
        elif kind == "strategy_metrics":
            plan.metrics.append(data)
        elif kind == "patterns":
            plan.patterns[data["run_id"]] = data["patterns"]
        else:
            raise PoisonEntry(f"outbox entry {entry.get('seq')}: unknown kind {kind!r}")
    for signals, verdicts, learnings in children.values():
        plan.signals.extend(signals)
        plan.verdicts.extend(verdicts)
        plan.learnings.extend(learnings)
    return plan


def _dedupe(rows: list[dict[str, Any]], keys: Sequence[str], keep: str = "last") -> list[dict[str, Any]]:
    """One row per key, the last (one statement may not touch a row twice on PostgreSQL) or the first
    (``keep="first"``: the duplicate rule "ignore" within a batch)."""
    if not keys:
        return rows
    try:
        found = list(map(itemgetter(*keys), rows))  # the usual rows: every key there, and no key twice
        if len(set(found)) == len(rows):
            return rows
    except (KeyError, TypeError):
        pass
    unique: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = tuple(row.get(k) for k in keys)
        if keep == "last" or key not in unique:
            unique[key] = row
    return list(unique.values()) if len(unique) != len(rows) else rows


def _utc_time(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _pg_time(value: Any) -> datetime:
    """A time for a ``timestamptz`` column: an aware time is sent as it is (the server takes the
    instant, whatever the offset), a naive one is UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _sqlite_time(value: Any) -> str:
    """SQLAlchemy's own SQLite storage format for a UTC datetime (so reads through the models parse it)."""
    if isinstance(value, str) and value.endswith("+00:00") and len(value) in (25, 32) and value[10] == "T":
        # The outbox's ISO UTC times, reshaped without parsing (the hot path of a bulk insert).
        return f"{value[:10]} {value[11:19]}.{value[20:26] if len(value) == 32 else '000000'}"
    return _utc_time(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def _tuples(table: Any, columns: list[str], rows: list[dict[str, Any]], time: Any) -> list[tuple]:
    """Rows as tuples in column order: missing columns None, times converted; unknown columns refused."""
    return list(_iter_tuples(table, columns, rows, time))


def _iter_tuples(table: Any, columns: list[str], rows: list[dict[str, Any]], time: Any) -> Iterator[tuple]:
    """``_tuples`` one row at a time (a COPY sends each row as soon as it is made)."""
    known = frozenset(columns)
    times = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, UTCDateTime)]
    every = itemgetter(*columns)
    width = len(columns)
    for row in rows:
        if len(row) == width:  # the usual row: every column, nothing else
            try:
                values = list(every(row))
            except KeyError:
                values = None
        else:
            values = None
        if values is None:
            if not row.keys() <= known:
                raise PoisonEntry(f"{table.name}: unknown columns {sorted(set(row) - known)}")
            values = [row.get(c) for c in columns]
        for i in times:
            if values[i] is not None:
                values[i] = time(values[i])
        yield tuple(values)


def _sqlite_values(table: Any, columns: list[str], rows: list[dict[str, Any]]) -> tuple[list[str], Iterable[tuple]]:
    """The rows of ``_iter_tuples(table, columns, rows, _sqlite_time)`` for SQLite's executemany, and the
    columns in the order of their values. Made row by row in Python, 100,000 rows cost a quarter of SQLite's
    own time to store them, most of it the times. The usual batch (every row with every column and nothing
    else) is made without a Python step per row: the times a column at a time (``_sqlite_texts``), the
    other values of a row by one ``itemgetter``, the times after them (last in the statement too). A row
    with another key in place of a column raises ``KeyError`` while SQLite takes the rows (``insert`` turns
    it into the ``PoisonEntry`` of the row-by-row path)."""
    width = len(columns)
    times = [c for c in columns if isinstance(table.c[c].type, UTCDateTime)]
    plain = [c for c in columns if c not in times]
    if len(plain) < 2 or not all(map(width.__eq__, map(len, rows))):
        return columns, _iter_tuples(table, columns, rows, _sqlite_time)
    if not times:
        return columns, map(itemgetter(*columns), rows)
    try:
        texts = [_sqlite_texts(list(map(itemgetter(c), rows))) for c in times]
    except KeyError:
        return columns, _iter_tuples(table, columns, rows, _sqlite_time)
    return plain + times, map(add, map(itemgetter(*plain), rows), zip(*texts))


def _sqlite_texts(values: list[Any]) -> list[Any]:
    """``[_sqlite_time(v) for v in values]`` (None kept). A column of ISO UTC times all of one shape, with
    or without microseconds (the outbox's), is reshaped as one string: joined, its fixed places checked,
    ``T`` and ``+00:00`` replaced, split again."""
    n = len(values)
    try:
        joined = "\n".join(values)
    except TypeError:  # None, a datetime
        joined = ""
    for size, fraction in ((25, ".000000"), (32, "")):
        step = size + 1
        if (n and len(joined) == step * n - 1 and joined.count("\n") == n - 1 and joined[size::step] == "\n" * (n - 1)
                and joined.count("T") == n and joined[10::step] == "T" * n and joined.count("+") == n
                and all(joined[size - 6 + i::step] == char * n for i, char in enumerate("+00:00"))
                and (size == 25 or joined[19::step] == "." * n)):
            # each value: size long, its one T at 10, its one + in its +00:00 suffix (and "." at 19)
            return joined.replace("T", " ").replace("+00:00", fraction).split("\n")
    return [None if v is None else _sqlite_time(v) for v in values]


def _executemany(connection: Connection, sql: str, values: Iterable[tuple]) -> None:
    """``executemany`` on the driver's own cursor, which takes the rows from an iterator one at a time
    (``exec_driver_sql`` wants them all in a list: 100,000 rows alive at once made a bulk insert a tenth
    slower). Its errors are raised as SQLAlchemy raises them (``OperationalError`` ...: ``is_transient``)."""
    raw = connection.connection.driver_connection
    error = connection.dialect.loaded_dbapi.Error
    try:
        cursor = raw.cursor()
        try:
            cursor.executemany(sql, values)
        finally:
            cursor.close()
    except error as exc:
        invalidated = connection.dialect.is_disconnect(exc, raw, None)
        if invalidated:
            connection.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, error, connection_invalidated=invalidated,
                                  dialect=connection.dialect) from exc


def _sql(table: str, columns: list[str], keys: Sequence[str], on_conflict: str | None, updates: Sequence[str],
         mark: str) -> str:
    """``INSERT ... ON CONFLICT`` for SQLite (``?``) or PostgreSQL (``%s``), columns quoted."""
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join(mark for _ in columns)})'
    if keys and on_conflict == "ignore":
        sql += f" ON CONFLICT ({', '.join(keys)}) DO NOTHING"
    elif keys and on_conflict == "update" and updates:
        sql += (f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
                + ", ".join(f'"{c}" = excluded."{c}"' for c in updates))
    return sql


def _insert_statement(dialect: str, table: Any, keys: Sequence[str], on_conflict: str | None,
                      updates: Sequence[str]) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # other databases: a plain insert (duplicates then fail the batch, which is retried)
        from sqlalchemy import insert
    statement = insert(table)
    if not keys or on_conflict is None or dialect not in ("sqlite", "postgresql"):
        return statement
    if on_conflict == "ignore":
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in updates}
    )


def _is_psycopg(connection: Connection) -> bool:
    return connection.dialect.driver == "psycopg"


def _copy_insert(
    connection: Connection,
    table: Any,
    columns: list[str],
    rows: list[dict[str, Any]],
    keys: Sequence[str],
    on_conflict: str | None,
    updates: Sequence[str],
) -> int:
    """COPY the rows (one per key already) in binary. First straight into the table, under a savepoint:
    a batch of new rows, the usual case, costs one COPY and nothing else. When a key is already stored
    (a batch sent again after a crash, a re-run cycle) that COPY fails on it; the savepoint is rolled
    back and the rows go through a temporary table and one ``INSERT ... SELECT ... ON CONFLICT``,
    which applies the duplicate rule. Rows are converted while they stream, so Python and the server
    work at the same time."""
    from psycopg.errors import UniqueViolation

    raw = connection.connection.driver_connection
    names = ", ".join(f'"{c}"' for c in columns)
    types = _pg_types(table, columns)

    def copy(cursor: Any, target: str) -> None:
        with cursor.copy(f"COPY {target} ({names}) FROM STDIN (FORMAT BINARY)") as stream:
            stream.set_types(types)
            for values in _iter_tuples(table, columns, rows, _pg_time):
                stream.write_row(values)

    with raw.cursor() as cursor:
        if not keys or on_conflict is None:  # no duplicate rule: a duplicate fails the batch
            copy(cursor, f'"{table.name}"')
            return len(rows)
        cursor.execute("SAVEPOINT gobot_copy")
        try:
            copy(cursor, f'"{table.name}"')
        except UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT gobot_copy")
        else:
            cursor.execute("RELEASE SAVEPOINT gobot_copy")
            return len(rows)
        staging = f"gobot_staging_{table.name}"
        conflict = f" ON CONFLICT ({', '.join(keys)}) DO NOTHING"
        if on_conflict == "update" and updates:
            conflict = f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET " + ", ".join(
                f'"{c}" = EXCLUDED."{c}"' for c in updates)
        cursor.execute(f'CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE "{table.name}" INCLUDING DEFAULTS) '
                       "ON COMMIT DELETE ROWS")
        copy(cursor, staging)
        cursor.execute(f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM {staging}{conflict}')
        cursor.execute(f"TRUNCATE {staging}")
    return len(rows)


def _pg_types(table: Any, columns: list[str]) -> list[str]:
    """PostgreSQL type names of the columns, for binary COPY (no text parsing on the server)."""
    from sqlalchemy import Boolean, Float, Integer

    names = []
    for column in columns:
        kind = table.c[column].type
        if isinstance(kind, UTCDateTime):
            names.append("timestamptz")
        elif isinstance(kind, Boolean):
            names.append("bool")
        elif isinstance(kind, Integer):
            names.append("int4")
        elif isinstance(kind, Float):
            names.append("float8")
        else:  # String, Text, AutoString: varchar and text share their binary form
            names.append("text")
    return names


def _current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def _utc(value: Any) -> Any:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return value


def loads(value: str | None, default: Any = None) -> Any:
    """A JSON column's value (``default`` for NULL)."""
    return json.loads(value) if value else default


def sqlite_path(url: str) -> str | None:
    parsed = make_url(url)
    return parsed.database if parsed.get_backend_name() == "sqlite" else None


