"""`make bench`'s table (bench/table.py): how it shows the rows the bench scripts write, and how it
reports a script that is missing, has no --json or fails — on small stand-in scripts, not the benchmarks."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

TABLE = Path(__file__).resolve().parents[1] / "bench" / "table.py"


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("bench_table", TABLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_show_value_baseline_ratio_goal_and_whether_met(table):
    rows = [
        {"measure": "archiver bulk insert on PostgreSQL, trades", "value": 155396.4, "unit": "rows/s",
         "baseline": "previous path", "baseline_value": 110756.6, "ratio": 1.403, "goal": ">= 150k rows/s",
         "met": True},
        {"measure": "gobot --help", "value": 0.1824, "unit": "s", "baseline": "python -c pass", "baseline_value": None,
         "ratio": None, "goal": "<= 0.3 s", "met": False},
        {"measure": "bench/replay.py", "value": None, "note": "bench/replay.py has no --json yet"},
        {"measure": "whole process vs backtesting.py", "value": 10.4, "unit": "x", "baseline": "backtesting.py",
         "baseline_value": 3.371, "baseline_unit": "s", "ratio": 10.4, "goal": ">= 10x", "met": True},
        {"measure": "odd", "value": "fast", "ratio": "n/a"},  # not figures: shown as written, never a crash
    ]
    lines = table.render(rows).splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == list(table.COLUMNS)
    assert set(lines[1]) == {"|", "-"} and len({len(line) for line in lines}) == 1
    first, second, third, fourth, fifth = ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])
    assert first == ["archiver bulk insert on PostgreSQL, trades", "155.4k rows/s", "previous path (110.8k rows/s)",
                     "1.40x", ">= 150k rows/s", "yes"]
    assert second == ["gobot --help", "0.182 s", "python -c pass", "", "<= 0.3 s", "NO"]
    assert third[:2] == ["bench/replay.py", "not measured: bench/replay.py has no --json yet"] and third[-1] == "NO"
    assert fourth[1:4] == ["10.40 x", "backtesting.py (3.37 s)", "10.4x"]  # a ratio's baseline in its own unit
    assert fifth == ["odd", "fast", "", "n/a", "", ""]


def script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("import argparse, json, sys\nparser = argparse.ArgumentParser()\n" + body)
    return path


def test_a_script_is_run_with_json_and_its_rows_collected(table, tmp_path):
    good = script(tmp_path, "good.py", 'parser.add_argument("--json")\nparser.add_argument("--runs")\n'
                  "args = parser.parse_args()\n"
                  'json.dump([{"measure": "m", "value": float(args.runs or 0), "unit": "s"}], open(args.json, "w"))\n')
    table.QUICK["good.py"] = [["--runs", "3"], ["--absent", "1"]]
    assert table.run(good, quick=False, timeout=60) == ([{"measure": "m", "value": 0.0, "unit": "s"}], None)
    assert table.run(good, quick=True, timeout=60)[0][0]["value"] == 3.0  # --absent is not offered: left out


def test_a_missing_silent_or_failing_script_is_reported_not_raised(table, tmp_path):
    assert table.run(tmp_path / "none.py", False, 60) == ([], "bench/none.py does not exist yet")
    older = script(tmp_path, "older.py", "parser.parse_args()\n")
    assert table.run(older, False, 60) == ([], "bench/older.py has no --json yet")
    broken = script(tmp_path, "broken.py", 'parser.add_argument("--json")\nparser.parse_args()\n'
                    'sys.exit("no PostgreSQL server")\n')
    assert table.run(broken, False, 60) == ([], "bench/broken.py exited with status 1: no PostgreSQL server")


def test_the_table_script_answers_help():
    done = subprocess.run([sys.executable, str(TABLE), "--help"], capture_output=True, text=True, check=True)
    assert "--quick" in done.stdout and "--strict" in done.stdout
