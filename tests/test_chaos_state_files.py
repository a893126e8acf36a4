"""The state folder's files under damage, kills and operators, with real ``gobot`` processes.

- ``state.json`` damaged six ways (truncated, empty, garbage, ``[]``, NUL bytes, wrong types):
  ``gobot status`` and ``gobot start`` refuse with one line naming the file, what is wrong and the
  fix, exit status 2, and write nothing over it; ``gobot state restore`` puts the previous good
  generation back (audited) and the run resumes from it.
- ``state.json`` with impossible values (NaN cash, a negative iteration, infinite peak, a negative
  position, cycle rows beyond the iteration, a zero price): refused with ``file:key``.
- ``count(60, 1500)`` random damages to a real state file (cut, flipped, deleted and inserted
  bytes, numbers replaced by NaN, infinities, strings): read or refused with ``StateError``, never
  another exception.
- The backup is the previous generation, owner-only; a write cut by SIGKILL leaves both files good.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
from pathlib import Path

import pytest

from chaos_support import GOBOT, count, record_figures
from state_files_support import audit, copy_of, crashed_run, gobot


@pytest.fixture(scope="module")
def crashed(tmp_path_factory) -> Path:
    return crashed_run(tmp_path_factory.mktemp("crashed"))


def refused(done: subprocess.CompletedProcess, file: Path, key: str | None = None) -> bool:
    """Exit status 2, one line on stderr naming the file (and key), the problem and the fix; no traceback."""
    line = done.stderr.strip()
    where = f"{file}:{key}:" if key else f"{file}"
    return (done.returncode == 2 and "\n" not in line and line.startswith(f"Error: {where}") and " — fix: " in line
            and "Traceback" not in done.stdout + done.stderr)


def _wrong_types(raw: bytes) -> bytes:
    data = json.loads(raw)
    data["cash"], data["positions"] = "lots", []
    return json.dumps(data).encode()


DAMAGES = {
    "truncated": lambda raw: raw[: len(raw) // 2],
    "empty": lambda raw: b"",
    "garbage": lambda raw: b"\x89PNG\r\n\x1a\n not a state }{ \xff\xfe",
    "list": lambda raw: b"[]",
    "NUL bytes": lambda raw: bytes(len(raw)),  # what some file systems leave after a crash
    "wrong types": _wrong_types,
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(DAMAGES))
def test_a_damaged_state_json_is_refused_with_file_problem_and_fix_then_restored(crashed, tmp_path, kind):
    folder = copy_of(crashed, tmp_path)
    state_file = folder / "state" / "state.json"
    damaged = DAMAGES[kind](state_file.read_bytes())
    state_file.write_bytes(damaged)

    status, start = gobot(folder, "status"), gobot(folder, "start", "--max-iterations", "4", "--quiet")
    ok_refused = refused(status, state_file) and refused(start, state_file)
    assert ok_refused, (status.returncode, status.stderr, start.returncode, start.stderr)
    assert "gobot state restore" in status.stderr and "run " in status.stderr and "after cycle 2" in status.stderr
    if kind == "wrong types":
        assert refused(status, state_file, "cash") and "(and 1 more: positions)" in status.stderr
    if kind == "truncated":
        assert re.match(rf"Error: {re.escape(str(state_file))}:\d+:\d+: ends early \(truncated\)", status.stderr)
    assert state_file.read_bytes() == damaged  # fail closed: nothing was written over it

    restore = gobot(folder, "state", "restore")
    assert restore.returncode == 0, restore.stderr
    assert "run " in restore.stdout and "after cycle 2" in restore.stdout
    kept = list((folder / "state").glob("state.json.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged and kept[0].stat().st_mode & 0o077 == 0
    [event] = [e for e in audit(folder) if e["event"] == "state_restored"]
    assert event["iteration"] == 2 and event["replaced"] == str(kept[0]) and str(state_file) in event["problem"]
    assert json.loads(gobot(folder, "status", "--json").stdout)["iteration"] == 2
    resumed = gobot(folder, "start", "--max-iterations", "4", "--quiet")
    assert resumed.returncode == 0 and "after cycle 2" in resumed.stdout, resumed.stderr
    record_figures(f"state.json damaged ({len(DAMAGES)} kinds)", kinds=1, refused_with_file_and_fix=int(ok_refused),
                   restored_and_resumed=1)


def test_restore_refuses_a_readable_state_without_force_and_a_missing_backup(crashed, tmp_path):
    folder = copy_of(crashed, tmp_path)
    fine = gobot(folder, "state", "restore")
    assert fine.returncode == 2 and "is readable (run " in fine.stderr and "--force" in fine.stderr
    forced = gobot(folder, "state", "restore", "--force", "--reason", "roll back one cycle")
    assert forced.returncode == 0 and "after cycle 2" in forced.stdout
    assert [e["reason"] for e in audit(folder) if e["event"] == "state_restored"] == ["roll back one cycle"]
    (folder / "state" / "state.json.bak").unlink()
    (folder / "state" / "state.json").write_text("{")
    none = gobot(folder, "state", "restore")
    assert none.returncode == 2 and "no backup" in none.stderr and "Traceback" not in none.stderr
    status = gobot(folder, "status")
    assert refused(status, folder / "state" / "state.json") and "there is no backup" in status.stderr


def test_state_restore_explains_itself():
    done = subprocess.run([GOBOT, "state", "restore", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "state.json.bak" in text and "audit log" in text and "--force" in text and "exit status 2" in text


def _position(amount: float) -> dict:
    return {"symbol": "BTC/USDT", "direction": "LONG", "amount": amount, "entry_price": 50000.0,
            "opened_at": "2026-01-01T16:40:00Z", "client_order_id": "gbx"}


VALUES = {  # what is set in the state -> the key the refusal must name
    "cash NaN": (lambda d: d.update(cash=float("nan")), "cash"),
    "iteration -5": (lambda d: d.update(iteration=-5), "iteration"),
    "equity_peak Infinity": (lambda d: d.update(equity_peak=float("inf")), "equity_peak"),
    "negative position": (lambda d: d["positions"].update({"BTC/USDT": _position(-0.5)}), "positions.BTC/USDT.amount"),
    "cycle rows beyond the iteration": (lambda d: d.update(iteration=1), "cycles[1].iteration"),
    "zero last price": (lambda d: d["last_prices"].update({"ETH/USDT": 0.0}), "last_prices.ETH/USDT"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(VALUES))
def test_impossible_values_in_state_json_are_refused_with_file_and_key(crashed, tmp_path, case):
    folder = copy_of(crashed, tmp_path)
    state_file = folder / "state" / "state.json"
    data = json.loads(state_file.read_text())
    change, key = VALUES[case]
    change(data)
    state_file.write_text(json.dumps(data))  # json writes NaN and Infinity as such, as a hand edit would
    status, start = gobot(folder, "status"), gobot(folder, "start", "--max-iterations", "6", "--quiet")
    ok = refused(status, state_file, key) and refused(start, state_file, key)
    record_figures(f"state.json impossible values ({len(VALUES)} kinds)", kinds=1, refused_with_file_key=int(ok))
    assert ok, (status.returncode, status.stderr, start.returncode, start.stdout[-300:], start.stderr)
    assert "gobot state restore" in status.stderr


NUMBER = re.compile(rb"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def _mutate(raw: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    at = rng.randrange(len(raw))
    if kind == 0:
        return raw[:at]
    if kind == 1:
        return raw[:at] + bytes([rng.randrange(256)]) + raw[at + 1:]
    if kind == 2:
        return raw[:at] + raw[at + rng.randrange(1, 200):]
    if kind == 3:
        return raw[:at] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20))) + raw[at:]
    numbers = list(NUMBER.finditer(raw))
    match = rng.choice(numbers)
    new = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"-1", b"0", b"1e400", b'"x"', b"null", b"[]", b"{}",
                      b"-9e18"])
    return raw[:match.start()] + new + raw[match.end():]


def test_randomly_damaged_state_files_are_read_or_refused_never_crash(crashed, tmp_path):
    from gobot.errors import GobotError
    from gobot.run.state import StateStore

    folder = copy_of(crashed, tmp_path)
    store = StateStore(folder / "state")
    good = store.state_file.read_bytes()
    rng = random.Random(16)
    cases = count(60, 1500)
    refusals = accepted = crashes = 0
    for _ in range(cases):
        store.state_file.write_bytes(_mutate(good, rng))
        try:
            state = store.load()
        except GobotError as exc:  # StateError: one line, the file, the fix
            refusals += 1
            assert str(exc).startswith(f"{store.state_file}") and " — fix: " in str(exc) and "\n" not in str(exc)
            continue
        except Exception as exc:  # noqa: BLE001 — exactly what must never happen
            crashes += 1
            print("crash:", type(exc).__name__, exc)
            continue
        # a change that leaves a valid state (a digit of a price): no checksum can be asked of a hand edit
        accepted += 1
        from gobot.run.state import check_state

        assert check_state(state) == []
    record_figures("state.json fuzzed", cases=cases, refused=refusals, accepted_valid=accepted, crashes=crashes)
    assert crashes == 0 and refusals > cases // 2


@pytest.mark.slow
def test_the_previous_generation_is_kept_and_a_cut_write_leaves_good_files(crashed, tmp_path):
    folder = copy_of(crashed, tmp_path)
    state_dir = folder / "state"
    assert json.loads((state_dir / "state.json").read_text())["iteration"] == 3
    assert json.loads((state_dir / "state.json.bak").read_text())["iteration"] == 2
    assert (state_dir / "state.json.bak").stat().st_mode & 0o077 == 0
    cut = gobot(folder, "start", "--max-iterations", "10", "--quiet", kill_point="mid_state_write:5")
    assert cut.returncode == -signal.SIGKILL
    assert json.loads((state_dir / "state.json").read_text())["iteration"] == 4
    assert json.loads((state_dir / "state.json.bak").read_text())["iteration"] == 3
    resumed = gobot(folder, "start", "--max-iterations", "6", "--quiet")
    assert resumed.returncode == 0 and "after cycle 4" in resumed.stdout


def test_a_damaged_key_with_a_newline_is_named_on_one_line(tmp_path):
    from gobot.run.state import StateError

    error = StateError(tmp_path / "state.json", [("intents.x.signal.confid\nce", "is missing"), ("b\x0c", "bad")],
                       "restore the backup")
    assert str(error) == (f"{tmp_path / 'state.json'}:intents.x.signal.confid\\nce: is missing (and 1 more: b\\x0c)"
                          " — fix: restore the backup")
