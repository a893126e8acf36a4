"""`make chaos`: the reliability suite at full counts, then its figures as one table.

Runs tests/test_chaos_*.py with GOBOT_CHAOS_FULL=1 (>= 50 SIGKILLs, every exchange fault 5 times,
thousands of fuzz cases); each test appends its figures to a JSON-lines file, printed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def summed(rows: list[dict]) -> dict[str, dict]:
    """One row per suite: a parametrized test writes a row per case, added up here."""
    suites: dict[str, dict] = {}
    for row in rows:
        figures = suites.setdefault(row.pop("suite"), {})
        for key, value in row.items():
            figures[key] = round(figures.get(key, 0) + value, 1) if isinstance(value, (int, float)) else value
    return suites


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        figures = Path(folder) / "figures.jsonl"
        env = os.environ | {"GOBOT_CHAOS_FULL": "1", "GOBOT_CHAOS_FIGURES": str(figures)}
        tests = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_chaos_*.py"))
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", *tests], cwd=ROOT,
                              env=env)
        rows = [json.loads(line) for line in figures.read_text().splitlines()] if figures.exists() else []
    from rich.console import Console
    from rich.table import Table

    table = Table(title="gobot reliability suite (make chaos)")
    for column in ("suite", "figures"):
        table.add_column(column)
    for suite, figures in summed(rows).items():
        table.add_row(suite, ", ".join(f"{k} = {v}" for k, v in figures.items()))
    Console(width=200).print(table)  # one line a suite: the figures are the point
    print("tests:", "passed" if done.returncode == 0 else f"FAILED (pytest exit {done.returncode})")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
