"""A real `gobot start` process, killed with SIGKILL or stopped with SIGTERM, resumes where it stopped."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

GOBOT = str(Path(sys.executable).parent / "gobot")
BUNDLED_DATA = Path(__file__).resolve().parents[1] / "data"


def write_config(folder: Path, data_dir: Path) -> Path:
    config = folder / "config.toml"
    config.write_text(
        f'state_dir = "state"\n[plugins.replay]\ndata_dir = "{data_dir}"\n[plugins.console]\ncycle_lines = true\n'
    )
    return config


def start(config: Path, *args: str, kill_point: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("GOBOT_TEST_KILL_POINT", None)
    if kill_point:
        env["GOBOT_TEST_KILL_POINT"] = kill_point
    return subprocess.run([GOBOT, "start", "--config", str(config), *args], env=env, capture_output=True, text=True,
                          timeout=120, **kwargs)


def audit(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "state" / "audit.jsonl").read_text().splitlines()]


def trades(folder: Path) -> list[dict]:
    state = json.loads((folder / "state" / "state.json").read_text())
    return [{k: v for k, v in t.items() if k != "client_order_id"} for t in state["trades"]], {
        s: {k: v for k, v in p.items() if k != "client_order_id"} for s, p in state["positions"].items()
    }


@pytest.fixture
def uninterrupted(tmp_path_factory, synthetic_data_dir):
    folder = tmp_path_factory.mktemp("uninterrupted")
    done = start(write_config(folder, synthetic_data_dir), "--max-iterations", "12")
    assert done.returncode == 0, done.stderr
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("kill_point", ["after_cycle:5", "before_persist:5"])
def test_sigkill_then_restart_resumes_with_the_same_trades(tmp_path, synthetic_data_dir, uninterrupted, kill_point):
    config = write_config(tmp_path, synthetic_data_dir)
    crashed = start(config, "--max-iterations", "12", kill_point=kill_point)
    assert crashed.returncode == -signal.SIGKILL
    persisted = json.loads((tmp_path / "state" / "state.json").read_text())["iteration"]
    assert persisted == (5 if kill_point.startswith("after") else 4)

    resumed = start(config, "--max-iterations", "12")
    assert resumed.returncode == 0, resumed.stderr
    assert f"after cycle {persisted}" in resumed.stdout
    assert trades(tmp_path) == trades(uninterrupted)
    assert trades(tmp_path)[0], "the run should have closed trades to compare"


@pytest.mark.slow
def test_a_learning_survives_sigkill_and_reaches_the_next_cycle(tmp_path, synthetic_data_dir, uninterrupted):
    learned = [e for e in audit(uninterrupted) if e["event"] == "learning"]
    k = learned[0]["iteration"]
    ids = {e["learning"]["id"] for e in learned if e["iteration"] == k}

    config = write_config(tmp_path, synthetic_data_dir)
    assert start(config, "--max-iterations", "12", kill_point=f"after_cycle:{k}").returncode == -signal.SIGKILL
    assert start(config, "--max-iterations", "12").returncode == 0

    events = audit(tmp_path)
    restarted = next(i for i, e in enumerate(events) if e["event"] == "run_started" and e["resumed_from"] == k)
    handed = next(e for e in events[restarted:] if e["event"] == "ideas_input")
    assert handed["iteration"] == k + 1
    assert ids <= set(handed["learnings"])


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_persists(tmp_path):
    # The bundled 10 days give ~900 cycles: the signal lands long before the data runs out.
    config = write_config(tmp_path, BUNDLED_DATA)
    process = subprocess.Popen([GOBOT, "start", "--config", str(config), "--max-iterations", "0", "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:  # wait for proof that cycles are running
        if line.startswith("#3 "):
            break
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopped by SIGTERM" in out
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["iteration"] >= 3 and not state["finished"]
    resumed = start(config, "--max-iterations", str(state["iteration"] + 1), "--quiet")
    assert f"after cycle {state['iteration']}" in resumed.stdout


@pytest.mark.slow
def test_a_cycle_re_run_after_sigkill_writes_its_fill_and_closed_trade_once(tmp_path, synthetic_data_dir,
                                                                            uninterrupted):
    """Killed after a cycle's fill and closed trade were audited but before its state was saved: the
    restart re-runs the cycle and meets the same fill again. The audit log holds each fact once."""
    closing = next(e["iteration"] for e in audit(uninterrupted) if e["event"] == "trade_closed")
    config = write_config(tmp_path, synthetic_data_dir)
    assert start(config, "--max-iterations", "12", kill_point=f"before_persist:{closing}").returncode == -signal.SIGKILL
    before = [e for e in audit(tmp_path) if e["event"] in ("fill", "trade_closed")]
    assert any(e["event"] == "trade_closed" and e["iteration"] == closing for e in before)  # written before the kill
    assert start(config, "--max-iterations", "12").returncode == 0

    def facts(folder):  # without the run's client order ids (the uninterrupted run is another run)
        return [(e["event"], json.dumps({k: v for k, v in (e.get("fill") or e.get("trade")).items()
                                         if k not in ("client_order_id", "order_id")}, sort_keys=True))
                for e in audit(folder) if e["event"] in ("fill", "trade_closed")]

    written = facts(tmp_path)
    assert len(written) == len(set(written)), "a fill or a closed trade is in the audit log twice"
    assert sorted(written) == sorted(facts(uninterrupted))  # nothing lost either
    ids = [e["event_id"] for e in audit(tmp_path) if e["event"] in ("fill", "trade_closed")]
    assert len(ids) == len(set(ids)) == len(written)
