"""`make bench`'s table: runs each bench script of issues 19 and 20 with ``--json FILE`` and prints one table of
their rows, in the issue's order: measure | value | baseline (value) | ratio | goal | met.

A row, as each script writes it: ``{"measure": "...", "value": 155396.4, "unit": "rows/s", "baseline":
"what it is compared with, measured in the same run", "baseline_value": 110756.6, "ratio": 1.40, "goal":
">= 150k rows/s", "met": true}`` (``value`` null with a ``note``: not measured, and why).

A script that is missing, has no ``--json`` yet, fails or times out still gets a line ("not measured:
why"), and the failures are listed under the table. Each script's own readable table is printed as it
runs. The exit status is 0 (a bench reports; it does not fail) unless ``--strict``: then 1 when a row
is not measured or misses its goal.

``--quick`` passes small sizes to the scripts that take them (what a script's ``--help`` does not
offer is left out): archiver.py ``--quick`` (20,000 rows); cli_startup.py ``--runs 3``;
backtest_vs_peers.py ``--rows 100000 --repeat 1``; optimizer.py ``--trials 20 --rows 100000
--jobs 1 2``; replay.py ``--cycles 60``; charts.py ``--quick`` (one page load each, still a year of 1m:
its goals are about that size). A script offering ``--quick`` itself gets ``--quick`` instead.

    .venv/bin/python bench/table.py [--quick] [--strict] [--only archiver.py ...] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The scripts, in the order of the issues' tables (issue 19's, then issue 20's charts).
SCRIPTS = ("optimizer.py", "backtest_vs_peers.py", "cli_startup.py", "replay.py", "archiver.py", "charts.py")
#: Small sizes for ``--quick``, by script (each flag is passed only if the script's --help offers it).
QUICK = {
    "cli_startup.py": [["--runs", "3"]],
    "backtest_vs_peers.py": [["--rows", "100000"], ["--repeat", "1"]],
    "optimizer.py": [["--trials", "20"], ["--rows", "100000"], ["--jobs", "1", "2"]],
    "replay.py": [["--cycles", "60"]],
}
COLUMNS = ("measure", "value", "baseline (value)", "ratio", "goal", "met")


def number(value: float | str | None, unit: str = "") -> str:
    """A figure for the table: 155.4k rows/s, 1,234 cycles/s, 0.182 s, 3.51 x."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):  # not a figure: shown as written
        return f"{value} {unit}".strip()
    size = abs(value)
    if size >= 10_000:
        text = f"{value / 1000:,.1f}k"
    elif size >= 100:
        text = f"{value:,.0f}"
    elif size >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def times(ratio: float | str | None) -> str:
    """A ratio: 1.40x, 48.3x, 1,234x."""
    if ratio is None or isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        return "" if ratio is None else str(ratio)
    return f"{ratio:.2f}x" if abs(ratio) < 10 else f"{ratio:.1f}x" if abs(ratio) < 100 else f"{ratio:,.0f}x"


def cells(row: dict) -> list[str]:
    """One table line's cells from a bench row (the protocol: see the module's docstring)."""
    unit = row.get("unit") or ""
    if row.get("value") is None:
        return [str(row.get("measure", "?")), f"not measured: {row.get('note') or 'no value'}", "", "",
                str(row.get("goal") or ""), "NO"]
    baseline = str(row.get("baseline") or "")
    if row.get("baseline_value") is not None:  # in the row's unit, unless the row is a ratio ("x") or says
        baseline_unit = row.get("baseline_unit", "" if unit == "x" else unit)
        baseline = f"{baseline} ({number(row['baseline_value'], baseline_unit)})"
    ratio = row.get("ratio")
    met = row.get("met")
    return [str(row["measure"]), number(row["value"], unit), baseline,
            times(ratio), str(row.get("goal") or ""),
            "yes" if met is True else "NO" if met is False else ""]


def render(rows: list[dict]) -> str:
    """The rows as one Markdown table, columns padded to line up."""
    table = [list(COLUMNS)] + [cells(row) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths)) + " |" for line in table]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def options(script: Path) -> str:
    """The script's --help text ("" when it cannot say)."""
    try:
        done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


def quick_flags(name: str, help_text: str) -> list[str]:
    if "--quick" in help_text:
        return ["--quick"]
    return [part for flag in QUICK.get(name, []) if flag[0] in help_text for part in flag]


def watch(command: list[str], timeout: float) -> tuple[int | None, str]:
    """Run ``command``, its output shown as it comes: (exit status or None on timeout, last line of stderr)."""
    timed_out = threading.Event()
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace") as process:
        timer = threading.Timer(timeout, lambda: (timed_out.set(), process.kill()))
        timer.start()
        last = "no message"
        for line in process.stderr:
            sys.stderr.write(line)
            text = line.replace("\r", "\n").strip().splitlines()
            last = text[-1].strip() if text else last
        status = process.wait()
        timer.cancel()
    return (None if timed_out.is_set() else status), last


def run(script: Path, quick: bool, timeout: float) -> tuple[list[dict], str | None]:
    """Run one bench script with ``--json``: (its rows, None) or (rows or [], why it failed)."""
    name = script.name
    if not script.exists():
        return [], f"bench/{name} does not exist yet"
    help_text = options(script)
    if "--json" not in help_text:
        return [], f"bench/{name} has no --json yet"
    with tempfile.TemporaryDirectory(prefix="gobot-bench-table-") as folder:
        out = Path(folder) / "rows.json"
        command = [sys.executable, str(script), "--json", str(out)]
        command += quick_flags(name, help_text) if quick else []
        print(f"\n$ {' '.join(['python', f'bench/{name}', *command[2:]])}", flush=True)
        status, last = watch(command, timeout)
        if status is None:
            return [], f"bench/{name} timed out after {timeout:.0f} s"
        failed = f"bench/{name} exited with status {status}: {last[:160]}" if status else None
        try:
            rows = json.loads(out.read_text())
        except (OSError, ValueError) as exc:
            return [], failed or f"bench/{name} wrote no rows ({type(exc).__name__})"
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "measure" in r for r in rows):
        return [], f"bench/{name} wrote rows that are not a list of {{measure, value, ...}}"
    return rows, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (see above), for a first look")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a row is not measured or misses its goal")
    parser.add_argument("--only", nargs="+", metavar="SCRIPT", choices=SCRIPTS, help="run only these scripts")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per script (default 1800)")
    args = parser.parse_args(argv)
    rows: list[dict] = []
    failures: list[str] = []
    for name in args.only or SCRIPTS:
        found, failed = run(HERE / name, args.quick, args.timeout)
        rows += found or [{"measure": f"bench/{name}", "value": None, "note": failed}]
        if failed:
            failures.append(failed)
    load = ", load average (1/5/15 min) %.1f %.1f %.1f" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    print(f"\nbench table{' (--quick: small sizes)' if args.quick else ''}, {time.strftime('%Y-%m-%d %H:%M %Z')}, "
          f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}{load}\n")
    print(render(rows))
    if failures:
        print("\nnot measured or failed:")
        for failed in failures:
            print(f"- {failed}")
    missed = failures or [r for r in rows if r.get("met") is not True]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
