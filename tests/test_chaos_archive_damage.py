"""A damaged archive, with real ``gobot start`` processes (issue 16, finding 6).

- **WAL**: the bot is SIGKILLed after ``count(20, 60)`` cycles and the SQLite write-ahead log it left
  is scribbled over (every frame past the first); the next start must still end with every cycle of
  the run in the archive. Before, a damaged WAL silently dropped rows (60 cycles became 10): a batch
  was acked while it lived only in the WAL. Now it is acked once a checkpoint put it in the file.
- **rows lost** (an old backup restored): the archive is put back to an earlier copy while the run
  goes on; the next start finds the missing cycles by comparing with the state — a CRITICAL alert.
- **outbox lines**: with the database unreachable the outbox holds a whole run; ``count(2, 8)`` of
  its lines are damaged (a bad byte, a cut line). The next start stores every other entry, moves the
  damaged lines to ``archive_outbox.rejected.jsonl`` with their file:line, and alerts. Before, one
  bad byte stopped the start with a bare UnicodeDecodeError.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from chaos_support import count, record_figures

GOBOT = str(Path(sys.executable).parent / "gobot")
KILL_AT = count(20, 60)
DAMAGED_LINES = count(2, 8)
FIGURES = {"wal_damaged": 0, "backups_restored": 0, "outbox_lines_damaged": 0, "detected": 0, "quarantined": 0,
           "lost": 0}


def write_config(folder: Path, data_dir: Path, database_url: str = "") -> Path:
    import gobot.testing

    sections = gobot.testing.replay_test_risk_toml()
    config = folder / "config.toml"
    config.write_text(f'state_dir = "state"\n[plugins.replay]\ndata_dir = "{data_dir}"\n{sections}'
                      f'[plugins.archiver]\ndatabase_url = "{database_url}"\nwrite_timeout_seconds = 1\n',
                      encoding="utf-8")
    return config


def start(config: Path, *args: str, kill: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("GOBOT_TEST_KILL_POINT", "GOBOT_CONFIG")}
    if kill:
        env["GOBOT_TEST_KILL_POINT"] = kill
    return subprocess.run([GOBOT, "start", "--config", str(config), "--quiet", *args], env=env, capture_output=True,
                          text=True, timeout=180, cwd=config.parent)


def archived_cycles(state: Path, run_id: str) -> list[int]:
    with sqlite3.connect(state / "archive.db") as db:
        return [row[0] for row in db.execute("SELECT iteration FROM cycles WHERE run_id = ? ORDER BY iteration",
                                             (run_id,))]


def state_of(state: Path) -> dict:
    return json.loads((state / "state.json").read_text())


@pytest.mark.slow
def test_a_wal_damaged_after_a_crash_loses_no_cycle(tmp_path, synthetic_data_dir):
    config = write_config(tmp_path, synthetic_data_dir)
    state = tmp_path / "state"
    crashed = start(config, "--max-iterations", "500", kill=f"before_persist:{KILL_AT}")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    wal = state / "archive.db-wal"
    assert wal.exists() and wal.stat().st_size > 32 + 24, "a SIGKILLed SQLite writer leaves its WAL"
    with open(wal, "r+b") as handle:  # every frame past the first: garbage (the header stays, so SQLite reads up to it)
        size = handle.seek(0, os.SEEK_END)
        page = int.from_bytes(open(wal, "rb").read(12)[8:12], "big")
        handle.seek(32 + 24 + page)
        handle.write(b"\xa5" * max(0, size - (32 + 24 + page)))
    FIGURES["wal_damaged"] += 1
    done = start(config, "--max-iterations", str(KILL_AT + 2))
    assert done.returncode == 0, done.stderr[-2000:]
    after = state_of(state)
    cycles = archived_cycles(state, after["run_id"])
    lost = len(set(range(1, after["iteration"] + 1)) - set(cycles))
    FIGURES["lost"] += lost
    assert after["iteration"] == KILL_AT + 2 and lost == 0, (
        f"archive holds {len(cycles)} of {after['iteration']} cycles")
    assert "archiver_integrity" not in (state / "audit.jsonl").read_text()


def stop_after(config: Path, cycle: int) -> None:
    """Run until cycle ``cycle`` is printed, then SIGTERM: a clean stop, the archive flushed, the run unfinished."""
    env = {k: v for k, v in os.environ.items() if k not in ("GOBOT_TEST_KILL_POINT", "GOBOT_CONFIG")}
    process = subprocess.Popen([GOBOT, "start", "--config", str(config), "--max-iterations", "500"], env=env,
                               cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith(f"#{cycle} "):
            process.send_signal(signal.SIGTERM)
            break
    process.communicate(timeout=120)
    assert process.returncode == 0, process.returncode


@pytest.mark.slow
def test_rows_the_archive_lost_are_found_at_start(tmp_path, synthetic_data_dir):
    config = write_config(tmp_path, synthetic_data_dir)
    state = tmp_path / "state"
    stop_after(config, 10)
    backed_up = state_of(state)["iteration"]
    backup = tmp_path / "backup.db"
    with sqlite3.connect(state / "archive.db") as db, sqlite3.connect(backup) as copy:
        db.backup(copy)  # what a nightly backup holds
    stop_after(config, KILL_AT + 10)
    before = state_of(state)["iteration"]
    assert archived_cycles(state, state_of(state)["run_id"]) == list(range(1, before + 1))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{state / 'archive.db'}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, state / "archive.db")  # the archive restored from the backup: the cycles since are gone
    FIGURES["backups_restored"] += 1
    done = start(config, "--max-iterations", str(before + 1))
    assert done.returncode == 0, done.stderr[-2000:]
    alerts = [json.loads(line)["alert"] for line in (state / "audit.jsonl").read_text().splitlines()
              if '"archiver_integrity"' in line and '"event": "alert"' in line]
    assert len(alerts) == 1 and alerts[0]["severity"] == "CRITICAL", alerts
    missing = before - backed_up
    assert (f"{missing} of the run's {before} cycles are missing from the archive (cycle {backed_up + 1}-{before}); "
            f"the state has {before}") in alerts[0]["text"]
    assert "[CRITICAL] Archive damaged" in done.stderr
    FIGURES["detected"] += 1


@pytest.mark.slow
def test_damaged_outbox_lines_are_quarantined_and_the_rest_stored(tmp_path, synthetic_data_dir):
    pytest.importorskip("psycopg",
                        reason="the unreachable archive is a PostgreSQL URL: pip install 'gobot-trading[postgres]'")
    # nothing listens
    config = write_config(tmp_path, synthetic_data_dir, "postgresql+psycopg://postgres@127.0.0.1:9/test")
    state = tmp_path / "state"
    first = start(config, "--max-iterations", "15")
    assert first.returncode == 0, first.stderr[-2000:]
    run_id = state_of(state)["run_id"]
    outbox = state / "archive_outbox.jsonl"
    lines = outbox.read_bytes().split(b"\n")
    cycle_lines = [i for i, line in enumerate(lines) if b'"kind":"cycle"' in line]
    damaged = cycle_lines[1:1 + DAMAGED_LINES]
    iterations = {json.loads(lines[i])["data"]["cycle"]["iteration"] for i in damaged}
    for n, i in enumerate(damaged):  # a bad byte in one, a line cut short in the next, ...
        lines[i] = lines[i][:40] + b"\xff\xfe" + lines[i][42:] if n % 2 == 0 else lines[i][: len(lines[i]) // 2]
    outbox.write_bytes(b"\n".join(lines))
    FIGURES["outbox_lines_damaged"] += len(damaged)

    write_config(tmp_path, synthetic_data_dir)  # the archive is back (SQLite): the next start stores the outbox
    second = start(config, "--max-iterations", "3")
    assert second.returncode == 0, second.stderr[-2000:]
    stored = archived_cycles(state, run_id)
    rejected = [json.loads(line) for line in (state / "archive_outbox.rejected.jsonl").read_text().splitlines()]
    assert sorted(r["line"] for r in rejected) == [i + 1 for i in damaged]
    assert all(r["rejected_because"].startswith(f"archive_outbox.jsonl:{r['line']}: ") for r in rejected)
    lost = set(range(1, 16)) - set(stored) - iterations
    FIGURES["quarantined"] += len(rejected)
    FIGURES["lost"] += len(lost)
    assert lost == set() and set(stored) == set(range(1, 16)) - iterations
    assert f"[CRITICAL] Archive outbox: {len(damaged)} unreadable line(s) quarantined" in second.stderr
    assert "Traceback" not in second.stderr and outbox.read_text() == ""


def test_zz_archive_damage_figures():
    if not (FIGURES["wal_damaged"] or FIGURES["outbox_lines_damaged"]):
        pytest.skip("the archive damage tests did not run in this session")
    print("archive damaged (WAL, restored backup, outbox lines): " + ", ".join(f"{k} {v}" for k, v in FIGURES.items()))
    record_figures("archive damaged (WAL, backup, outbox line)", **FIGURES)
