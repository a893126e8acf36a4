"""A damaged archive is found at start and nothing the outbox holds is lost (issue 16, finding 6), on
SQLite and on PostgreSQL: unreadable outbox lines are quarantined with their file:line, rows the
database lost are found by comparing it with the state, SQLite's quick_check runs, and a batch counts
as stored only once it is in the SQLite file itself, not just in its write-ahead log."""

from __future__ import annotations

import json
import sqlite3

from sqlalchemy import create_engine, text

from gobot_plugins.archiver.writer import Outbox


def archiver(bot):
    return bot.plugin_set.pm.get_plugin("archiver")


def order(seq: int, run_id: str = "r-x") -> dict:
    return {"seq": seq, "kind": "order", "data": {
        "run_id": run_id, "iteration": 1, "order_id": f"o{seq}", "client_order_id": f"c{seq}", "intent_id": f"i{seq}",
        "symbol": "BTC/USDT", "side": "buy", "purpose": "open", "type": "market", "amount": 1.0, "status": "filled"}}


def test_unreadable_outbox_lines_are_quarantined_with_file_and_line_and_alerted(archive_bot, run_bot, alerts,
                                                                                open_store, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    lines = [json.dumps(order(1)).encode(), b'{"seq": 2, "kind": "order", "data": {"run_id": "r-x", \xff\xfe}',
             json.dumps(order(3)).encode(), b"not json at all", b'{"no": "seq"}', json.dumps(order(6)).encode()]
    (state / "archive_outbox.jsonl").write_bytes(b"\n".join(lines) + b"\n" + b'{"seq": 7, "ki')  # and a torn tail
    bot = archive_bot(plugins=[("alerts", alerts)], state_dir=state)
    run_bot(bot, 3)  # it stopped the start with a bare UnicodeDecodeError naming neither file nor line

    store = open_store()
    # none lost
    assert sorted(o["order_id"] for o in store.rows("orders") if o["run_id"] == "r-x") == ["o1", "o3", "o6"]
    assert store.count("cycles") == 3
    rejected = [json.loads(line) for line in (state / "archive_outbox.rejected.jsonl").read_text().splitlines()]
    assert [(r["file"], r["line"]) for r in rejected] == [("archive_outbox.jsonl", 2), ("archive_outbox.jsonl", 4),
                                                          ("archive_outbox.jsonl", 5)]
    assert rejected[0]["rejected_because"] == "archive_outbox.jsonl:2: not UTF-8 (byte 0xff at column 55)"
    assert rejected[0]["raw"].endswith("\\xff\\xfe}")  # kept as it was, for a human
    assert rejected[1]["rejected_because"].startswith("archive_outbox.jsonl:4: not JSON (")
    assert rejected[2]["rejected_because"] == "archive_outbox.jsonl:5: not an outbox entry (no seq or kind)"
    [alert] = [a for a in alerts.seen if a.kind == "archiver_outbox_damaged"]
    assert (alert.severity.value == "CRITICAL"
            and "3 unreadable line(s) quarantined in archive_outbox.rejected.jsonl" in alert.title)
    assert "archive_outbox.jsonl:2: not UTF-8" in alert.text and "archive_outbox.jsonl:5" in alert.text
    assert "archiver_outbox_torn" in alerts.kinds()
    assert (state / "archive_outbox.jsonl").read_text() == ""


def test_a_damaged_line_is_never_glued_to_the_next_append(tmp_path):
    """A torn tail left by a crash is cut off at load: the next entry starts on a line of its own."""
    path = tmp_path / "archive_outbox.jsonl"
    path.write_text(json.dumps(order(1)) + "\n" + '{"seq": 2, "ki')
    outbox = Outbox(path, fsync=False)
    outbox.add("order", order(3)["data"])
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [1, 2]
    assert [e["seq"] for e in Outbox(path, fsync=False).entries] == [1, 2]


def test_cycles_the_database_lost_are_found_at_start(archive_bot, run_bot, alerts, database_url):
    bot = archive_bot()
    run_bot(bot, 12)
    run_id = bot.state.run_id
    bot.state.finished = False  # resume the same run
    bot.persist()
    engine = create_engine(database_url)
    with engine.begin() as connection:  # the database loses rows it had stored (a damaged WAL, an old backup)
        connection.execute(text("DELETE FROM cycles WHERE run_id = :r AND iteration >= 4 AND iteration <= 10"),
                           {"r": run_id})
    engine.dispose()

    again = archive_bot(plugins=[("alerts", alerts)])
    run_bot(again, 14)
    [alert] = [a for a in alerts.seen if a.kind == "archiver_integrity"]  # nothing compared the archive with the state
    assert alert.severity.value == "CRITICAL"
    assert "7 of the run's 12 cycles are missing from the archive (cycle 4-10); the state has 12" in alert.text
    assert alert.data["missing_cycles"] == 7
    assert archiver(again).integrity["missing"] == [4, 5, 6, 7, 8, 9, 10]


def test_an_archive_that_matches_the_state_raises_nothing(archive_bot, run_bot, alerts):
    bot = archive_bot()
    run_bot(bot, 5)
    bot.state.finished = False
    bot.persist()
    again = archive_bot(plugins=[("alerts", alerts)])
    run_bot(again, 8)
    assert archiver(again).integrity == {"checked": True, "problems": [], "missing": []}
    assert "archiver_integrity" not in alerts.kinds()


def test_a_run_resumed_with_the_archiver_newly_enabled_is_not_called_damaged(replay_bot, archive_bot, run_bot, alerts):
    bot = replay_bot(disable=["archiver"])
    run_bot(bot, 6)
    bot.state.finished = False
    bot.persist()
    again = archive_bot(plugins=[("alerts", alerts)])
    run_bot(again, 9)
    assert "archiver_integrity" not in alerts.kinds() and archiver(again).integrity["missing"] == []


def test_a_corrupt_sqlite_file_fails_quick_check_and_is_alerted(replay_bot, run_bot, alerts, tmp_path):
    bot = replay_bot()
    run_bot(bot, 10)
    bot.state.finished = False
    bot.persist()
    database = tmp_path / "state" / "archive.db"
    with sqlite3.connect(database) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'signals'").fetchone()[0]
    with open(database, "r+b") as handle:  # scribble over the signals table's root page, past its header
        handle.seek((root - 1) * page_size + 8)
        handle.write(b"\x7f" * 64)
    again = replay_bot(plugins=[("alerts", alerts)])
    run_bot(again, 11)
    [alert] = [a for a in alerts.seen if a.kind == "archiver_integrity"]
    assert alert.severity.value == "CRITICAL" and "integrity check: " in alert.text


def test_a_batch_is_acked_only_once_it_is_in_the_sqlite_file(tmp_path):
    """While a reader holds the WAL back, a written batch stays in the outbox (a damaged WAL would lose it)."""
    from gobot_plugins.archiver.store import ArchiveStore
    from gobot_plugins.archiver.writer import ArchiveWriter

    url = f"sqlite:///{tmp_path / 'archive.db'}"
    store = ArchiveStore(url)
    store.migrate()
    outbox = Outbox(tmp_path / "archive_outbox.jsonl", fsync=False)
    writer = ArchiveWriter(lambda: ArchiveStore(url), outbox)
    writer.store = store
    reader = sqlite3.connect(tmp_path / "archive.db")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM orders").fetchone()  # a read snapshot from before the write
    writer.start()
    outbox.add("order", order(1, "r-wal")["data"])
    writer.wake()
    assert not writer.wait_idle(1.0), "acked while the write was only in the WAL"
    assert len(outbox) == 1 and store.count("orders") == 1  # written, not acked
    reader.rollback()
    reader.close()
    assert writer.wait_idle(5.0) and len(outbox) == 0
    assert writer.close(2.0) == 0 and writer.health.stored >= 1 and not writer.health.failing


def test_a_backlog_is_drained_without_waiting_between_full_batches(tmp_path, monkeypatch):
    """The pause between batches lets a cycle's entries join the next one; a backlog that fills whole
    batches has nothing to wait for, so only the last, partial batch may wait."""
    from gobot_plugins.archiver import writer as writer_module
    from gobot_plugins.archiver.store import ArchiveStore
    from gobot_plugins.archiver.writer import ArchiveWriter

    url = f"sqlite:///{tmp_path / 'archive.db'}"
    store = ArchiveStore(url)
    store.migrate()
    outbox = Outbox(tmp_path / "archive_outbox.jsonl", fsync=False)
    for seq in range(1, 8):
        outbox.add("order", order(seq, "r-backlog")["data"])
    monkeypatch.setattr(writer_module, "MAX_BATCH", 2)
    waits: list[float] = []
    monkeypatch.setattr(writer_module.time, "sleep", waits.append)
    writer = ArchiveWriter(lambda: ArchiveStore(url), outbox)
    writer.store = store
    writer.start()
    assert writer.wait_idle(30)
    writer.close(1)
    assert ArchiveStore(url).count("orders") == 7 and len(waits) <= 1
