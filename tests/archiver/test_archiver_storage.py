"""What the archiver stores, on SQLite and on PostgreSQL: every cycle, signal, risk verdict, order,
fill and trade; idempotent re-writes; migrations that keep data; a database that fails never blocks
the loop and loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from gobot_hookspecs import Fill, Side, hookimpl
from gobot_plugins.archiver.schema import SCHEMA_REVISION, VERSION_TABLE
from gobot_plugins.archiver.store import ArchiveStore

GOBOT = str(Path(sys.executable).parent / "gobot")


def archiver(bot):
    return bot.plugin_set.pm.get_plugin("archiver")


def test_a_run_archives_every_cycle_signal_verdict_order_fill_and_trade(archive_bot, run_bot, open_store):
    bot = archive_bot()
    run_bot(bot, 40)
    store = open_store()
    state = bot.state
    assert state.trades, "the demo strategy should trade in 40 cycles"

    cycles = store.rows("cycles", order_by=("iteration",))
    assert [c["iteration"] for c in cycles] == list(range(1, 41))
    assert all(c["scan_ms"] > 0 and c["validate_ms"] > 0 and c["report_ms"] is not None and c["total_ms"] > 0
               for c in cycles)
    assert [round(c["equity"], 9) for c in cycles] == [round(c.equity, 9) for c in state.cycles]
    assert cycles[0]["time"].tzinfo is not None and cycles[0]["time"] == state.cycles[0].time

    signals = store.rows("signals")
    assert len(signals) == sum(c["signals"] for c in cycles) > 0
    assert {s["source"] for s in signals} == {"sma_rsi"} and {s["strategy"] for s in signals} == {"sma_rsi"}

    verdicts = store.rows("risk_verdicts")
    assert verdicts and {v["plugin"] for v in verdicts} >= {"risk_limits"}
    assert ({v["symbol"] for v in verdicts} <= set(bot.settings.trading.symbols)
            and all(v["intent_id"] for v in verdicts))
    vetoes = [v for v in verdicts if not v["approved"]]
    assert len(vetoes) == sum(c["vetoes"] for c in cycles) and all(v["reason"] for v in vetoes)

    fills = store.rows("fills")
    orders = store.rows("orders")
    # Fills of orders; exits inside a candle (stop-loss, take-profit) are the executor's own.
    assert {f["client_order_id"] for f in fills if f["reason"] == "signal"} <= {o["client_order_id"] for o in orders}
    assert len(fills) == sum(c["fills"] for c in cycles) > 0
    trades = store.rows("trades", order_by=("closed_at", "id"))
    assert [(t["symbol"], round(t["pnl"], 9)) for t in trades] == [(t.symbol, round(t.pnl, 9)) for t in state.trades]
    first, model = trades[0], state.trades[0]
    assert first["strategy"] == "sma_rsi" and first["strategy_version"] == model.strategy_version
    assert first["confidence"] == model.confidence and first["entry_hour"] == model.opened_at.hour
    assert first["r_multiple"] == pytest.approx(
        model.pnl / (abs(model.entry_price - model.initial_stop_loss) * model.amount))
    assert first["client_order_id"] == model.client_order_id and first["holding_seconds"] > 0

    learnings = store.rows("learnings")
    assert len(learnings) == len(state.learnings) > 0 and all(json.loads(item["evidence"]) for item in learnings)
    [run] = store.runs()
    assert run["run_id"] == state.run_id and run["mode"] == "paper" and run["cycles"] == 40
    assert len(archiver(bot).outbox) == 0 and archiver(bot).outbox.path.read_text() == ""


def test_events_emitted_again_are_stored_once_and_a_rerun_cycle_replaces_its_record(archive_bot, run_bot, open_store,
                                                                                    tmp_path):
    """What a cycle re-run after a crash does: the same events again, and the cycle with other signals."""
    from gobot_plugins.archiver import records
    from gobot_plugins.archiver.writer import Outbox

    bot = archive_bot()
    run_bot(bot, 30)
    store = open_store()
    run_id = [bot.state.run_id]
    count = lambda table: len(store.rows(table, run_id))  # noqa: E731
    before = {t: count(t) for t in ("fills", "orders", "trades", "cycles", "signals", "learnings")}
    assert before["fills"] and before["trades"]
    outbox = Outbox(tmp_path / "state" / "archive_outbox.jsonl")
    for row in store.rows("fills", run_id):
        fill = Fill(order_id=row["order_id"], client_order_id=row["client_order_id"], symbol=row["symbol"],
                    side=Side(row["side"]), purpose=row["purpose"], amount=row["amount"], price=row["price"],
                    fee=row["fee"], time=row["time"], reason=row["reason"])
        outbox.add("fill", records.fill_row(bot.state.run_id, row["iteration"], fill))
    for trade in bot.state.trades:
        outbox.add("trade", records.trade_row(bot.state.run_id, 1, trade))
    last = store.rows("cycles", run_id, order_by=("iteration",))[-1]
    cycle = {k: (v.isoformat() if k == "time" else v) for k, v in last.items() if k != "id"}
    outbox.add("cycle", {"cycle": {**cycle, "equity": 1234.5}, "signals": [], "verdicts": [], "learnings": []})

    run_bot(archive_bot(), 1)  # the next start stores what the outbox holds
    after = {t: count(t) for t in before}
    assert (after["fills"] == before["fills"] and after["trades"] == before["trades"]
            and after["cycles"] == before["cycles"])
    assert after["signals"] == before["signals"] - last["signals"], "the re-run cycle's signals replace the old ones"
    assert store.rows("cycles", run_id, order_by=("iteration",))[-1]["equity"] == 1234.5


def test_migrating_a_database_of_the_previous_schema_keeps_its_history(open_store, database_url):
    old = open_store(migrate=False)
    old.migrate("0001")
    assert old.revision() == "0001"
    with old.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO runs (run_id, mode, started_at, initial_capital, symbols) "
            "VALUES ('r-old', 'paper', :t, 100.0, '[\"BTC/USDT\"]')"), {"t": datetime(2025, 6, 1, tzinfo=timezone.utc)})
        connection.execute(text(
            "INSERT INTO trades (trade_key, run_id, iteration, symbol, direction, amount, entry_price, exit_price, "
            "opened_at, closed_at, holding_seconds, fees, pnl, return_pct, exit_reason, confidence, strategy, "
            "strategy_version, client_order_id, initial_stop_loss) VALUES ('k1', 'r-old', 7, 'BTC/USDT', 'LONG', 0.5, "
            "100.0, 110.0, :opened, :closed, 3600, 0.1, 4.9, 9.8, 'take_profit', 0.8, 'sma_rsi', 1, 'gb1', 98.0)"),
            {"opened": datetime(2025, 6, 1, 14, 5, tzinfo=timezone.utc),
             "closed": datetime(2025, 6, 1, 15, 5, tzinfo=timezone.utc)})

    upgraded = open_store()  # what the archiver does at start-up
    assert upgraded.revision() == SCHEMA_REVISION
    [trade] = upgraded.rows("trades")
    assert (trade["run_id"], trade["pnl"], trade["strategy"], trade["confidence"]) == ("r-old", 4.9, "sma_rsi", 0.8)
    assert trade["opened_at"] == datetime(2025, 6, 1, 14, 5, tzinfo=timezone.utc)
    assert trade["entry_hour"] == 14, "the new column is backfilled from opened_at"
    assert trade["r_multiple"] == pytest.approx(4.9 / (2.0 * 0.5)), "and the R multiple from the stored stop"
    assert [r["run_id"] for r in upgraded.runs()] == ["r-old"]
    assert upgraded.count("patterns") == 0 and upgraded.count("execution_errors") == 0


def test_the_migrations_build_exactly_the_models_schema(open_store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gobot_plugins.archiver.schema import metadata

    store = open_store()
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, metadata) if VERSION_TABLE not in repr(d)]
    assert differences == []


def test_a_locked_database_never_blocks_the_loop_raises_an_alert_and_loses_nothing(archive_bot, run_bot, database_url,
                                                                                   alerts, open_store):
    """While the archive refuses writes, events only go to the outbox; when it is back, all are stored."""
    ready, release, held = threading.Event(), threading.Event(), []
    timings = []

    class Locker:
        @hookimpl
        def gobot_on_cycle_end(self, ctx, report):
            if report.iteration == 2:  # lock the archive from another connection
                threading.Thread(target=hold_lock, daemon=True).start()
                assert ready.wait(10)
            if report.iteration == 25:
                writer = archiver(bot).writer
                assert writer.wait_attempts(1, timeout=20), "the writer should have failed against the lock"
                release.set()
            if report.iteration == 26:
                assert archiver(bot).writer.wait_idle(timeout=20), "the writer should catch up once the lock is gone"

        @hookimpl
        def gobot_on_fill(self, ctx, fill):
            started = time.perf_counter()
            archiver(bot).gobot_on_fill(ctx, fill)  # the archiver's own handler, timed while the lock is held
            timings.append(time.perf_counter() - started)

    def hold_lock():
        engine = create_engine(database_url)
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN EXCLUSIVE")
            else:
                connection.begin()
                for table in ("fills", "cycles", "orders", "trades", "signals"):
                    connection.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            held.append(True)
            ready.set()
            release.wait(60)
            connection.rollback()
        engine.dispose()

    bot = archive_bot(archiver={"write_timeout_seconds": 0.2, "retry_max_seconds": 0.5},
                      plugins=[("locker", Locker()), ("alerts", alerts)])
    run_bot(bot, 40)
    assert held and bot.state.trades
    assert "archiver_write_failed" in alerts.kinds() and "archiver_recovered" in alerts.kinds()
    failed = next(a for a in alerts.seen if a.kind == "archiver_write_failed")
    assert "none lost" in failed.text and failed.severity.value == "WARNING"
    assert max(timings) < 0.2, f"a fill event took {max(timings):.3f} s while the database was locked"
    store = open_store()
    assert store.count("cycles") == 40
    assert len(store.rows("trades")) == len(bot.state.trades)
    assert store.count("fills") == sum(c.fills for c in bot.state.cycles)


def test_an_unreachable_database_at_start_keeps_events_for_the_next_start(replay_bot, run_bot, database_url, alerts,
                                                                          open_store, tmp_path):
    pytest.importorskip("psycopg",
                        reason="the unreachable archive is a PostgreSQL URL: pip install 'gobot-trading[postgres]'")
    down = "postgresql+psycopg://postgres@127.0.0.1:9/test"  # the discard port: nothing listens
    bot = replay_bot(config={"plugins": {"archiver": {"database_url": down, "write_timeout_seconds": 1}}},
                     plugins=[("alerts", alerts)])
    run_bot(bot, 20)
    assert "archiver_write_failed" in alerts.kinds()
    outbox = tmp_path / "state" / "archive_outbox.jsonl"
    kept = [json.loads(line)["kind"] for line in outbox.read_text().splitlines()]
    assert kept.count("cycle") == 20 and "fill" in kept

    bot.state.finished = False  # resume the same run, now with a working archive
    bot.persist()
    again = replay_bot(config={"plugins": {"archiver": {"database_url": database_url}}})
    run_bot(again, 25)
    store = open_store()
    assert [c["iteration"] for c in store.rows("cycles", order_by=("iteration",))] == list(range(1, 26))
    assert store.count("fills") == sum(c.fills for c in again.state.cycles)
    assert outbox.read_text() == ""


def test_an_entry_the_database_can_never_take_is_kept_aside_and_reported(archive_bot, run_bot, alerts, tmp_path,
                                                                         open_store):
    state = tmp_path / "state"
    state.mkdir()
    lines = [
        {"seq": 1, "kind": "order", "data": {"run_id": "r-x", "iteration": 1, "order_id": "o1", "client_order_id": "c1",
                                             "intent_id": "i1", "symbol": "BTC/USDT", "side": "buy", "purpose": "open",
                                             "type": "market", "amount": 1.0, "status": "filled"}},
        {"seq": 2, "kind": "teleport", "data": {"from": "a newer gobot"}},
    ]
    (state / "archive_outbox.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"seq": 3, "ki')
    bot = archive_bot(plugins=[("alerts", alerts)], state_dir=state)
    run_bot(bot, 3)
    store = open_store()
    assert [o["order_id"] for o in store.rows("orders") if o["run_id"] == "r-x"] == ["o1"]
    rejected = [json.loads(line) for line in (state / "archive_outbox.rejected.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in rejected] == ["teleport"] and "unknown kind" in rejected[0]["rejected_because"]
    assert "archiver_rejected" in alerts.kinds() and "archiver_outbox_torn" in alerts.kinds()
    assert store.count("cycles") == 3


@pytest.mark.slow
def test_a_process_killed_mid_run_loses_no_fill(tmp_path, synthetic_data_dir, database_url):
    import gobot.testing

    # The same risk settings as the in-process replay fixtures (protections that need weeks of data off).
    risk = getattr(gobot.testing, "REPLAY_TEST_RISK", {})
    sections = "".join(
        f"[plugins.{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
        for name, values in risk.items()
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'state_dir = "state"\n[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n{sections}'
        f'[plugins.archiver]\ndatabase_url = "{database_url}"\n'
    )

    def start(*args, kill=None):
        env = {k: v for k, v in os.environ.items() if k != "GOBOT_TEST_KILL_POINT"}
        if kill:
            env["GOBOT_TEST_KILL_POINT"] = kill
        return subprocess.run([GOBOT, "start", "--config", str(config), "--quiet", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    crashed = start("--max-iterations", "30", kill="before_persist:12")
    assert crashed.returncode == -signal.SIGKILL
    done = start("--max-iterations", "30")
    assert done.returncode == 0, done.stderr
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["finished"] and state["iteration"] == 30
    assert state["trades"], "the run should trade"
    store = ArchiveStore(database_url)
    try:
        fills = store.rows("fills", order_by=("time", "id"))
        cycles = store.rows("cycles", order_by=("iteration",))
        assert sum(c["fills"] for c in state["cycles"]) == len(fills), "every fill stored once"
        assert [c["iteration"] for c in cycles] == list(range(1, 31))
        assert len(store.rows("trades")) == len(state["trades"])
    finally:
        store.close()


def test_sqlite_archives_are_wal_owner_only_and_readable_while_written(replay_bot, run_bot, tmp_path):
    bot = replay_bot()
    run_bot(bot, 2)
    database = tmp_path / "state" / "archive.db"
    assert database.exists() and database.stat().st_mode & 0o077 == 0
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 0.1})
    with engine.connect() as writer, engine.connect() as reader:
        assert writer.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        writer.exec_driver_sql("BEGIN IMMEDIATE")  # a writer in the middle of a transaction (the bot)
        writer.exec_driver_sql("UPDATE cycles SET equity = 0")
        equities = [row[0] for row in reader.exec_driver_sql("SELECT equity FROM cycles")]  # the dashboard
        assert len(equities) == 2 and 0 not in equities, "a reader sees the last committed data, without waiting"
        writer.exec_driver_sql("ROLLBACK")
    engine.dispose()


def test_no_secret_reaches_any_row(archive_bot, run_bot, monkeypatch, database_url):
    secret, token = "SECRET-binance-key-1234567890", "123456:telegram-token-abcdef"
    monkeypatch.setenv("BINANCE_API_KEY", secret)
    monkeypatch.setenv("TELEGRAM_TOKEN", token)
    from gobot_hookspecs import Learning

    class Leaky:
        @hookimpl
        def gobot_generate_ideas(self, ctx):
            ctx.add_learning(Learning(text=f"learned {secret} via https://bot:{token}@example.invalid/x",
                                      source="leaky", evidence={"key": secret}))

    bot = archive_bot(plugins=[("leaky", Leaky())])
    run_bot(bot, 3)
    engine = create_engine(database_url)
    dump = []
    with engine.connect() as connection:
        for table in ("runs", "cycles", "signals", "risk_verdicts", "orders", "fills", "trades", "strategy_versions",
                      "learnings", "execution_errors", "patterns"):
            dump.extend(str(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table}")))
    engine.dispose()
    text_dump = "\n".join(dump)
    assert "learned ***" in text_dump and secret not in text_dump and token not in text_dump


def test_a_secret_that_looks_like_json_never_breaks_an_entry(archive_bot, run_bot, monkeypatch, open_store):
    monkeypatch.setenv("GOBOT_EXAMPLE_TOKEN", "true")  # masking the text of the JSON line would corrupt it
    bot = archive_bot()
    run_bot(bot, 20)
    store = open_store()
    assert store.count("cycles") == 20
    verdicts = store.rows("risk_verdicts")
    assert any(v["approved"] is True for v in verdicts) and all(v["approved"] in (True, False) for v in verdicts)


def test_bad_database_settings_are_clear_errors(replay_bot):
    from gobot.errors import ConfigError, PluginError

    with pytest.raises(ConfigError, match="plugins.archiver.database_url: .*PGPASSWORD"):
        replay_bot(config={"plugins": {"archiver": {"database_url": "postgresql+psycopg://gobot:hunter2@db/gobot"}}})
    bot = replay_bot(config={"plugins": {"archiver": {"database_url": "mysql+nosuchdriver://u@localhost/db"}}})
    import asyncio

    with pytest.raises(PluginError, match="archiver.*database_url"):
        asyncio.run(bot.startup())


def test_an_archive_from_a_newer_gobot_is_refused_not_written(archive_bot, open_store):
    import asyncio

    from gobot.errors import PluginError

    store = open_store()
    with store.engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0999'"))
    bot = archive_bot()
    with pytest.raises(PluginError, match="schema is at revision 0999, newer than this gobot knows"):
        asyncio.run(bot.startup())
    assert store.count("runs") == 0


def test_bulk_inserts_store_each_row_once_and_updates_replace(open_store):
    """The bulk paths (SQLite executemany, PostgreSQL COPY from 500 rows) keep the duplicate rules."""
    from datetime import timedelta

    from gobot_plugins.archiver import records
    from gobot_plugins.archiver.store import COPY_THRESHOLD

    store = open_store()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    n = COPY_THRESHOLD * 2
    fills = [records.fill_row("r-bulk", i, Fill(order_id=f"o{i}", client_order_id=f"c{i}", symbol="BTC/USDT",
                                                side=Side.BUY, purpose="open", amount=1.0, price=100.0 + i, fee=0.1,
                                                time=start + timedelta(minutes=i)))
             for i in range(n)]
    with store.engine.begin() as connection:
        assert store.insert(connection, "fills", fills[: n // 2], ("fill_key",), "ignore") == n // 2
    with store.engine.begin() as connection:  # half already stored, and a duplicate inside the batch
        store.insert(connection, "fills", fills + fills[-3:], ("fill_key",), "ignore")
    stored = store.rows("fills", ["r-bulk"], order_by=("time",))
    assert len(stored) == n and [f["price"] for f in stored] == [100.0 + i for i in range(n)]
    assert stored[7]["time"] == start + timedelta(minutes=7)

    cycles = [{"run_id": "r-bulk", "iteration": i, "time": (start + timedelta(minutes=15 * i)).isoformat(),
               "equity": 100.0,
               "cash": 100.0, "realised_pnl": 0.0, "open_positions": 0, "paused": False, "signals": 0, "vetoes": 0,
               "orders": 0, "fills": 0, "trades_closed": 0} for i in range(1, n + 1)]
    with store.engine.begin() as connection:
        store.insert(connection, "cycles", cycles, ("run_id", "iteration"), "update")
    with store.engine.begin() as connection:
        store.insert(connection, "cycles", [{**c, "equity": 200.0} for c in cycles], ("run_id", "iteration"), "update")
    rows = store.rows("cycles", ["r-bulk"], order_by=("iteration",))
    assert len(rows) == n and {r["equity"] for r in rows} == {200.0} and rows[0]["paused"] is False


def test_a_bulk_write_of_trades_round_trips_exactly_and_a_resent_batch_adds_nothing(open_store):
    """A batch of trades (COPY on PostgreSQL from 500 rows, executemany on SQLite) reads back value for
    value: floats to the bit, NULLs as None, any offset as the same instant in UTC, text with tabs and
    backslashes; sending it again, whole or in part, stores nothing twice and changes no row."""
    from datetime import timedelta

    from gobot_plugins.archiver.store import COPY_THRESHOLD

    store = open_store()
    start = datetime(2026, 3, 29, 0, 30, tzinfo=timezone.utc)  # across the EU clock change
    plus_two = timezone(timedelta(hours=2))
    n = COPY_THRESHOLD * 3
    batch = []
    for i in range(n):
        opened = start + timedelta(minutes=7 * i, microseconds=i)
        optional = i % 3 == 0  # every third trade without its optional columns
        batch.append({
            "trade_key": f"k{i:06d}", "run_id": "r-copy", "iteration": i, "symbol": "BTC/USDT",
            "direction": "LONG" if i % 2 else "SHORT", "amount": 0.1 + 0.2 * i, "entry_price": 100 / 3 + i,
            "exit_price": 1e-9 * i, "opened_at": opened.astimezone(plus_two).isoformat() if i % 5 == 0 else opened,
            "closed_at": (opened + timedelta(hours=1)).isoformat(), "holding_seconds": 3600.0, "fees": -0.0,
            "pnl": -1.5e300 if i == 1 else i / 7, "return_pct": 0.0, "exit_reason": f"stop\tloss \\N\n€ {i}",
            "confidence": None if optional else 0.5, "strategy": None if optional else "sma_rsi",
            "strategy_version": None if optional else 2 ** 31 - 1, "client_order_id": None if optional else f"c{i}",
            "initial_stop_loss": None, "r_multiple": None if optional else -1.25, "entry_hour": opened.hour,
            "funding": None if optional else -0.125 * i,
        })
    with store.engine.begin() as connection:
        assert store.insert(connection, "trades", batch[: n // 3], ("trade_key",), "ignore") == n // 3
    resent = batch + [{**batch[-1], "pnl": 999.0}]  # stored part again, then the rest, and a late duplicate
    for _ in range(2):
        with store.engine.begin() as connection:
            store.insert(connection, "trades", resent, ("trade_key",), "ignore")

    stored = store.rows("trades", ["r-copy"], order_by=("trade_key",))
    assert len(stored) == n == store.count("trades")
    for row, sent in zip(stored, batch):
        expected = {**sent, "opened_at": (sent["opened_at"] if isinstance(sent["opened_at"], datetime)
                                          else datetime.fromisoformat(sent["opened_at"])).astimezone(timezone.utc),
                    "closed_at": datetime.fromisoformat(sent["closed_at"]).astimezone(timezone.utc)}
        assert {k: v for k, v in row.items() if k != "id"} == expected
        assert row["opened_at"].utcoffset() == timedelta(0)
        assert [type(row[k]) for k in ("iteration", "amount", "strategy_version")] == [
            int, float, type(sent["strategy_version"])]


def test_a_bulk_insert_on_sqlite_stores_the_same_text_as_row_by_row(tmp_path):
    """SQLite's bulk path reshapes a column of outbox times at once: the stored text is exactly what the
    row-by-row conversion gives, for the usual shapes (with and without microseconds) and for any other
    value in the column (None, a datetime, another offset, a naive time, text with a T or + elsewhere)."""
    from datetime import timedelta

    from gobot_plugins.archiver.store import _sqlite_texts, _sqlite_time

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    seconds = [(start + timedelta(minutes=i)).isoformat() for i in range(5)]
    micros = [(start + timedelta(minutes=i, microseconds=7 * i + 1)).isoformat() for i in range(5)]
    columns = [seconds, micros, seconds + micros, [*seconds, None], [*seconds, start], [], [seconds[0]],
               [*seconds, "2026-01-01T00:00:00+02:00"], [*seconds, "2026-01-01T00:00:00"],
               [*micros, "2026-01-01T00:00:00+00:00"], [*seconds, "2026-01-01TT0:00:00+00:00"],
               [*seconds, "2026-01-01T0+:00:00+00:00"], [*micros, "2026-01-01T00:00:00,000001+00:00"]]
    for values in columns:
        expected = [None if v is None else _sqlite_time(v) for v in values]
        assert _sqlite_texts(values) == expected, values
    assert _sqlite_texts(seconds)[1] == "2026-01-01 00:01:00.000000"
    assert _sqlite_texts(micros)[1] == "2026-01-01 00:01:00.000008"
    with pytest.raises(ValueError):
        _sqlite_texts([*seconds, "2026-01-01T00:00:00+0x:00"])  # as row by row: not a time

    store = ArchiveStore(f"sqlite:///{tmp_path / 'archive.db'}")
    store.migrate()
    rows = [{"fill_key": f"k{i}", "run_id": "r", "iteration": i, "order_id": "o", "client_order_id": f"c{i}",
             "symbol": "BTC/USDT", "side": "buy", "purpose": "open", "amount": 1.0, "price": 100.0 + i, "fee": 0.0,
             "time": value, "reason": None, "commissions": None} for i, value in enumerate(seconds + micros)]
    with store.engine.begin() as connection:
        assert store.insert(connection, "fills", rows, ("fill_key",), "ignore") == 10
    with store.engine.connect() as connection:
        stored = [r[0] for r in connection.exec_driver_sql("SELECT time FROM fills ORDER BY id")]
    assert stored == [_sqlite_time(v) for v in seconds + micros]
    store.close()


def test_a_bulk_insert_refuses_a_row_with_an_unknown_column_and_fills_missing_ones(open_store):
    """A row that lacks optional columns stores them as NULL; a row with a column the table does not
    have, beside or in place of a known one, is a PoisonEntry that names it, and nothing is stored."""
    from gobot_plugins.archiver.store import PoisonEntry

    store = open_store()
    row = {"fill_key": "k", "run_id": "r", "iteration": 1, "order_id": "o", "client_order_id": "c",
           "symbol": "BTC/USDT", "side": "buy", "purpose": "open", "amount": 1.0, "price": 100.0, "fee": 0.0,
           "time": "2026-01-01T00:00:00+00:00", "reason": None, "commissions": None}
    rows = [{**row, "fill_key": f"k{i}"} for i in range(600)]
    renamed = {("bogus" if k == "reason" else k): v for k, v in {**row, "fill_key": "x"}.items()}
    for bad in (renamed, {**row, "fill_key": "y", "bogus": 1}):
        with pytest.raises(PoisonEntry, match=r"fills: unknown columns \['bogus'\]"):
            with store.engine.begin() as connection:
                store.insert(connection, "fills", [*rows, bad], ("fill_key",), "ignore")
        assert store.count("fills") == 0
    short = {k: v for k, v in row.items() if k not in ("reason", "commissions", "time")}
    with store.engine.begin() as connection:
        store.insert(connection, "fills", [*rows, short], ("fill_key",), "ignore")
    stored = store.rows("fills", ["r"])
    assert len(stored) == 601 and stored[-1]["time"] is None and stored[-1]["reason"] is None
    assert stored[0]["time"] == datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_the_writer_takes_exactly_the_lines_on_disk_and_an_append_makes_a_removed_folder_again(tmp_path):
    """The outbox keeps its lines and the writer parses them (``peek``): a tuple, a datetime or a number as
    a key come out as the file has them; an append to a folder removed under the bot makes it again."""
    import shutil

    from gobot_plugins.archiver.writer import Outbox

    path = tmp_path / "state" / "archive_outbox.jsonl"
    outbox = Outbox(path)
    outbox.add("fill", {"pair": ("a", 1), "at": datetime(2026, 1, 1, tzinfo=timezone.utc), "by": {7: "x"}})
    outbox.add("order", {"n": 2})
    on_disk = [json.loads(line) for line in path.read_text().splitlines()]
    assert outbox.peek() == on_disk == outbox.entries
    assert on_disk[0]["data"] == {"pair": ["a", 1], "at": "2026-01-01 00:00:00+00:00", "by": {"7": "x"}}
    assert outbox.unsynced_lines() == path.read_text().splitlines()
    shutil.rmtree(path.parent)
    assert outbox.add("fill", {"n": 3}) == 3
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [3]
    assert [e["seq"] for e in outbox.peek()] == [1, 2, 3]
