"""A disk that takes no more writes, under a real ``gobot start``: the bot never crashes.

A test plugin in the bot's own process (``disk_chaos``, installed like a third-party plugin) makes
the disk refuse writes at the end of cycle ``FULL_AT`` and gives the room back at the end of cycle
``FREE_AT`` — deterministically, on the bot's own cycle numbers, with no timing involved:

- **ENOSPC**, the case that matters: the state folder is on a small tmpfs mounted for the test and
  the plugin fills it with a ballast file until the kernel answers ENOSPC, then deletes it. A full disk
  still takes writes that need no new block (the state file is rewritten in place), so the plugin
  also grows the state during the outage, by more than files trimmed meanwhile free. Mounting needs
  root (CAP_SYS_ADMIN); without it the test is skipped and says so.
- **EFBIG**, portable (no root): the plugin lowers the process's own ``RLIMIT_FSIZE`` below the
  size of ``state.json`` and ``audit.jsonl`` (Python ignores SIGXFSZ, so the kernel answers EFBIG)
  and raises it back.

Its strategy flips LONG/SHORT every cycle, so every cycle sends an order: an entry when flat, an
exit when holding. The outage starts at an odd cycle, whose entry fills during the outage: a
position is open when the disk fills, and its exit is sent during the outage.

Required, and checked: no traceback; a CRITICAL ``disk_full`` alert on the terminal (a channel that
needs no disk); during the outage no entry order is sent while exits still are; the state is saved
again once there is room (``disk_recovered``) and entries resume; every cycle, fill and closed trade
is in the audit log exactly once (lines waiting in memory are written when room returns, none torn).
The outage lasts ``count(5, 40)`` cycles. The archiver is on; the fills its database lacks afterwards
are reported as a figure, not asserted (its outbox is its own).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from chaos_support import GOBOT, count, record_figures

BUNDLED_DATA = Path(__file__).resolve().parents[1] / "data"
FULL_AT = 5  # odd: the entry sent in this cycle fills during the outage, and its exit is sent during it
OUTAGE = count(5, 40)
FREE_AT = FULL_AT + OUTAGE
CYCLES = FREE_AT + 8

DISK_CHAOS = '''
import os
import resource
from pathlib import Path

from gobot_hookspecs import Action, Signal, hookimpl

FULL_AT = int(os.environ["DISK_CHAOS_FULL_AT"])
FREE_AT = int(os.environ["DISK_CHAOS_FREE_AT"])
MODE = os.environ["DISK_CHAOS_MODE"]  # "enospc": fill the file system; "efbig": lower the file size limit
BALLAST = Path(os.environ.get("DISK_CHAOS_BALLAST", "/nonexistent"))
HARD = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
GROWTH = 32 * 1024


def fill():
    if MODE == "efbig":
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, HARD))  # state.json and audit.jsonl are larger
        return
    fd = os.open(BALLAST, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):  # until not one more byte fits
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError:
                pass
    finally:
        os.close(fd)


def free():
    if MODE == "efbig":
        resource.setrlimit(resource.RLIMIT_FSIZE, (HARD, HARD))
    else:
        BALLAST.unlink()


@hookimpl
def gobot_generate_ideas(ctx, snapshots):
    action = Action.LONG if ctx.iteration % 2 else Action.SHORT
    return [Signal(symbol=s.symbol, action=action, confidence=0.9, rationale="disk chaos flip") for s in snapshots]


@hookimpl
def gobot_on_cycle_end(ctx, report):
    if ctx.iteration == FULL_AT:
        fill()
    elif ctx.iteration == FREE_AT:
        free()
    # While the disk is full the state grows by GROWTH bytes a cycle: a full disk still takes writes
    # that need no new space (the state is rewritten in place), and files trimmed meanwhile (the
    # archiver's outbox) free a few KB; so every save of the outage needs more room than there is.
    blob = ctx.plugin_state("disk_chaos")
    blob["growth"] = "x" * (GROWTH * (ctx.iteration - FULL_AT + 1)) if FULL_AT <= ctx.iteration < FREE_AT else ""
'''


def install_disk_chaos(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "disk_chaos.py").write_text(textwrap.dedent(DISK_CHAOS), encoding="utf-8")
    info = folder / "gobot_plugin_disk_chaos-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gobot-plugin-disk-chaos\nVersion: 1.0\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text("[gobot]\ndisk_chaos = disk_chaos\n", encoding="utf-8")
    return folder


def write_config(folder: Path, state_dir: Path) -> Path:
    config = folder / "config.toml"
    config.write_text(textwrap.dedent(f"""
        state_dir = "{state_dir}"
        [trading]
        symbols = ["BTC/USDT"]
        max_position_usd = 100
        initial_capital_usd = 10000
        [plugins]
        enable = ["disk_chaos"]
        disable = ["sma_rsi", "adjuster", "validator"]
        [plugins.replay]
        data_dir = "{BUNDLED_DATA}"
        [plugins.risk_limits]
        symbol_cooldown_minutes = 0
        max_trades_per_day = 0
        low_liquidity_hours = []
        max_total_exposure_usd = 1000
        [plugins.circuit_breaker]
        circuit_breaker_threshold = 1000000
        max_consecutive_losses = 1000000
        failure_threshold = 1000000
    """), encoding="utf-8")
    return config


def run_through_an_outage(folder: Path, state_dir: Path, mode: str,
                          ballast: Path | None = None) -> subprocess.CompletedProcess:
    site = install_disk_chaos(folder / "site")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOBOT_")} | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
        "DISK_CHAOS_MODE": mode, "DISK_CHAOS_FULL_AT": str(FULL_AT), "DISK_CHAOS_FREE_AT": str(FREE_AT),
        "DISK_CHAOS_BALLAST": str(ballast or "/nonexistent"), "COLUMNS": "200"}
    # Pipes, not files, for the output: a file size limit would cut a log file on disk short too.
    return subprocess.run([GOBOT, "start", "--config", str(write_config(folder, state_dir)),
                           "--max-iterations", str(CYCLES), "--quiet"], env=env, capture_output=True, text=True,
                          timeout=300)


def judge(done: subprocess.CompletedProcess, state_dir: Path) -> dict:
    """What happened, from the terminal, the audit log and the state file."""
    lines = (state_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]  # a torn line would raise here
    full = [e for e in events if e["event"] == "disk_full"]
    recovered = [e for e in events if e["event"] == "disk_recovered"]
    start = full[0]["since_cycle"] if full else None  # the first cycle whose end was not saved
    end = recovered[0]["iteration"] if recovered else None  # the cycle whose state was saved again
    orders = [(e["iteration"], e["order"]["purpose"]) for e in events if e["event"] == "order"]
    state = json.loads((state_dir / "state.json").read_text(encoding="utf-8"))
    completed = [e["iteration"] for e in events if e["event"] == "cycle_completed"]
    fills = [json.dumps(e["fill"], sort_keys=True) for e in events if e["event"] == "fill"]
    closed = [e["trade"] for e in events if e["event"] == "trade_closed"]
    state_fills = 2 * len(state["trades"]) + len(state["positions"])  # every trade is an entry and an exit fill
    during = range(start, end + 1) if full and recovered else range(0)
    return {
        "exit": done.returncode,
        "tracebacks": (done.stdout + done.stderr).count("Traceback"),
        "critical_alert": "[CRITICAL] Disk full" in done.stderr + done.stdout,
        "recovered_alert": "Disk writable again" in done.stderr + done.stdout,
        "outage": (start, end),
        "cycles_during": len(during) - 1,  # cycles that ended without a save (the last one of `during` saved again)
        "opened_during": sum(1 for it, purpose in orders if it in during and purpose == "open"),
        "closes_during": sum(1 for it, purpose in orders if it in during and purpose == "close"),
        "opened_after": sum(1 for it, purpose in orders if end is not None and it > end and purpose == "open"),
        "saved_iteration": state["iteration"],
        "finished": state["finished"],
        # lost: cycles, fills and closed trades the state has and the audit log lacks (or holds twice)
        "lost": (len(set(range(1, CYCLES + 1)) - set(completed)) + abs(state_fills - len(set(fills)))
                 + abs(len(state["trades"]) - len(closed))),
        "duplicates": (len(completed) - len(set(completed))) + (len(fills) - len(set(fills))),
        "archive_fills_missing": archive_fills_missing(state_dir, state_fills),
    }


def archive_fills_missing(state_dir: Path, state_fills: int) -> int | None:
    """Fills the archiver's database lacks (its outbox could not take them while the disk was full)."""
    import sqlite3

    if not (state_dir / "archive.db").exists():
        return None
    with sqlite3.connect(state_dir / "archive.db") as db:
        return state_fills - db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]


def check(figures: dict) -> None:
    assert figures["exit"] == 0 and figures["tracebacks"] == 0, figures
    assert figures["critical_alert"] and figures["recovered_alert"], figures
    start, end = figures["outage"]
    assert start is not None and end is not None, figures
    assert start == FULL_AT + 1 and end == FREE_AT + 1, figures  # saved again at the first cycle end with room
    assert figures["cycles_during"] == OUTAGE, figures
    assert figures["opened_during"] == 0, figures
    assert figures["closes_during"] >= 1, figures  # the position open when the disk filled was still closed
    assert figures["opened_after"] >= 1, figures  # trading resumed
    assert figures["saved_iteration"] == CYCLES and figures["finished"], figures
    assert figures["lost"] == 0 and figures["duplicates"] == 0, figures
    # the archiver held its outbox lines, the database has every fill
    assert figures["archive_fills_missing"] == 0, figures


@pytest.mark.slow
def test_a_file_size_limit_efbig_stops_new_positions_protects_open_ones_and_resumes(tmp_path):
    state_dir = tmp_path / "state"
    done = run_through_an_outage(tmp_path, state_dir, "efbig")
    figures = judge(done, state_dir)
    record_figures("disk: file size limit (EFBIG)", cycles_during=figures["cycles_during"],
                   positions_opened_during=figures["opened_during"], exits_during=figures["closes_during"],
                   resumed=int(figures["opened_after"] > 0), lost=figures["lost"], tracebacks=figures["tracebacks"],
                   archive_fills_missing=figures["archive_fills_missing"])
    check(figures)


@pytest.fixture
def small_tmpfs(tmp_path):
    """An 8 MiB tmpfs at ``tmp_path / "disk"``; skipped where mounting is not permitted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root (CAP_SYS_ADMIN), which this run lacks: {done.stderr.strip()} — "
                    "the EFBIG test covers the same path without root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_enospc_stops_new_positions_protects_open_ones_and_resumes(tmp_path, small_tmpfs):
    state_dir = small_tmpfs / "state"
    done = run_through_an_outage(tmp_path, state_dir, "enospc", ballast=small_tmpfs / "ballast")
    figures = judge(done, state_dir)
    record_figures("disk full (ENOSPC, tmpfs)", cycles_during=figures["cycles_during"],
                   positions_opened_during=figures["opened_during"], exits_during=figures["closes_during"],
                   resumed=int(figures["opened_after"] > 0), lost=figures["lost"], tracebacks=figures["tracebacks"],
                   archive_fills_missing=figures["archive_fills_missing"])
    check(figures)
    assert "No space left on device (ENOSPC)" in done.stderr
