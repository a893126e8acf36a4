"""How fast the archiver stores and reports, on SQLite and PostgreSQL.

Prints three tables, each with ratios to a baseline measured in the same process:

1. rows archived per second in bulk (100,000 closed-trade rows, and fills, in one transaction), against raw
   ``sqlite3.executemany`` and against sqlmodel's ORM (``session.add_all``), target >= 100k rows/s; on
   PostgreSQL the archiver's COPY (straight into the table, under a savepoint) against the previous path
   (look the keys up, then COPY) and against SQLAlchemy's executemany INSERT, each the best of 5 interleaved
   runs into an empty table after a CHECKPOINT, target >= 150k rows/s;
2. the latency of one fill event in the trading loop (``gobot_on_fill``: outbox append + fsync,
   the writer thread storing in the background), against a direct synchronous database insert;
3. the time of ``gobot report`` for 100,000 trades: building the data (query + metrics + patterns)
   and drawing the HTML page.

    .venv/bin/python bench/archiver.py [--rows 100000] [--fills 2000] [--quick] [--json FILE]

``--quick``: 20,000 rows and 300 fills. ``--json FILE``: also writes the table rows of ``make bench``
(bench/table.py) to FILE.

PostgreSQL comes from $GOBOT_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test),
in a schema of its own that is dropped afterwards; without a server its rows say why.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

from gobot_hookspecs import Action, Fill, Side, Trade

POSTGRES_URL = os.environ.get("GOBOT_TEST_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET_ROWS_PER_SECOND = 100_000
TARGET_POSTGRES_ROWS_PER_SECOND = 150_000
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def trades(n: int, run_id: str = "r-bench") -> list[Trade]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        opened = START + timedelta(minutes=15 * i)
        entry = 100 + rng.random() * 10
        exit_ = entry * (1 + rng.gauss(0.0005, 0.01))
        direction = Action.LONG if rng.random() < 0.6 else Action.SHORT
        sign = 1 if direction is Action.LONG else -1
        out.append(Trade(
            symbol=rng.choice(["BTC/USDT", "ETH/USDT", "SOL/USDT"]), direction=direction, amount=0.1, entry_price=entry,
            exit_price=exit_, opened_at=opened, closed_at=opened + timedelta(minutes=rng.randint(15, 600)), fees=0.02,
            pnl=sign * (exit_ - entry) * 0.1 - 0.02, exit_reason="signal",
            confidence=round(0.5 + rng.random() * 0.5, 3),
            strategy="sma_rsi", strategy_version=1 + i // 20_000, client_order_id=f"gb{i:024x}",
            initial_stop_loss=entry * (1 - sign * 0.02),
        ))
    return out


def trade_rows(n: int, run_id: str = "r-bench") -> list[dict]:
    from gobot_plugins.archiver import records

    return [records.trade_row(run_id, i, t) for i, t in enumerate(trades(n, run_id))]


def postgres_schema_url() -> tuple[str | None, str, object]:
    """A URL on a fresh schema, its name and an admin engine; (None, reason, None) without a server."""
    from sqlalchemy import create_engine, text

    try:
        admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        schema = f"gobot_bench_{uuid.uuid4().hex[:8]}"
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        return None, f"no PostgreSQL: {str(exc).splitlines()[0][:60]}", None
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}", schema, admin


def drop_schema(schema: str, admin) -> None:
    from sqlalchemy import text

    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


# -- 1. bulk insert -------------------------------------------------------------------------------


def raw_sqlite_executemany(rows: list[dict], folder: Path, table: str = "trades") -> float:
    """The floor of a bulk insert on SQLite: the same rows, as the archiver stores them (the tuples made
    before the clock starts), into the same table (made by the archive's own migrations: same columns,
    types, constraints and indexes), on a connection with the archive's pragmas, by one plain
    ``sqlite3`` executemany and its commit."""
    from gobot_plugins.archiver.schema import TABLES
    from gobot_plugins.archiver.store import SQLITE_PRAGMAS, ArchiveStore, _sqlite_time, _tuples

    path = folder / f"raw-{table}-{uuid.uuid4().hex[:6]}.db"
    store = ArchiveStore(f"sqlite:///{path}")
    store.migrate()
    store.close()
    model = TABLES[table].__table__
    columns = [c.name for c in model.columns if c.name != "id"]
    values = _tuples(model, columns, rows, _sqlite_time)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    for pragma in SQLITE_PRAGMAS:
        connection.execute(f"PRAGMA {pragma}")
    names = ", ".join(f'"{c}"' for c in columns)
    started = time.perf_counter()
    with connection:
        connection.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", values)
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def sqlmodel_orm(rows: list[dict], folder: Path) -> float:
    from sqlmodel import Session

    from gobot_plugins.archiver.schema import TradeRow
    from gobot_plugins.archiver.store import ArchiveStore

    store = ArchiveStore(f"sqlite:///{folder / 'orm.db'}")
    store.migrate()
    objects = [TradeRow(**{k: (datetime.fromisoformat(v) if k in ("opened_at", "closed_at") else v)
                           for k, v in row.items()})
               for row in rows]
    started = time.perf_counter()
    with Session(store.engine) as session:
        session.add_all(objects)
        session.commit()
    seconds = time.perf_counter() - started
    store.close()
    return seconds


def fill_rows(n: int, run_id: str = "r-bench") -> list[dict]:
    from gobot_plugins.archiver import records

    return [records.fill_row(run_id, i, Fill(order_id=f"o{i}", client_order_id=f"gb{i:024x}", symbol="BTC/USDT",
                                             side=Side.BUY, purpose="open", amount=0.1, price=100.0 + i % 97, fee=0.01,
                                             time=START + timedelta(seconds=i))) for i in range(n)]


def archiver_bulk(rows: list[dict], url: str, table: str = "trades", key: str = "trade_key") -> float:
    """Seconds of the archiver's bulk insert of ``rows`` (duplicates ignored) in one transaction, into an
    empty table of a new database at ``url`` (a SQLite URL is made unique per call)."""
    from gobot_plugins.archiver.store import ArchiveStore

    if url.startswith("sqlite:///"):
        url = f"{url.removesuffix('.db')}-{uuid.uuid4().hex[:6]}.db"
    store = ArchiveStore(url)
    store.migrate()
    started = time.perf_counter()
    with store.engine.begin() as connection:
        store.insert(connection, table, rows, (key,), "ignore")
    seconds = time.perf_counter() - started
    assert store.count(table) == len(rows)
    store.close()
    return seconds


def previous_copy_insert(connection, table, columns: list[str], rows: list[tuple], keys, on_conflict, updates) -> int:
    """The archiver's PostgreSQL bulk path before issue 19 (kept here as the baseline): with duplicates to
    ignore on a one-column key, the keys already stored are looked up first, then the rest COPied in."""
    from gobot_plugins.archiver.store import _pg_types

    raw = connection.connection.driver_connection
    names = ", ".join(f'"{c}"' for c in columns)
    index = columns.index(keys[0])
    with raw.cursor() as cursor:
        cursor.execute(f'SELECT "{keys[0]}" FROM "{table.name}" WHERE "{keys[0]}" = ANY(%s)',
                       ([r[index] for r in rows],))
        seen = {value for (value,) in cursor.fetchall()}
    fresh = []
    for row in rows:
        if row[index] not in seen:
            seen.add(row[index])
            fresh.append(row)
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN (FORMAT BINARY)') as copy:
        copy.set_types(_pg_types(table, columns))
        for row in fresh:
            copy.write_row(row)
    return len(fresh)


def settle(store) -> None:
    """A CHECKPOINT before a timed run, so it does not pay for writing out the previous run's pages
    (skipped without the right to)."""
    try:
        with store.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("CHECKPOINT")
    except Exception:
        pass


def pg_bulk_rates(rows: list[dict], url: str, repeats: int = 3) -> dict[str, float]:
    """Rows per second of each PostgreSQL bulk path into ``trades`` (duplicates ignored): the best of
    ``repeats`` interleaved runs, each into an empty table; "again": the same batch sent a second time;
    "floor": the server alone, taking the same rows as ready binary COPY data (no Python per row)."""
    from gobot_plugins.archiver.schema import TABLES
    from gobot_plugins.archiver.store import ArchiveStore, _insert_statement, _tuples, _utc_time

    store = ArchiveStore(url)
    store.migrate()
    table = TABLES["trades"].__table__
    columns = [c.name for c in table.columns if c.name != "id"]
    keys = ("trade_key",)

    def copy(connection):
        store.insert(connection, "trades", rows, keys, "ignore")

    def previous(connection):
        previous_copy_insert(connection, table, columns, _tuples(table, columns, rows, _utc_time), keys, "ignore", [])

    def executemany(connection):
        prepared = [dict(zip(columns, values)) for values in _tuples(table, columns, rows, _utc_time)]
        connection.execute(_insert_statement("postgresql", table, keys, "ignore", []), prepared)

    names = ", ".join(f'"{c}"' for c in columns)
    with store.engine.begin() as connection, connection.connection.driver_connection.cursor() as cursor:
        copy(connection)
        with cursor.copy(f"COPY (SELECT {names} FROM trades ORDER BY id) TO STDOUT (FORMAT BINARY)") as stream:
            data = b"".join(bytes(chunk) for chunk in stream)

    def floor(connection):
        with connection.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY trades ({names}) FROM STDIN (FORMAT BINARY)") as stream:
                for start in range(0, len(data), 1 << 16):
                    stream.write(data[start:start + (1 << 16)])

    best: dict[str, float] = {}
    for round_ in range(repeats):
        for name, path in (("floor", floor), ("copy", copy), ("previous", previous), ("executemany", executemany),
                           ("again", copy)):
            if name == "executemany" and round_:
                continue  # one run is enough to place it
            with store.engine.begin() as connection:
                if name != "again":
                    connection.exec_driver_sql("TRUNCATE trades")
            settle(store)
            started = time.perf_counter()
            with store.engine.begin() as connection:
                path(connection)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
            assert store.count("trades") == len(rows)
    store.close()
    return {name: len(rows) / seconds for name, seconds in best.items()}


def outbox_drain(n: int, url: str, folder: Path) -> float:
    """Entries appended to the outbox, then drained by the writer thread into the database."""
    from gobot_plugins.archiver import records
    from gobot_plugins.archiver.store import ArchiveStore
    from gobot_plugins.archiver.writer import ArchiveWriter, Outbox

    outbox = Outbox(folder / f"drain-{uuid.uuid4().hex[:6]}.jsonl", fsync=False)
    for i, trade in enumerate(trades(n, "r-drain")):
        outbox.add("trade", records.trade_row("r-drain", i, trade))

    def open_store():
        store = ArchiveStore(url)
        store.migrate()
        return store

    writer = ArchiveWriter(open_store, outbox)
    writer.store = open_store()
    started = time.perf_counter()
    writer.start()
    assert writer.wait_idle(600)
    seconds = time.perf_counter() - started
    writer.close(1)
    return seconds


# -- 2. one fill in the loop ----------------------------------------------------------------------


def fill_latencies(url: str, folder: Path, count: int) -> tuple[list[float], list[float]]:
    """(seconds per gobot_on_fill call with the outbox, seconds per direct synchronous insert)."""
    from gobot_plugins.archiver import Archiver, records
    from gobot_plugins.archiver.store import ArchiveStore
    from gobot_plugins.archiver.writer import ArchiveWriter, Outbox

    plugin = Archiver()
    plugin.outbox = Outbox(folder / f"outbox-{uuid.uuid4().hex[:6]}.jsonl", fsync=True)

    def open_store():
        store = ArchiveStore(url)
        store.migrate()
        return store

    plugin.writer = ArchiveWriter(open_store, plugin.outbox)
    plugin.writer.store = open_store()
    plugin.writer.start()
    ctx = SimpleNamespace(run_id="r-latency", iteration=1)
    fills = [Fill(order_id=f"o{i}", client_order_id=f"c{i}", symbol="BTC/USDT", side=Side.BUY, purpose="open",
                  amount=0.1, price=100.0 + i, fee=0.01, time=START + timedelta(seconds=i)) for i in range(count)]
    through_outbox = []
    for fill in fills:
        started = time.perf_counter()
        plugin.gobot_on_fill(ctx, fill)
        through_outbox.append(time.perf_counter() - started)
        if len(through_outbox) % 50 == 0:
            time.sleep(0.001)  # cycles are apart in a real loop; let the writer run
    assert plugin.writer.wait_idle(120)
    plugin.writer.close(1)

    store = ArchiveStore(url)
    direct = []
    for _i, fill in enumerate(fills):
        row = records.fill_row("r-direct", 1, fill)
        started = time.perf_counter()
        with store.engine.begin() as connection:
            store.insert(connection, "fills", [row], ("fill_key",), "ignore")
        direct.append(time.perf_counter() - started)
    store.close()
    return through_outbox, direct


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- 3. the report --------------------------------------------------------------------------------


def report_times(url: str, n: int) -> tuple[float, float, float]:
    """(metrics alone on in-memory trades, build_report from the database, render_html) in seconds."""
    from gobot_hookspecs import metrics
    from gobot_plugins.archiver import records
    from gobot_plugins.archiver.report import build_report, render_html
    from gobot_plugins.archiver.store import ArchiveStore

    data = trades(n, "r-report")
    store = ArchiveStore(url)
    store.migrate()
    with store.engine.begin() as connection:
        store.insert(connection, "runs", [records.run_row("r-report", "paper", START, 1000.0, ["BTC/USDT"])],
                     ("run_id",), "update")
        store.insert(connection, "trades", [records.trade_row("r-report", i, t) for i, t in enumerate(data)],
                     ("trade_key",), "ignore")
    started = time.perf_counter()
    for dimension in metrics.DIMENSIONS:
        metrics.metrics_by(data, dimension, 1000.0)
    metrics.trade_metrics(data, 1000.0)
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    report = build_report(store, "r-report", min_trades=20)
    build = time.perf_counter() - started
    started = time.perf_counter()
    page = render_html(report)
    html = time.perf_counter() - started
    assert report["summary"]["trades"] == n and page.count("<svg") == 4
    store.close()
    return baseline, build, html


def sqlite_bulk_cases(rows: list[dict], fills: list[dict], folder: Path, repeats: int) -> dict[str, float]:
    """Seconds of each SQLite bulk case: the best of ``repeats`` interleaved rounds, each into a new
    database (the machine's speed varies from one second to the next; a ratio from one run of each is
    as much noise as measure)."""
    cases = {
        "base trades": lambda: raw_sqlite_executemany(rows, folder, "trades"),
        "archiver trades": lambda: archiver_bulk(rows, f"sqlite:///{folder / 'bulk.db'}"),
        "base fills": lambda: raw_sqlite_executemany(fills, folder, "fills"),
        "archiver fills": lambda: archiver_bulk(fills, f"sqlite:///{folder / 'bulk-fills.db'}", "fills", "fill_key"),
    }
    best: dict[str, float] = {}
    for _ in range(repeats):
        for name, case in cases.items():
            best[name] = min(best.get(name, float("inf")), case())
    return best


def bulk_section(args, folder: Path, pg_url: str | None, pg_why: str) -> list[dict]:
    """Table 1 (bulk inserts); returns its rows for ``--json``."""
    rows = trade_rows(args.rows)
    fills = fill_rows(args.rows)
    orm_rows = rows[: max(1000, args.rows // 10)]
    repeats = 3 if args.quick else 5
    print(f"1. Bulk insert, {args.rows:,} rows in one transaction (target >= {TARGET_ROWS_PER_SECOND:,} rows/s); "
          f"SQLite: best of {repeats} interleaved runs")
    best = sqlite_bulk_cases(rows, fills, folder, repeats)
    trades_base, fills_base = len(rows) / best["base trades"], len(fills) / best["base fills"]
    cases = [("raw sqlite3 executemany, trades (baseline)", len(rows), best["base trades"], trades_base),
             ("archiver bulk insert, SQLite, trades", len(rows), best["archiver trades"], trades_base),
             ("raw sqlite3 executemany, fills (baseline)", len(fills), best["base fills"], fills_base),
             ("archiver bulk insert, SQLite, fills", len(fills), best["archiver fills"], fills_base),
             ("sqlmodel ORM add_all, SQLite, trades", len(orm_rows), sqlmodel_orm(orm_rows, folder), trades_base)]
    if pg_url:
        cases.append(("archiver bulk insert, PostgreSQL, fills", len(fills),
                      archiver_bulk(fills, pg_url, "fills", "fill_key"), fills_base))
    cases.append(("outbox -> SQLite drain (writer thread), trades", len(rows),
                  outbox_drain(len(rows), f"sqlite:///{folder / 'drain.db'}", folder), trades_base))
    print(f"{'case':<46} {'rows':>8} {'seconds':>8} {'rows/s':>10} {'x baseline':>11}  verdict")
    for name, count, seconds, base_rate in cases:
        rate = count / seconds
        verdict = "" if "baseline" in name or "ORM" in name or "drain" in name else (
            "OK" if rate >= TARGET_ROWS_PER_SECOND else "UNDER TARGET")
        print(f"{name:<46} {count:>8} {seconds:>8.3f} {rate:>10,.0f} {rate / base_rate:>11.3f}  {verdict}")
    print("(trades: 23 columns, fills: 14, each with a unique key and one more index. A baseline inserts the same "
          "rows as stored, made before its clock starts, into the same table with the archive's pragmas; "
          "the drain includes batching, commits and checkpoints every batch, and freeing the parsed entries)")
    sqlite_rate = len(rows) / best["archiver trades"]
    out = [row("archiver bulk insert on SQLite, trades", sqlite_rate, "raw sqlite3 executemany, same table and run",
               trades_base, f">= {TARGET_ROWS_PER_SECOND // 1000}k rows/s", sqlite_rate >= TARGET_ROWS_PER_SECOND)]
    pg_row = row("archiver bulk insert on PostgreSQL, trades", None, "previous path (key lookup, then COPY), same run",
                 None, f">= {TARGET_POSTGRES_ROWS_PER_SECOND // 1000}k rows/s (COPY)", False)
    if not pg_url:
        print(f"\nPostgreSQL skipped: {pg_why}")
        return [*out, {**pg_row, "note": pg_why}]
    return [*out, postgres_bulk_table(rows, pg_url, repeats, pg_row)]


def postgres_bulk_table(rows: list[dict], pg_url: str, repeats: int, pg_row: dict) -> dict:
    """Table 1's PostgreSQL part (COPY against the previous path and the server's floor); its ``make bench`` row."""
    rates = pg_bulk_rates(rows, pg_url, repeats=repeats)
    print(f"\nPostgreSQL, trades, {len(rows):,} rows, best of interleaved runs into an empty table "
          f"(target >= {TARGET_POSTGRES_ROWS_PER_SECOND:,} rows/s)")
    print(f"{'path':<52} {'rows/s':>10} {'x previous':>11}  verdict")
    for name, label in (("copy", "archiver: COPY straight in, under a savepoint"),
                        ("previous", "previous: look the keys up, then COPY (baseline)"),
                        ("executemany", "SQLAlchemy executemany INSERT ... ON CONFLICT"),
                        ("again", "archiver, the same batch sent again (all stored)"),
                        ("floor", "floor: the server alone, rows as ready COPY data")):
        verdict = ("OK" if rates[name] >= TARGET_POSTGRES_ROWS_PER_SECOND else "UNDER TARGET") if name == "copy" else ""
        print(f"{label:<52} {rates[name]:>10,.0f} {rates[name] / rates['previous']:>11.2f}  {verdict}")
    print(f"(the archiver's COPY at {rates['copy'] / rates['floor']:.0%} of the floor's rate: below 100 %, "
          "Python making the rows costs that much; both move with the machine's load)")
    return {**pg_row, "value": rates["copy"], "baseline_value": rates["previous"],
            "ratio": rates["copy"] / rates["previous"], "met": rates["copy"] >= TARGET_POSTGRES_ROWS_PER_SECOND}


def row(measure: str, value, baseline: str, baseline_value, goal: str, met: bool, unit: str = "rows/s") -> dict:
    """One row of the ``make bench`` table (bench/table.py)."""
    ratio = value / baseline_value if value and baseline_value else None
    return {"measure": measure, "value": value, "unit": unit, "baseline": baseline, "baseline_value": baseline_value,
            "ratio": ratio, "goal": goal, "met": met}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--fills", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows and 300 fills")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the table rows of `make bench` here")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.fills = min(args.rows, 20_000), min(args.fills, 300)
    folder = Path(tempfile.mkdtemp(prefix="gobot-bench-"))
    pg_url, pg_schema, pg_admin = postgres_schema_url()
    try:
        table_rows = bulk_section(args, folder, pg_url, pg_schema)
        if args.json:
            args.json.write_text(json.dumps(table_rows, indent=1))
        other_sections(args, folder, pg_url)
    finally:
        if pg_url:
            drop_schema(pg_schema, pg_admin)


def other_sections(args, folder: Path, pg_url: str | None) -> None:
    """Tables 2 (one fill in the loop) and 3 (the report)."""
    print(f"\n2. One fill event in the trading loop ({args.fills} fills; the writer stores them in the background)")
    print(f"{'case':<44} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p99 x direct':>13}")
    targets = [("SQLite", f"sqlite:///{folder / 'fills.db'}")] + ([("PostgreSQL", pg_url)] if pg_url else [])
    for label, url in targets:
        outbox, direct = fill_latencies(url, folder, args.fills)
        for name, values in ((f"direct synchronous insert, {label} (baseline)", direct),
                             (f"gobot_on_fill via the outbox, {label}", outbox)):
            print(f"{name:<44} {percentile(values, 0.5) * 1000:>8.3f} {percentile(values, 0.99) * 1000:>8.3f} "
                  f"{max(values) * 1000:>8.3f} {percentile(values, 0.99) / percentile(direct, 0.99):>13.2f}")

    print(f"\n3. `gobot report` for {args.rows:,} trades")
    print(f"{'case':<44} {'seconds':>8} {'x baseline':>11}")
    for label, url in [("SQLite", f"sqlite:///{folder / 'report.db'}")] + ([("PostgreSQL", pg_url)] if pg_url else []):
        base, build, html = report_times(url, args.rows)
        print(f"{'metrics alone, in memory (baseline)':<44} {base:>8.3f} {1.0:>11.2f}")
        print(f"{'build the report data, ' + label:<44} {build:>8.3f} {build / base:>11.2f}")
        print(f"{'render the HTML page with 4 plots':<44} {html:>8.3f} {html / base:>11.2f}")


if __name__ == "__main__":
    main()
