"""Helpers of the state-folder chaos tests (``test_chaos_state_files.py``, ``test_chaos_state_dir.py``):
real ``gobot`` processes on a replay of the bundled data, and a run SIGKILLed after its third cycle."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import textwrap
from pathlib import Path

from chaos_support import GOBOT

BUNDLED_DATA = Path(__file__).resolve().parents[1] / "data"


def gobot(folder: Path, *args: str, kill_point: str | None = None,
          extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """``gobot <args> --config <folder>/config.toml`` as a real process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOBOT_")} | {"COLUMNS": "200"} | (extra_env or {})
    if kill_point:
        env["GOBOT_TEST_KILL_POINT"] = kill_point
    return subprocess.run([GOBOT, *args, "--config", str(folder / "config.toml")], env=env, capture_output=True,
                          text=True, timeout=120, cwd=folder)


def write_config(folder: Path, extra: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(
        f'state_dir = "state"\n[plugins.replay]\ndata_dir = "{BUNDLED_DATA}"\n{textwrap.dedent(extra)}',
        encoding="utf-8")


def audit(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "state" / "audit.jsonl").read_text(encoding="utf-8").splitlines()]


def crashed_run(folder: Path) -> Path:
    """A run SIGKILLed after its third cycle: state.json holds cycle 3, state.json.bak cycle 2."""
    write_config(folder)
    done = gobot(folder, "start", "--max-iterations", "10", "--quiet", kill_point="after_cycle:3")
    assert done.returncode == -signal.SIGKILL, done.stderr
    return folder


def copy_of(crashed: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "bot"
    shutil.copytree(crashed, folder)
    return folder
