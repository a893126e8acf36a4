"""How many trials a second ``gobot optimize`` runs, against plain Optuna + numpy on the same search.

The data is bench/backtest_vs_peers.py's: a year of 1-minute candles (525,600, a seeded geometric
random walk), written as a replay CSV. The search is the ``sma_cross`` strategy's two parameters
(fast 2..100, slow 5..400), TPE seeded, 3 walk-forward folds (out of sample 25 % of in sample),
Sharpe, all-in, 0.1 % fee, no slippage, no stop or target, 200 trials.

``gobot optimize`` runs as a whole process, as a user types it (Python start, imports, reading the
data, the baseline scan, every trial stored in its default storage, the study's own journal file in
the state folder, the report): trials/s is trials / wall time, with ``--jobs 1`` and ``--jobs 2``; each
figure, the baselines' too, is the fastest of ``--repeat`` runs (the ``--jobs`` values take turns). Its
trial phase alone (first trial's start to the last one's end, from the study's stored timestamps) is
printed beside it, and as rows: how ``--jobs 2`` scales the trial phase, and the serial rest of a
``--jobs 1`` run (start-up, report), which no number of jobs shortens. And this machine's own
ceiling for ``--jobs 2``: two ``--jobs 1`` processes started together, each on a study of its own,
against one alone (two processes share the memory bus and the last-level cache; however its work is
split, ``--jobs 2`` cannot scale further than two independent runs). The baselines run in this process,
in the same run: Optuna's TPE over a numpy SMA cross (the same signals, next-open fills, fee, per-bar
returns, Sharpe per fold in and out of sample), its study in memory and on Optuna's SQLite storage.

    .venv/bin/python bench/optimizer.py [--trials 200] [--rows 525600] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backtest_vs_peers import YEAR, make_candles, write_data  # noqa: E402  the same year of candles

GOBOT = str(Path(sys.executable).parent / "gobot")
FOLDS, OOS = 3, 0.25
FEE = 0.001
SEED = 7
GOAL_TRIALS_PER_S = 20.0
GOAL_JOBS_2 = 1.8
ROW = "`gobot optimize --jobs 1` (2-parameter SMA, a year of 1m, 3 folds)"


# -- the baselines: plain Optuna + numpy --------------------------------------------------------------


def folds(n: int) -> list[tuple[slice, slice]]:
    """The walk-forward windows as bar ranges (the optimizer's arithmetic on a gap-free series)."""
    in_length = n / (1 + FOLDS * OOS)
    out = []
    for k in range(FOLDS):
        a = k * in_length * OOS
        b = a + in_length
        out.append((slice(int(a), int(b)), slice(int(b), int(min(b + in_length * OOS, n)))))
    return out


def sma_cross_returns(open_: np.ndarray, close: np.ndarray, sums: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """Per-bar returns of a long-only SMA cross: in on the cross above at a close, filled at the next open,
    out on the cross below; open-to-open returns, the fee at each fill."""
    n = len(close)
    fast_ma = np.full(n, np.nan)
    slow_ma = np.full(n, np.nan)
    fast_ma[fast - 1:] = (sums[fast:] - sums[:-fast]) / fast
    slow_ma[slow - 1:] = (sums[slow:] - sums[:-slow]) / slow
    with np.errstate(invalid="ignore"):
        above = fast_ma > slow_ma
        below = fast_ma < slow_ma
    state = np.full(n, np.nan)
    state[1:][above[1:] & below[:-1]] = 1.0
    state[1:][below[1:] & above[:-1]] = 0.0
    index = np.where(~np.isnan(state), np.arange(n), 0)
    np.maximum.accumulate(index, out=index)
    held = np.nan_to_num(state[index])  # decided at bar i's close
    position = np.concatenate(([0.0], held[:-1]))  # held from bar i+1's open
    returns = np.zeros(n)
    returns[:-1] = position[:-1] * (open_[1:] / open_[:-1] - 1.0)
    returns -= np.abs(np.diff(position, prepend=0.0)) * FEE
    return returns


def sharpe(returns: np.ndarray) -> float:
    deviation = returns.std()
    return float(returns.mean() / deviation * np.sqrt(YEAR)) if deviation > 0 else 0.0


def peer_trials_per_s(candles: dict[str, np.ndarray], trials: int, storage: str | None) -> tuple[float, float]:
    """Plain Optuna + numpy: trials/s and the best in-sample Sharpe (in memory, or on a storage URL)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    open_, close = candles["open"], candles["close"]
    windows = folds(len(close))

    def objective(trial) -> float:
        fast = trial.suggest_int("fast", 2, 100)
        slow = trial.suggest_int("slow", 5, 400)
        sums = np.concatenate(([0.0], np.cumsum(close)))
        returns = sma_cross_returns(open_, close, sums, fast, slow)
        ins = [sharpe(returns[a]) for a, _ in windows]
        trial.set_user_attr("out_of_sample", float(np.mean([sharpe(returns[b]) for _, b in windows])))
        return float(np.mean(ins))

    started = time.perf_counter()
    study = optuna.create_study(storage=storage, direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=SEED, multivariate=True))
    study.optimize(objective, n_trials=trials)
    return trials / (time.perf_counter() - started), study.best_value


# -- gobot optimize, a whole process -----------------------------------------------------------------


def write_config(folder: Path, data_file: Path) -> Path:
    config = folder / "config.toml"
    config.write_text(textwrap.dedent(f"""\
        state_dir = "{folder / 'state'}"
        [plugins]
        enable = ["sma_cross"]
        disable = ["archiver", "circuit_breaker", "kelly_size"]
        [backtest]
        data_dir = "{data_file.parent}"
        timeframe = "1m"
        sizing = "all-in"
        risk = "none"
        fee_percent = 0.1
        slippage_percent = 0
        [trading]
        symbols = ["BTC/USDT"]
        [optimizer]
        strategy = "sma_cross"
        objective = "sharpe"
        folds = {FOLDS}
        out_of_sample_percent = {OOS * 100:g}
        min_trades = 10
        target_trades = 1000000000
        """), encoding="utf-8")
    return config


def gobot_optimize(config: Path, trials: int, jobs: int, study: str) -> dict:
    """One ``gobot optimize`` process: its wall time, the trials it stored and the span of its trial phase."""
    command = [GOBOT, "optimize", "--config", str(config), "--no-progress", "--json", "--study", study,
               "--max-iterations", str(trials), "--jobs", str(jobs), "--seed", str(SEED),
               "--stop-loss", "none", "--take-profit", "none"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime  # the process and its workers
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    count = len(report["trials"])
    return {"seconds": seconds, "trials": count, "per_s": count / seconds, "cpu_ms": cpu / count * 1000,
            "trial_phase_per_s": count / trial_phase_seconds(config.parent / "state", study)}


def independent_pair(config: Path, trials: int, study: str) -> float:
    """Two ``gobot optimize --jobs 1`` processes started together on studies of their own: the wall time until
    both ended. Twice one's trials in that time, against one alone, is how far this machine lets two processes
    scale (memory and caches the two cores share): an upper bound of ``--jobs 2``'s scaling in the same run."""
    command = [GOBOT, "optimize", "--config", str(config), "--no-progress", "--json", "--max-iterations", str(trials),
               "--jobs", "1", "--seed", str(SEED), "--stop-loss", "none", "--take-profit", "none", "--study"]
    started = time.perf_counter()
    pair = [subprocess.Popen(command + [f"{study}-{n}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for n in (1, 2)]
    for process in pair:
        _, errors = process.communicate()
        if process.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{errors[-3000:]}")
    return time.perf_counter() - started


def trial_phase_seconds(state: Path, study: str) -> float:
    import optuna

    from gobot.research.optimizer import default_storage_url, storage

    found = optuna.load_study(study_name=study, storage=storage(default_storage_url(state, study)))
    done = [t for t in found.trials if t.datetime_complete is not None]
    first = min(t.datetime_start for t in done)
    last = max(t.datetime_complete for t in done)
    return max((last - first).total_seconds(), 1e-9)


# -- the table ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200, help="trials per study (default 200)")
    parser.add_argument("--rows", type=int, default=YEAR, help="one-minute candles (default: a year)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="gobot optimize --jobs values")
    parser.add_argument("--repeat", type=int, default=3, help="gobot optimize runs per --jobs value; the fastest "
                        "counts (a machine shared with other work slows some runs; default 3)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the rows as JSON (bench/table.py)")
    parser.add_argument("--keep", type=Path, help="write the data and state here and keep them")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="gobot-bench-optimizer-"))
    candles = make_candles(args.rows)
    data_file = write_data(folder / "data", candles)
    config = write_config(folder, data_file)
    # Byte-compiled first, as pip does for an installed package; the first run keeps a binary copy of the CSV.
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "gobot"), str(root / "plugins"),
                    str(root / "hookspecs")], check=True)
    gobot_optimize(config, 1, 1, "warm-up")
    print(f"{args.rows:,} one-minute candles, {FOLDS} walk-forward folds, {args.trials} trials, TPE seed {SEED}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")

    memory = max(peer_trials_per_s(candles, args.trials, None)[0] for _ in range(args.repeat))
    sqlite = max(peer_trials_per_s(candles, args.trials, f"sqlite:///{folder / f'peer-{n}.db'}")[0]
                 for n in range(args.repeat))
    tries: dict[int, list[dict]] = {jobs: [] for jobs in args.jobs}
    pairs: list[float] = []
    for n in range(args.repeat):  # interleaved: a machine that slows for a minute slows every --jobs value alike
        for jobs in args.jobs:
            tries[jobs].append(gobot_optimize(config, args.trials, jobs, f"bench-jobs-{jobs}-{n}"))
        if 2 in args.jobs:
            pairs.append(independent_pair(config, args.trials, f"bench-pair-{n}"))
    runs = {jobs: max(found, key=lambda run: run["per_s"]) for jobs, found in tries.items()}
    print(f"\n{'run':<44} {'trials':>6} {'seconds':>8} {'trials/s':>9} {'x Optuna SQLite':>16} {'trial phase/s':>14} "
          f"{'CPU ms/trial':>13}")
    print(f"{'plain Optuna + numpy, in memory':<44} {args.trials:>6} {args.trials / memory:>8.2f} {memory:>9.2f} "
          f"{memory / sqlite:>16.2f}")
    print(f"{'plain Optuna + numpy, Optuna SQLite storage':<44} {args.trials:>6} {args.trials / sqlite:>8.2f} "
          f"{sqlite:>9.2f} {1.0:>16.2f}")
    for jobs, run in runs.items():
        print(f"{f'gobot optimize --jobs {jobs} (whole process)':<44} {run['trials']:>6} {run['seconds']:>8.2f} "
              f"{run['per_s']:>9.2f} {run['per_s'] / sqlite:>16.2f} {run['trial_phase_per_s']:>14.2f} "
              f"{run['cpu_ms']:>13.1f}")
    if pairs:
        print(f"{'two gobot optimize --jobs 1 at once':<44} {2 * args.trials:>6} {min(pairs):>8.2f} "
              f"{2 * args.trials / min(pairs):>9.2f} {2 * args.trials / min(pairs) / sqlite:>16.2f}")
    print("(CPU ms/trial: the process and its workers together; the same with --jobs 2 means the workers share the "
          "work without doing it twice, so --jobs 2 scales as far as a second core is free)")
    rows = []
    if 1 in runs:
        one = runs[1]["per_s"]
        rows.append({"measure": ROW, "value": round(one, 2), "unit": "trials/s",
                     "baseline": "plain Optuna + numpy on Optuna's SQLite storage", "baseline_value": round(sqlite, 2),
                     "ratio": round(one / sqlite, 2), "goal": f">= {GOAL_TRIALS_PER_S:g} trials/s",
                     "met": one >= GOAL_TRIALS_PER_S})
        rows.append({"measure": "`gobot optimize --jobs 1` vs the in-memory floor", "value": round(one, 2),
                     "unit": "trials/s", "baseline": "plain Optuna + numpy, in memory",
                     "baseline_value": round(memory, 2), "ratio": round(one / memory, 2), "goal": "floor, no goal",
                     "met": True})
        for jobs in (j for j in runs if j > 1):
            scale = runs[jobs]["per_s"] / one
            rows.append({"measure": f"`gobot optimize --jobs {jobs}`", "value": round(scale, 2), "unit": "x",
                         "baseline": "gobot optimize --jobs 1", "baseline_value": round(one, 2),
                         "ratio": round(scale, 2), "goal": f">= {GOAL_JOBS_2:g}x --jobs 1" if jobs == 2 else "",
                         "met": scale >= GOAL_JOBS_2 if jobs == 2 else True})
            if jobs == 2 and pairs:
                ceiling = 2 * args.trials / min(pairs) / one
                rows.append({"measure": "two `gobot optimize --jobs 1` at once (this machine's ceiling for --jobs 2)",
                             "value": round(ceiling, 2), "unit": "x", "baseline": "gobot optimize --jobs 1 alone",
                             "baseline_value": round(one, 2), "ratio": round(ceiling, 2),
                             "goal": "no goal: --jobs 2 cannot scale further", "met": True})
            phase = runs[jobs]["trial_phase_per_s"] / runs[1]["trial_phase_per_s"]
            rows.append({"measure": f"`gobot optimize --jobs {jobs}`, trial phase only", "value": round(phase, 2),
                         "unit": "x", "baseline": "the trial phase of --jobs 1",
                         "baseline_value": round(runs[1]["trial_phase_per_s"], 2), "ratio": round(phase, 2),
                         "goal": "no goal: the start-up it cannot share excluded", "met": True})
        serial = runs[1]["seconds"] - runs[1]["trials"] / runs[1]["trial_phase_per_s"]
        rows.append({"measure": "`gobot optimize` start-up and report (serial, --jobs 1)", "value": round(serial, 3),
                     "unit": "s", "baseline": "-", "baseline_value": None, "ratio": None,
                     "goal": "no goal: bounds what --jobs can gain", "met": True})
    print("\ngoals")
    for row in rows:
        print(f"  {row['measure']:<52} {row['value']:>8.2f} {row['unit']:<9} {row['goal']:<26} "
              + ("OK" if row["met"] else "MISSED"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
