"""How fast the CLI answers: ``gobot --help`` within 0.15 s (issue 19; heavy libraries load lazily).

Prints a table of median wall times over several runs, each with its ratio to a bare
``python -c pass`` measured in the same run, and which heavy modules ``--help`` imported;
``--json FILE`` writes the ``gobot --help`` row in the bench row protocol of ``bench/table.py``.

    .venv/bin/python bench/cli_startup.py [--runs 15] [--json rows.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOBOT = str(Path(sys.executable).parent / "gobot")
TARGET_HELP_SECONDS = 0.15
HEAVY = ("ccxt", "openai", "playwright", "sqlmodel", "pandas", "numpy", "rich", "apscheduler", "gobot.run.bot",
         "gobot.config", "pydantic")


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def heavy_imports_of_help() -> list[str]:
    code = (
        "import sys\nfrom gobot.cli import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("HEAVY:"))
    return [m for m in line.removeprefix("HEAVY:").split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the `gobot --help` row to this file (bench/table.py)")
    args = parser.parse_args()
    # Like an installed package (pip compiles on install): byte-compile first, so an environment with
    # PYTHONDONTWRITEBYTECODE does not time the compiler on every run.
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "gobot"), str(root / "plugins"),
                    str(root / "hookspecs")], check=True)
    cases = [
        ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
        ("gobot --help", [GOBOT, "--help"]),
        ("gobot start --help", [GOBOT, "start", "--help"]),
        ("gobot plugins --json", [GOBOT, "plugins", "--json"]),
    ]
    results = [(name, median_seconds(command, args.runs)) for name, command in cases]
    baseline = results[0][1]
    print(f"{'command':<28} {'median s':>9} {'x baseline':>11}")
    for name, seconds in results:
        print(f"{name:<28} {seconds:9.3f} {seconds / baseline:11.1f}")
    help_seconds = results[1][1]
    met = help_seconds <= TARGET_HELP_SECONDS
    print(f"\ngobot --help: {help_seconds:.3f} s (goal <= {TARGET_HELP_SECONDS} s): {'OK' if met else 'OVER GOAL'}")
    heavy = heavy_imports_of_help()
    print(f"heavy modules imported by --help: {', '.join(heavy) or 'none'}")
    if args.json:
        rows = [{"measure": "`gobot --help`", "value": round(help_seconds, 4), "unit": "s",
                 "baseline": "`python -c pass`", "baseline_value": round(baseline, 4),
                 "ratio": round(help_seconds / baseline, 2), "goal": f"<= {TARGET_HELP_SECONDS} s", "met": met}]
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
