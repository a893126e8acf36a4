"""One durable write per cycle (issue 19): the state's save is the only fsync a replay cycle makes in
the loop; what else must survive a power cut rides in it (the archiver's outbox lines not yet
stored), derived files (progress.json, the heartbeat) are written without one, and redaction reads
the environment only when a secret variable changed."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from gobot.secrets import MASK, SECRET_ENV_VARS, redact
from gobot_plugins.archiver.writer import Outbox

PROC_FDS = Path("/proc/self/fd")


@pytest.fixture
def fsyncs(monkeypatch) -> list[tuple[str, str]]:
    """Every ``os.fsync``/``os.fdatasync`` of the loop's thread, as ``("fsync", file name)``, and the
    cycle boundaries the test marks in the same list; other threads (the archiver's writer) are not counted."""
    if not PROC_FDS.is_dir():
        pytest.skip("needs /proc to name the file an fsync is for")
    calls: list[tuple[str, str]] = []
    loop = threading.get_ident()
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name)

        def counted(fd, real=real):
            if threading.get_ident() == loop:
                calls.append(("fsync", os.path.basename(os.readlink(PROC_FDS / str(fd)))))
            return real(fd)

        monkeypatch.setattr(os, name, counted)
    return calls


def test_each_replay_cycle_makes_one_durable_write_the_state(replay_bot, run_bot, fsyncs):
    bot = replay_bot()  # the default plugins: replay, paper, the archiver (outbox + SQLite), risk, console ...
    assert "archiver" in bot.plugin_set.enabled
    run_cycle, finish = bot.run_cycle, bot.finish

    async def marked_cycle():
        fsyncs.append(("cycle", str(bot.state.iteration + 1)))
        return await run_cycle()

    def marked_finish(reason):
        fsyncs.append(("end", ""))
        finish(reason)

    bot.run_cycle, bot.finish = marked_cycle, marked_finish
    assert run_bot(bot, 12).cycles_run == 12

    first = fsyncs.index(("cycle", "1"))
    per_cycle: dict[str, list[str]] = {}
    current = None
    for kind, name in fsyncs[first:]:
        if kind == "end":
            break
        if kind == "cycle":
            current = per_cycle.setdefault(name, [])
        else:
            current.append(name)
    assert list(per_cycle) == [str(n) for n in range(1, 13)]
    for cycle, names in per_cycle.items():  # a cycle's writes, the runner's heartbeat after it included
        assert len(names) == 1 and names[0].startswith(".state.json."), (cycle, names)


def test_outbox_lines_a_power_cut_took_come_back_from_the_state(tmp_path):
    path = tmp_path / "archive_outbox.jsonl"
    outbox = Outbox(path)
    for n in range(3):
        outbox.add("fill", {"n": n})
    carried = outbox.unsynced_lines()  # what the archiver hands to the state's save
    assert len(carried) == 3 and path.read_text().count("\n") == 3  # appended (a SIGKILL loses none), not fsynced
    outbox.ack({1})
    assert len(outbox.unsynced_lines()) == 2  # stored: no longer carried

    first = path.read_text().splitlines()[0]
    path.write_text(first + "\n" + '{"seq": 2, "ki')  # a power cut: the page cache never reached the disk
    after = Outbox(path)
    assert after.restore(carried) == 2  # seq 1 was stored (acked): not put back
    assert [e["seq"] for e in after.entries] == [2, 3]
    assert [e["data"] for e in Outbox(path).entries] == [{"n": 1}, {"n": 2}]  # and durable on the file again
    assert after.add("fill", {"n": 3}) == 4  # numbering goes on after the restored entries


def test_outbox_entries_already_on_the_file_are_not_restored_twice(tmp_path):
    path = tmp_path / "archive_outbox.jsonl"
    outbox = Outbox(path)
    outbox.add("fill", {"n": 0})
    carried = outbox.unsynced_lines()
    again = Outbox(path)  # a SIGKILL: the file kept the line
    assert again.restore(carried) == 0
    assert len(again.entries) == 1 and path.read_text().count("\n") == 1


def test_redaction_reads_the_environment_only_when_a_secret_changed(monkeypatch):
    for name in SECRET_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    reads = []

    class CountingEnviron(type(os.environ)):
        def __getitem__(self, key):
            reads.append(key)
            return super().__getitem__(key)

    environ = os.environ
    counting = CountingEnviron(environ._data, environ.encodekey, environ.decodekey, environ.encodevalue,
                               environ.decodevalue)
    monkeypatch.setattr(os, "environ", counting)
    token = "dash-Token-7f3a9c21e4"
    monkeypatch.setenv("GOBOT_DASHBOARD_TOKEN", token)
    assert redact(f"token {token}") == f"token {MASK}"
    reads.clear()
    for _ in range(1000):
        assert redact(f"token {token}") == f"token {MASK}"
    assert reads == []  # 1000 calls, no read
    other = "dash-Token-0000aaaa1111"
    monkeypatch.setenv("GOBOT_DASHBOARD_TOKEN", other)  # a change is seen by the very next call
    assert redact(f"{token} {other}") == f"{token} {MASK}"


def test_an_outbox_synced_on_its_own_carries_nothing(tmp_path):
    """While the database lags, the archiver fsyncs the outbox instead of growing the state (MAX_CARRIED)."""
    outbox = Outbox(tmp_path / "archive_outbox.jsonl")
    for n in range(3):
        outbox.add("fill", {"n": n})
    outbox.sync()
    assert outbox.unsynced_lines() == [] and len(outbox) == 3  # durable on the file, still to be stored


def test_a_power_cut_that_empties_the_outbox_loses_no_cycle_of_the_archive(replay_bot, tmp_path):
    """The database is locked while 4 cycles run, so every outbox line waits; then a power cut takes
    the whole outbox file (nothing appended was fsynced). The restarted run puts the lines back from
    its state, which was fsynced at each cycle's end, and the archive gets every cycle."""
    import asyncio
    import sqlite3

    from gobot_plugins.archiver.store import ArchiveStore

    fast = {"archiver": {"write_timeout_seconds": 0.2, "flush_timeout_seconds": 0.2, "retry_max_seconds": 0.2}}
    bot = replay_bot(config={"plugins": fast})
    database = tmp_path / "state" / "archive.db"

    async def cycles_while_locked() -> None:
        await bot.startup()
        assert bot.plugin_set.pm.get_plugin("archiver").writer.wait_idle(10)  # the run's first rows stored
        lock = sqlite3.connect(database, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # the writer thread's batches fail ("database is locked") and wait
        try:
            for _ in range(4):
                await bot.run_cycle()
            await bot.shutdown("stopped")  # unfinished: the next start resumes this run
        finally:
            lock.execute("ROLLBACK")
            lock.close()

    asyncio.run(cycles_while_locked())
    run_id, outbox = bot.state.run_id, tmp_path / "state" / "archive_outbox.jsonl"
    carried = bot.state.plugin_state["archiver"]["outbox_unsynced"]
    assert any('"kind":"cycle"' in line for line in carried)
    outbox.write_bytes(b"")  # the power cut: the page cache never reached the disk

    again = replay_bot(config={"plugins": fast})
    assert again.state.run_id == run_id and again.state.iteration == 4

    async def one_more() -> None:
        await again.startup()
        await again.run_cycle()
        await again.shutdown("stopped")

    asyncio.run(one_more())
    archiver = again.plugin_set.pm.get_plugin("archiver")
    assert archiver.integrity["missing"] == []  # every cycle was in the database or back in the outbox
    store = ArchiveStore(f"sqlite:///{database}")
    try:
        assert store.cycle_iterations(run_id) == {1, 2, 3, 4, 5}
    finally:
        store.close()


@pytest.mark.parametrize("secret", ["pässwörd-Token-12345", 'quote"Token-12345ab', "back\\slash-Token-12345"])
def test_an_audit_line_masks_a_secret_json_would_escape(monkeypatch, tmp_path, secret):
    """An audit line is masked value by value only when it may hold a secret; a secret ``json.dumps``
    writes escaped (non-ASCII, a quote, a backslash) cannot be seen in the line, so it always is."""
    import json

    from gobot.run.audit import AuditLog, read_audit

    for name in SECRET_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOBOT_DASHBOARD_TOKEN", secret)
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write("alert", sim_time=None, run_id="r1", iteration=1, text=f"token {secret} leaked", data={"k": secret})
    log.close()
    raw = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    assert secret not in raw and json.dumps(secret)[1:-1] not in raw
    [event] = read_audit(tmp_path / "audit.jsonl")
    assert event["text"] == f"token {MASK} leaked" and event["data"] == {"k": MASK}


def test_an_outbox_line_masks_a_secret_json_would_escape(tmp_path):
    from gobot_hookspecs.redact import Redactor

    secret = "pässwörd-Token-12345"
    outbox = Outbox(tmp_path / "archive_outbox.jsonl", redact=Redactor([secret]))
    outbox.add("fill", {"note": f"key {secret}"})
    raw = (tmp_path / "archive_outbox.jsonl").read_text(encoding="utf-8")
    assert secret not in raw and "p\\u00e4ssw" not in raw
    assert outbox.entries[0]["data"] == {"note": f"key {MASK}"}
