"""The state folder across kills and operators, with real ``gobot`` processes (issue 16, finding 11).

- ``count(3, 40)`` SIGKILLs of a run that fills every cycle, before its state was saved (before the
  persist, halfway through the state write, between a fill and its archive write): the restart
  re-runs the cycle and meets its fill again, yet every fill and closed trade is in the audit log
  once, and none is missing (compared with the same run uninterrupted).
- A state write cut by SIGKILL goes into the spare file (``StateStore.save``) and the next start resumes;
  temporary files a killed process left (``.<name>.<random>.tmp``: Telegram's outbox, the archiver's)
  are removed when the next bot starts.
- The kill switch and pause files are owner-only (0600), like every other file of the state.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
from pathlib import Path

import pytest

from chaos_support import count, install_flip_plugin, record_figures
from state_files_support import audit, copy_of, crashed_run, gobot, write_config


@pytest.fixture(scope="module")
def crashed(tmp_path_factory) -> Path:
    return crashed_run(tmp_path_factory.mktemp("crashed"))


@pytest.mark.slow
def test_a_state_write_cut_by_sigkill_goes_into_the_spare_and_the_next_start_resumes(crashed, tmp_path):
    folder = copy_of(crashed, tmp_path)
    state_dir = folder / "state"
    cut = gobot(folder, "start", "--max-iterations", "10", "--quiet", kill_point="mid_state_write:5")
    assert cut.returncode == -signal.SIGKILL
    assert not list(state_dir.glob(".*.tmp"))  # the half write went into the spare, no temporary is left
    spare = state_dir / ".state.json.spare"
    assert spare.stat().st_nlink == 1 and stat.S_IMODE(spare.stat().st_mode) == 0o600
    assert json.loads((state_dir / "state.json").read_text())["iteration"] == 4
    resumed = gobot(folder, "start", "--max-iterations", "6", "--quiet")
    assert resumed.returncode == 0 and "after cycle 4" in resumed.stdout
    assert json.loads((state_dir / "state.json").read_text())["iteration"] == 6


@pytest.mark.slow
def test_temporaries_left_by_a_killed_process_are_removed_at_start(crashed, tmp_path):
    folder = copy_of(crashed, tmp_path)
    state_dir = folder / "state"
    (state_dir / "runs").mkdir(exist_ok=True)
    left = [state_dir / ".telegram-outbox.json.k3j4h5.tmp", state_dir / ".state.json.a8b9c0.tmp",
            state_dir / "runs" / ".r1.json.x1y2z3.tmp"]
    for path in left:
        path.write_text('{"half": ')
    keep = state_dir / "telegram-outbox.json"
    keep.write_text('{"version": 1, "entries": []}')
    done = gobot(folder, "start", "--max-iterations", "4", "--quiet")
    assert done.returncode == 0, done.stderr
    removed = [path for path in left if not path.exists()]
    record_figures("stale temporaries at start", left=len(left), removed=len(removed))
    assert removed == left and keep.exists()
    [event] = [e for e in audit(folder) if e["event"] == "stale_temporaries_removed"]
    assert {str(p.relative_to(state_dir)) for p in left} <= set(event["files"])  # and any the crashed run itself left
    assert not list(state_dir.glob(".*.tmp")) and not list(state_dir.glob("runs/.*.tmp"))


def test_the_kill_switch_and_pause_files_are_owner_only(tmp_path):
    write_config(tmp_path)
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    (state_dir / "KILL").write_text("an old one, 0644\n")
    os.chmod(state_dir / "KILL", 0o644)
    assert gobot(tmp_path, "kill", "--reason", "test").returncode == 0
    assert gobot(tmp_path, "pause").returncode == 0
    modes = {name: stat.S_IMODE((state_dir / name).stat().st_mode) for name in ("KILL", "PAUSED")}
    record_figures("control files owner-only", files=len(modes), owner_only=sum(m & 0o077 == 0 for m in modes.values()))
    assert modes == {"KILL": 0o600, "PAUSED": 0o600}
    assert (state_dir / "KILL").read_text() == "test\n"


FLIP_CONFIG = """
[trading]
symbols = ["BTC/USDT"]
max_position_usd = 100
initial_capital_usd = 10000
[plugins]
enable = ["chaos_flip"]
disable = ["sma_rsi", "adjuster", "validator", "archiver"]
[plugins.risk_limits]
symbol_cooldown_minutes = 0
max_trades_per_day = 0
low_liquidity_hours = []
max_total_exposure_usd = 1000
[plugins.circuit_breaker]
circuit_breaker_threshold = 1000000
max_consecutive_losses = 1000000
failure_threshold = 1000000
"""


def facts(folder: Path) -> list[tuple[str, str]]:
    """Every fill and closed trade in the audit log, without the run's own ids."""
    return [(e["event"], json.dumps({k: v for k, v in (e.get("fill") or e.get("trade")).items()
                                     if k not in ("client_order_id", "order_id")}, sort_keys=True))
            for e in audit(folder) if e["event"] in ("fill", "trade_closed")]


@pytest.mark.slow
def test_every_fill_and_closed_trade_is_audited_once_across_sigkills(tmp_path):
    """A strategy that trades every cycle, SIGKILLed ``count(3, 40)`` times before a cycle's state
    was saved (so the restart re-runs a cycle that already audited its fill): each fact once, none lost."""
    site = install_flip_plugin(tmp_path / "site")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    kills = count(3, 40)
    rng = random.Random(11)
    last = 2 * kills + 4
    calm, killed = tmp_path / "calm", tmp_path / "killed"
    for folder in (calm, killed):
        write_config(folder, FLIP_CONFIG)
    assert gobot(calm, "start", "--max-iterations", str(last), "--quiet", extra_env=env).returncode == 0
    landed = 0
    for _ in range(kills):
        state = killed / "state" / "state.json"
        done = json.loads(state.read_text())["iteration"] if state.exists() else 0
        point = rng.choice(["before_persist", "mid_state_write", "before_archive_fill"])
        cycle = done + 1 + rng.randrange(2)
        run = gobot(killed, "start", "--max-iterations", "0", "--quiet", kill_point=f"{point}:{cycle}", extra_env=env)
        landed += run.returncode == -signal.SIGKILL
    assert gobot(killed, "start", "--max-iterations", str(last), "--quiet", extra_env=env).returncode == 0
    written, expected = facts(killed), facts(calm)
    duplicates = len(written) - len(set(written))
    lost = len(set(expected) - set(written))
    record_figures("audit log across SIGKILLs", kills=landed, facts=len(expected), duplicate_fills_or_trades=duplicates,
                   lost=lost)
    assert landed == kills
    assert duplicates == 0 and lost == 0 and sorted(written) == sorted(expected)
