"""The bot's persisted state, written atomically after every cycle so a restart resumes where it stopped.

Files in ``state_dir`` (created owner-only):
- ``state.json``: everything needed to resume (portfolio, orders, strategy versions, learnings,
  plugin state, per-cycle rows);
- ``progress.json``: a small summary rewritten each cycle, for ``tail -f``-style watching;
- ``audit.jsonl``: the audit log; ``PAUSED`` and ``KILL``: control files;
- ``CLOSE_POSITIONS`` and ``RISK_RESET``: requests left by ``gobot kill --close-positions`` and
  ``gobot risk reset`` for a running bot, taken at the start of its next cycle;
- ``.run.lock``: held (``flock``) by the process running the bot, so commands know whether one runs;
- ``heartbeat.json``: wall-clock proof of life, rewritten every cycle and every ``[watchdog]
  heartbeat_interval`` (30 s), with ``stopped`` once the run ended in order; ``gobot watchdog`` alerts
  when it goes stale.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from gobot_hookspecs import Learning, Order, OrderIntent, Position, StrategyVersion, Trade

from .secrets import redact

STATE_VERSION = 1
MAX_LEARNINGS = 50
MAX_CYCLE_ROWS = 2000


class CycleRow(BaseModel):
    """One line of the per-cycle table."""

    iteration: int
    time: datetime
    signals: str = ""  # e.g. "1L 0S 3H"
    vetoes: int = 0
    orders: int = 0
    fills: int = 0
    closed: int = 0
    equity: float = 0.0
    pnl: float = 0.0
    duration_ms: float = 0.0
    phase_ms: dict[str, float] = Field(default_factory=dict)
    note: str = ""


class BotState(BaseModel):
    """Everything a restart needs. ``iteration`` counts completed cycles of the current run."""

    version: int = STATE_VERSION
    run_id: str
    iteration: int = 0
    clock: datetime | None = None  # the simulated time of the next cycle (replay)
    cash: float
    initial_capital: float
    positions: dict[str, Position] = Field(default_factory=dict)
    trades: list[Trade] = Field(default_factory=list)
    open_orders: dict[str, Order] = Field(default_factory=dict)  # by client order id
    intents: dict[str, OrderIntent] = Field(default_factory=dict)  # by client order id, until filled
    strategies: dict[str, StrategyVersion] = Field(default_factory=dict)
    strategy_history: list[StrategyVersion] = Field(default_factory=list)
    learnings: list[Learning] = Field(default_factory=list)
    plugin_state: dict[str, dict[str, Any]] = Field(default_factory=dict)
    cycles: list[CycleRow] = Field(default_factory=list)
    vetoes: list[dict[str, Any]] = Field(default_factory=list)  # every veto with its reason (summary)
    day_start_equity: dict[str, float] = Field(default_factory=dict)  # by UTC date
    last_prices: dict[str, float] = Field(default_factory=dict)
    equity_peak: float = 0.0
    max_drawdown: float = 0.0  # fraction of the peak
    finished: bool = False
    finish_reason: str = ""


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` with owner-only permissions (state may reveal positions and balances)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def atomic_write(path: Path, text: str, kill_point: str | None = None) -> None:
    """Write via a temporary file, fsync and rename: a crash leaves the old or the new file, never half.

    ``kill_point``: crash tests name it in ``GOBOT_TEST_KILL_POINT`` to SIGKILL the process halfway
    through the temporary file (the middle of a state write)."""
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if kill_point is not None and os.environ.get("GOBOT_TEST_KILL_POINT") == kill_point:
                handle.write(text[: len(text) // 2])
                handle.flush()
                os.kill(os.getpid(), 9)  # SIGKILL
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StateStore:
    """Reads and writes the files in ``state_dir``."""

    def __init__(self, state_dir: Path):
        self.dir = state_dir
        self.state_file = state_dir / "state.json"
        self.progress_file = state_dir / "progress.json"
        self.pause_file = state_dir / "PAUSED"
        self.heartbeat_file = state_dir / "heartbeat.json"
        self.close_request_file = state_dir / "CLOSE_POSITIONS"
        self.reset_request_file = state_dir / "RISK_RESET"
        self.lock_file = state_dir / ".run.lock"
        self._lock_fd: int | None = None

    def acquire_run_lock(self) -> bool:
        """Take the run lock (an ``flock`` the OS releases even on kill -9); False if another bot holds it."""
        if self._lock_fd is not None:
            return True
        ensure_private_dir(self.dir)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        return True

    def release_run_lock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def bot_running(self) -> bool:
        """True while a bot runs on this state folder (its process holds the run lock)."""
        if not self.lock_file.exists():
            return False
        fd = os.open(self.lock_file, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # closing the descriptor drops a lock taken through it
        return False

    def load(self) -> BotState | None:
        if not self.state_file.exists():
            return None
        return BotState.model_validate_json(self.state_file.read_text(encoding="utf-8"))

    def save(self, state: BotState) -> None:
        atomic_write(self.state_file, redact(state.model_dump_json(indent=1)), kill_point=f"mid_state_write:{state.iteration}")

    def save_progress(self, progress: dict[str, Any]) -> None:
        atomic_write(self.progress_file, redact(json.dumps(progress, indent=2, default=str)))

    def beat(self, state: BotState, stopped: str | None = None) -> None:
        """Write the heartbeat: wall-clock time (not the simulated clock), pid, run and iteration;
        ``stopped`` (the reason) when the run ended in order, so a watchdog knows it is not silence."""
        beat = {"time": datetime.now(timezone.utc).isoformat(), "pid": os.getpid(), "run_id": state.run_id,
                "iteration": state.iteration}
        if stopped is not None:
            beat["stopped"] = stopped
        atomic_write(self.heartbeat_file, redact(json.dumps(beat)))

    def archive(self, state: BotState) -> Path:
        """Move a finished or abandoned run's state aside (``runs/<run_id>.json``)."""
        target = ensure_private_dir(self.dir / "runs") / f"{state.run_id}.json"
        atomic_write(target, redact(state.model_dump_json(indent=1)))
        self.state_file.unlink(missing_ok=True)
        return target

    @property
    def paused(self) -> bool:
        return self.pause_file.exists()

    def set_paused(self, paused: bool) -> None:
        if paused:
            ensure_private_dir(self.dir)
            self.pause_file.write_text("paused by `gobot pause`\n", encoding="utf-8")
        else:
            self.pause_file.unlink(missing_ok=True)
