"""How fast the replay loop runs with the default plugins on the bundled data, and what each cycle makes durable.

Runs the loop the way ``gobot start`` does (the shipped ``config.toml``, the same ``Bot`` and ``Runner``,
logging set up as ``gobot start`` sets it up), in this process, in a fresh state folder in a temporary
directory, for ``--cycles`` cycles (300 by default; the bundled candles give about 890 cycles of 15
minutes). It counts, during the cycles only:

- ``os.fsync`` / ``os.fdatasync`` calls, made by the loop's thread and by the others (the archiver's
  writer thread) — the rule is one durable write per cycle, made by the loop;
- reads of ``os.environ`` made by the redaction code (``gobot/secrets.py``, ``gobot_hookspecs/redact.py``);
- the phase timings the bot records (``state.cycles[*].phase_ms``), averaged, and the loop thread's
  CPU time per cycle (``time.thread_time``: what is left of a cycle once the disk, the archiver's
  writer thread and other processes are taken out).

Baseline, in the same process: the same loop with ``os.fsync`` made a no-op (durability off), which says
what the one fsync per cycle costs on this disk; the goal is >= 300 cycles/s with it on. The two take
turns, ``--repeat`` runs each (3), and each figure is the fastest of its runs, as the other benches take
theirs: other work on the machine only ever slows a run (one run of 300 cycles lasts about a second).

    .venv/bin/python bench/replay.py [--cycles 300] [--repeat 3] [--json rows.json] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_CYCLES_PER_SECOND = 300.0
REDACTION_FILES = ("gobot/secrets.py", "gobot_hookspecs/redact.py")


class Counters:
    """fsyncs by thread and environment reads by the redaction code, counted while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.loop_fsyncs = self.other_fsyncs = self.env_reads = 0
        self.loop_fsync_seconds = 0.0  # time the loop's thread spent in fsync: the disk's share of a cycle
        self.loop_thread = threading.get_ident()
        self.sync_off = False

    def install(self) -> None:
        real_fsync, real_fdatasync = os.fsync, os.fdatasync

        def counted(real):
            def sync(fd):
                loop = threading.get_ident() == self.loop_thread
                if self.on:
                    if loop:
                        self.loop_fsyncs += 1
                    else:
                        self.other_fsyncs += 1
                if not self.sync_off:
                    started = time.perf_counter()
                    real(fd)
                    if self.on and loop:
                        self.loop_fsync_seconds += time.perf_counter() - started
            return sync

        os.fsync, os.fdatasync = counted(real_fsync), counted(real_fdatasync)
        counters = self

        class CountingEnviron(type(os.environ)):
            def __getitem__(self, key):
                if counters.on and _called_from(REDACTION_FILES):
                    counters.env_reads += 1
                return super().__getitem__(key)

            def __iter__(self):
                if counters.on and _called_from(REDACTION_FILES):
                    counters.env_reads += 1
                return super().__iter__()

        environ = os.environ
        os.environ = CountingEnviron(  # noqa: B003 - the same variables (one _data), counted
            environ._data, environ.encodekey, environ.decodekey, environ.encodevalue,
            environ.decodevalue)


def _called_from(files: tuple[str, ...], depth: int = 4) -> bool:
    """Whether one of the ``depth`` callers above the environment's method is in ``files`` (``get`` and
    ``items`` go through ``collections.abc`` first)."""
    frame = sys._getframe(2)
    for _ in range(depth):
        if frame is None:
            return False
        if frame.f_code.co_filename.endswith(files):
            return True
        frame = frame.f_back
    return False


def fresh_home(parent: Path) -> Path:
    """A folder holding the shipped config.toml and nothing else: state in gobot_state/, the bundled candles."""
    home = Path(tempfile.mkdtemp(dir=parent))
    shutil.copy(ROOT / "config.toml", home / "config.toml")
    return home


def run_loop(home: Path, cycles: int, counters: Counters) -> dict:
    """One run of ``cycles`` cycles; cycles/s over the cycles (start-up and shutdown excluded) and the counts."""
    from gobot.cli.common import load, setup_logging
    from gobot.run.bot import Bot
    from gobot.run.runner import Runner

    settings, plugin_set = load(str(home / "config.toml"))
    setup_logging(settings)
    bot = Bot(settings, plugin_set, fresh=True)
    runner = Runner(bot, cycles)
    one_cycle, marks = runner._one_cycle, []  # counts at the first cycle's start and the last one's end

    def mark() -> tuple:
        return (time.perf_counter(), time.thread_time(), counters.loop_fsyncs, counters.other_fsyncs,
                counters.env_reads, counters.loop_fsync_seconds)

    async def timed_cycle() -> None:
        if not marks:
            counters.on = True
            marks.append(mark())
        await one_cycle()
        marks[1:] = [mark()]  # the run's wind-up (its final save, shutdown) is left out

    runner._one_cycle = timed_cycle
    try:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            outcome = asyncio.run(runner.run())
    finally:
        counters.on = False
    done = outcome.cycles_run
    rows = bot.state.cycles[-done:] if done else []
    phases: dict[str, float] = {}
    for row in rows:
        for name, ms in row.phase_ms.items():
            phases[name] = phases.get(name, 0.0) + ms / len(rows)
    (t0, c0, loop0, other0, env0, sync0), (t1, c1, loop1, other1, env1, sync1) = marks[0], marks[-1]
    seconds = t1 - t0
    return {"cycles": done, "seconds": seconds, "cycles_per_s": done / seconds if seconds else 0.0,
            "loop_fsyncs": loop1 - loop0, "other_fsyncs": other1 - other0, "env_reads": env1 - env0,
            "phase_ms": phases, "fsync_ms": (sync1 - sync0) * 1000 / done if done else 0.0,
            "cpu_ms": (c1 - c0) * 1000 / done if done else 0.0,
            "cycle_ms": sum(r.duration_ms for r in rows) / len(rows) if rows else 0.0, "reason": outcome.reason}


def rows_for(on: dict, off: dict) -> list[dict]:
    per = lambda key: on[key] / on["cycles"] if on["cycles"] else 0.0  # noqa: E731
    return [
        {"measure": "replay loop, default plugins, bundled data", "value": round(on["cycles_per_s"], 1),
         "unit": "cycles/s", "baseline": "the same loop with fsync a no-op (durability off)",
         "baseline_value": round(off["cycles_per_s"], 1), "ratio": round(on["cycles_per_s"] / off["cycles_per_s"], 3),
         "goal": f">= {GOAL_CYCLES_PER_SECOND:g} cycles/s", "met": on["cycles_per_s"] >= GOAL_CYCLES_PER_SECOND},
        {"measure": "replay loop: fsyncs per cycle (the loop's thread)", "value": round(per("loop_fsyncs"), 3),
         "unit": "fsyncs/cycle", "baseline": "one durable write per cycle", "baseline_value": 1.0,
         "ratio": round(per("loop_fsyncs"), 3), "goal": "1 per cycle", "met": on["loop_fsyncs"] == on["cycles"]},
        {"measure": "replay loop: environment reads by redaction", "value": float(on["env_reads"]),
         "unit": f"reads/{on['cycles']} cycles", "baseline": None, "baseline_value": None, "ratio": None,
         "goal": "no read per call (at most a refresh per cycle)", "met": on["env_reads"] <= on["cycles"]},
    ]


def print_table(on: dict, off: dict, where: str) -> None:
    print(f"replay loop, default plugins, bundled data: {on['cycles']} cycles ({on['reason']}), state in {where}")
    print(f"{'run':<34}{'cycles/s':>10}{'ms/cycle':>10}{'CPU ms':>8}{'fsync/cyc':>11}{'fsync ms':>10}"
          f"{'other fsync':>13}{'env reads':>11}")
    for name, r in (("durable (as shipped)", on), ("baseline: fsync a no-op", off)):
        n = r["cycles"] or 1
        print(f"{name:<34}{r['cycles_per_s']:>10.1f}{1000 / r['cycles_per_s']:>10.2f}{r['cpu_ms']:>8.2f}"
              f"{r['loop_fsyncs'] / n:>11.2f}"
              f"{r['fsync_ms']:>10.2f}{r['other_fsyncs']:>13}{r['env_reads']:>11}")
    print(f"ratio durable / baseline: {on['cycles_per_s'] / off['cycles_per_s']:.2f}; "
          f"vs the goal of {GOAL_CYCLES_PER_SECOND:g} cycles/s: {on['cycles_per_s'] / GOAL_CYCLES_PER_SECOND:.2f}")
    print("phase ms per cycle (durable run): " + ", ".join(f"{k} {v:.2f}" for k, v in on["phase_ms"].items())
          + f"; whole cycle {on['cycle_ms']:.2f} (the bot's own timing, without the runner's heartbeat)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, taking turns; each figure is the "
                        "fastest of its runs (other work on the machine only slows a run; default 3)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON (the bench row protocol)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the durable run instead")
    parser.add_argument("--dir", metavar="FOLDER", help="make the state folders there (say /dev/shm: no disk "
                        "cost, the CPU's share); default: the system's temporary folder")
    args = parser.parse_args()
    counters = Counters()
    counters.install()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            run_loop(fresh_home(Path(tmp)), args.cycles, counters)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            return
        runs: dict[bool, list[dict]] = {False: [], True: []}  # sync_off -> its runs; the two take turns
        for _ in range(args.repeat):
            for sync_off in (False, True):
                counters.sync_off = sync_off
                runs[sync_off].append(run_loop(fresh_home(Path(tmp)), args.cycles, counters))
        counters.sync_off = False
    on, off = (max(runs[sync_off], key=lambda r: r["cycles_per_s"]) for sync_off in (False, True))
    print_table(on, off, args.dir or tempfile.gettempdir())
    for name, sync_off in (("durable", False), ("baseline", True)):
        print(f"{name} runs, cycles/s: " + ", ".join(f"{r['cycles_per_s']:.1f}" for r in runs[sync_off]))
    if args.json:
        Path(args.json).write_text(json.dumps(rows_for(on, off), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
