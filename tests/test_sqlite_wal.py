"""Several processes opening one SQLite file at once (the shared rate-limit budget, the archive).

Switching to WAL takes the file's exclusive lock. When two connections escalate their locks at
once, SQLite answers one of them "database is locked" without waiting (its deadlock avoidance):
CI saw it with three bots starting together. ``use_wal`` keeps trying until its own deadline, so
here the busy timeout is made short to show that the retry, not SQLite's wait, does the waiting.
"""

import sqlite3
import threading

import pytest

from gobot_hookspecs.files import use_wal


def reader_holding_a_shared_lock(path):
    reader = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    reader.execute("CREATE TABLE t (x)")
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()
    return reader


def test_use_wal_waits_for_the_reader_and_switches(tmp_path):
    reader = reader_holding_a_shared_lock(tmp_path / "budget.sqlite")
    switcher = sqlite3.connect(str(tmp_path / "budget.sqlite"), timeout=0.01, check_same_thread=False)
    result: list[BaseException | None] = []

    def switch():
        try:
            use_wal(switcher, timeout=30)
            result.append(None)
        except BaseException as exc:  # pragma: no cover - reported below
            result.append(exc)

    thread = threading.Thread(target=switch)
    thread.start()
    thread.join(0.2)
    assert thread.is_alive(), "use_wal gave up while the reader still held its lock"
    reader.execute("COMMIT")
    thread.join(30)
    assert result == [None]
    assert switcher.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_use_wal_gives_up_after_its_timeout(tmp_path):
    reader = reader_holding_a_shared_lock(tmp_path / "budget.sqlite")
    switcher = sqlite3.connect(str(tmp_path / "budget.sqlite"), timeout=0.01)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        use_wal(switcher, timeout=0.1)
    reader.execute("COMMIT")
