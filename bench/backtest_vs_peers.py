"""gobot's backtester against backtesting.py and vectorbt: same data, same strategy, same trades.

A year of 1-minute candles (525,600, a seeded geometric random walk made with numpy) is written in
the replay format with a ``markets.json`` whose amount step is one satoshi (1e-8), as
backtesting.py's ``FractionalBacktest`` trades. The strategy is an SMA(10)/SMA(50) cross on the
close: long when the fast average crosses strictly above the slow one, out on the opposite cross,
all-in net of the entry fee, filled at the next bar's open, 0.1 % commission per fill, 1,000,000
start cash, an open position at the end marked to the last close. vectorbt (when installed) gets
the signals shifted one bar and ``price=open``.

Two baselines measure what the machine can do at all, in the same run: the **numpy floor**, the
fastest correct vectorized implementation of the same strategy written for it alone (running sums,
crosses, entries paired with exits by ``searchsorted``, the all-in compounding of each trade as one
``cumprod``, and the equity at every bar close as gobot's run returns it), and the **numpy reference
process**, a ``python -c`` that loads the CSV with ``np.loadtxt`` and runs the floor.

For the full year and for its first 20,000 rows it checks that gobot and the floor find the same
number of closed trades and the same final equity (to the cent) as backtesting.py, and prints each
tool's wall time in-process and as a whole process (Python start, imports, CSV parsing, run,
output), the ratios to backtesting.py, the floor and the reference process, the peak memory of the
``gobot backtest`` process, and issue 19's rows with their goals (``--json FILE`` writes them as the
bench row list that ``bench/table.py`` combines).

    .venv/bin/pip install -e ".[bench]"      # backtesting, vectorbt
    .venv/bin/python bench/backtest_vs_peers.py [--rows 525600] [--keep DIR] [--json rows.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np

GOBOT = str(Path(sys.executable).parent / "gobot")
YEAR = 525_600
SLICE = 20_000
CASH = 1_000_000.0
MEMORY_MB = 300.0  # peak of the `gobot backtest` process


def make_candles(rows: int, seed: int = 2024) -> dict[str, np.ndarray]:
    """A seeded geometric random walk of 1-minute candles: each open is the previous close."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, rows)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.0005, rows)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.0005, rows)))
    volume = rng.uniform(1.0, 100.0, rows)
    timestamp = 1_735_689_600_000 + np.arange(rows, dtype=np.int64) * 60_000  # 2025-01-01 UTC
    return {"timestamp": timestamp, "open": open_, "high": high, "low": low, "close": close, "volume": volume}


def write_data(folder: Path, candles: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "BTC_USDT-1m.csv"
    table = np.column_stack([candles[k] for k in ("timestamp", "open", "high", "low", "close", "volume")])
    with path.open("w", encoding="utf-8") as handle:
        handle.write("timestamp_ms,open,high,low,close,volume\n")
        np.savetxt(handle, table, fmt=["%d", "%.10g", "%.10g", "%.10g", "%.10g", "%.10g"], delimiter=",")
    (folder / "markets.json").write_text(json.dumps({"BTC/USDT": {"precision": {"amount": 1e-8, "price": 1e-8}}}),
                                         encoding="utf-8")
    return path


def timed(function, *args, **kwargs):
    gc.collect()
    gc.freeze()  # what earlier runs left behind is not scanned again by this one's collections
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - started, value


LAUNCHER = textwrap.dedent("""
    import subprocess, sys, time
    started = time.perf_counter()
    child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.communicate()
    seconds = time.perf_counter() - started
    import resource
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    sys.stdout.buffer.write(out)
    sys.stderr.buffer.write(err)
    sys.stderr.write(f"\\nLAUNCHER {seconds} {peak} {child.returncode}\\n")
""")


def peak_rss_mb(command: list[str], cwd: Path, repeat: int = 1) -> tuple[float, str, float]:
    """Wall seconds (the best of ``repeat`` runs), stdout and peak memory (MB) of a whole child process.

    A small launcher process starts it: a child's peak RSS counts the memory of the process it was
    forked from, so forking from this (large) bench process would overstate it.
    """
    runs = [_launch(command, cwd) for _ in range(repeat)]
    return min(r[0] for r in runs), runs[-1][1], max(r[2] for r in runs)


def _launch(command: list[str], cwd: Path) -> tuple[float, str, float]:
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *command], cwd=cwd, capture_output=True, text=True)
    line = done.stderr.strip().splitlines()[-1].split()
    seconds, peak_kb, code = float(line[1]), int(line[2]), int(line[3])
    if code:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, done.stdout, peak_kb / 1024


# -- the three engines, in-process ---------------------------------------------------------------


LOADED: dict = {}  # the CSV parsed once for the in-process runs


def gobot_run(data_file: Path, rows: int, path: str):
    from gobot.research.backtest.engine import ExecutionSettings, Sizing, run
    from gobot.research.market_data import read_markets, series_from_file
    from gobot_plugins.sma_cross.strategy import SmaCrossStrategy

    if data_file not in LOADED:
        LOADED[data_file] = series_from_file(data_file, markets=read_markets(data_file.parent))
    series = LOADED[data_file].between(None, int(LOADED[data_file].timestamp[rows - 1]) + 1)
    settings = ExecutionSettings(fee_percent=0.1, slippage_percent=0.0, stop_loss_percent=None,
                                 take_profit_percent=None,
                                 start_equity=CASH, sizing=Sizing("all_in"), allow_short=False)
    seconds, result = timed(run, SmaCrossStrategy(), {"fast": 10, "slow": 50}, [series], settings, path=path)
    return seconds, len(result.trades), result.end_equity


def backtesting_frame(candles, rows):
    import pandas as pd

    return pd.DataFrame({"Open": candles["open"][:rows], "High": candles["high"][:rows], "Low": candles["low"][:rows],
                         "Close": candles["close"][:rows], "Volume": candles["volume"][:rows]},
                        index=pd.to_datetime(candles["timestamp"][:rows], unit="ms"))


BACKTESTING_STRATEGY = textwrap.dedent("""
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

    def sma(values, n):
        return pd.Series(values).rolling(n).mean()

    class SmaCross(Strategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 50)

        def next(self):
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()
""")


def backtesting_run(frame):
    namespace: dict = {}
    exec(BACKTESTING_STRATEGY, namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = namespace["FractionalBacktest"](frame, namespace["SmaCross"], cash=CASH, commission=0.001)
        seconds, stats = timed(test.run)
    return seconds, int(stats["# Trades"]), float(stats["Equity Final [$]"])


VECTORBT = textwrap.dedent("""
    import numpy as np
    import vectorbt as vbt

    def vectorbt_run(open_, close):
        fast = vbt.MA.run(close, 10).ma.values
        slow = vbt.MA.run(close, 50).ma.values
        with np.errstate(invalid="ignore"):
            up = np.zeros(len(close), dtype=bool)
            down = np.zeros(len(close), dtype=bool)
            up[1:] = (fast[:-1] < slow[:-1]) & (fast[1:] > slow[1:])
            down[1:] = (fast[:-1] > slow[:-1]) & (fast[1:] < slow[1:])
        entries = np.concatenate(([False], up[:-1]))  # decided at a close, filled at the next open
        exits = np.concatenate(([False], down[:-1]))
        pf = vbt.Portfolio.from_signals(close, entries, exits, price=open_, fees=0.001, init_cash=%r, freq="1min")
        return int(pf.trades.closed.count()), float(pf.final_value())
""" % CASH)


def vectorbt_run(candles, rows):
    namespace: dict = {}
    exec(VECTORBT, namespace)
    namespace["vectorbt_run"](candles["open"][:rows], candles["close"][:rows])  # JIT warm-up
    seconds, (trades, equity) = timed(namespace["vectorbt_run"], candles["open"][:rows], candles["close"][:rows])
    return seconds, trades, equity


NUMPY_FLOOR = textwrap.dedent("""
    import numpy as np

    def numpy_floor(open_, close, fast=10, slow=50, fee=0.001, cash=%r):
        '''SMA cross, long only, all-in at the next open: closed trades, final equity, equity at each close.'''
        n = len(close)
        sums = np.empty(n + 1)
        sums[0] = 0.0
        np.cumsum(close, out=sums[1:])
        f = (sums[slow:] - sums[slow - fast : n + 1 - fast]) / fast  # index j is bar j + slow - 1
        s = (sums[slow:] - sums[: n + 1 - slow]) / slow
        above, below = f > s, f < s
        up = np.flatnonzero(below[:-1] & above[1:]) + slow  # decision bars; filled at the next open
        down = np.flatnonzero(above[:-1] & below[1:]) + slow
        up, down = up[up < n - 1], down[down < n - 1]
        j = np.searchsorted(down, up)  # an up cross while long (no down cross since the last) is ignored
        entries = up[np.concatenate(([True], j[1:] != j[:-1]))] if len(up) else up
        k = np.searchsorted(down, entries)
        exits = down[k[k < len(down)]]
        closed = len(exits)
        pe, px = open_[entries + 1], open_[exits + 1]
        growth = np.cumprod(px * (1 - fee) / (pe[:closed] * (1 + fee)))
        start = cash * np.concatenate(([1.0], growth))  # cash before each entry
        amount = start[: len(entries)] / (pe * (1 + fee))
        end = start[closed] if closed == len(entries) else amount[-1] * close[-1]
        moves = np.zeros(n + 1)
        held = np.zeros(n + 1)
        moves[entries + 1] = -amount * pe * (1 + fee)  # an up and a down cross never share a bar
        moves[exits + 1] = amount[:closed] * px * (1 - fee)
        held[entries + 1] = amount
        held[exits + 1] = -amount[:closed]
        equity = cash + np.cumsum(moves[:n]) + np.cumsum(held[:n]) * close
        return closed, float(end), equity
""" % CASH)


def numpy_floor_run(candles, rows, repeat: int = 9):
    namespace: dict = {}
    exec(NUMPY_FLOOR, namespace)
    open_, close = np.ascontiguousarray(candles["open"][:rows]), np.ascontiguousarray(candles["close"][:rows])
    runs = [timed(namespace["numpy_floor"], open_, close) for _ in range(repeat)]
    seconds = min(s for s, _ in runs)
    trades, equity, _ = runs[-1][1]
    return seconds, trades, equity


def has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except Exception:
        return False


# -- whole processes -----------------------------------------------------------------------------


def peer_script(tool: str, data_file: Path) -> list[str]:
    read = (f"import pandas as pd\nframe = pd.read_csv({str(data_file)!r})\n"
            "frame.index = pd.to_datetime(frame.pop('timestamp_ms'), unit='ms')\n"
            "frame.columns = ['Open', 'High', 'Low', 'Close', 'Volume']\n")
    if tool == "backtesting.py":
        body = (BACKTESTING_STRATEGY + read + "import warnings\nwarnings.simplefilter('ignore')\n"
                f"stats = FractionalBacktest(frame, SmaCross, cash={CASH!r}, commission=0.001).run()\n"
                "print(stats['# Trades'], stats['Equity Final [$]'])\n")
    else:
        body = VECTORBT + read + "print(*vectorbt_run(frame['Open'].values, frame['Close'].values))\n"
    return [sys.executable, "-c", body]


def in_process(candles, data_file: Path, total: int, have_vbt: bool, failures: list[str]) -> list[dict]:
    """Each engine on the first 20,000 rows and on all of them, data in memory: seconds, trades, equity."""
    rows: list[dict] = []
    for n in (min(SLICE, total), total):
        bt_s, bt_trades, bt_equity = backtesting_run(backtesting_frame(candles, n))
        runs = [("backtesting.py", (bt_s, bt_trades, bt_equity)), ("numpy floor", numpy_floor_run(candles, n))]
        for path in ("vectorized", "per-bar"):
            gobot_run(data_file, min(n, 5000), path)  # warm imports and caches, as the peers get
            tries = [gobot_run(data_file, n, path) for _ in range(7 if path == "vectorized" else 2)]
            runs.append((f"gobot ({path})", min(tries)))
        if have_vbt:
            runs.append(("vectorbt (warm)", vectorbt_run(candles, n)))
        for tool, (seconds, trades, equity) in runs:
            rows.append({"tool": tool, "rows": n, "s": seconds, "trades": trades, "equity": equity, "base": bt_s})
            if tool != "vectorbt (warm)" and (trades != bt_trades or abs(equity - bt_equity) >= 0.005):
                failures.append(f"{tool} on {n:,} rows: {trades} trades, equity {equity:.6f}; "
                                f"backtesting.py: {bt_trades} trades, equity {bt_equity:.6f}")
    floor = {r["rows"]: r["s"] for r in rows if r["tool"] == "numpy floor"}
    print("\nin-process (data in memory; vectorbt after its JIT warm-up; best of 7 gobot vectorized, 2 per-bar, "
          "9 floor runs)")
    print(f"{'tool':<22} {'rows':>9} {'seconds':>9} {'x bt.py':>8} {'x floor':>8} {'trades':>7} {'final equity':>18}")
    for row in rows:
        print(f"{row['tool']:<22} {row['rows']:>9,} {row['s']:>9.4f} {row['base'] / row['s']:>8.1f} "
              f"{row['s'] / floor[row['rows']]:>8.2f} {row['trades']:>7} {row['equity']:>18.6f}")
    return rows


def whole_processes(data_file: Path, folder: Path, repeat: int, have_vbt: bool, year_bt: dict,
                    failures: list[str]) -> dict[str, tuple[float, float]]:
    """Each tool as a whole process, best of ``repeat``: name -> (seconds, peak MB)."""
    flags = ["--data", str(data_file), "-p", "sma_cross", "-s", "sma_cross", "--sizing", "all-in", "--risk", "none",
             "--fee", "0.1", "--slippage", "0", "--stop-loss", "none", "--take-profit", "none", "--equity", str(CASH),
             "--no-progress"]
    # Like an installed package (pip compiles on install), gobot's modules are byte-compiled before timing;
    # an environment with PYTHONDONTWRITEBYTECODE would otherwise recompile them in every timed process.
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "gobot"), str(root / "plugins"),
                    str(root / "hookspecs")], check=True)
    cache = folder / "gobot_state"
    firsts = []
    for _ in range(repeat):  # each first run parses the CSV: the binary copy of the one before is deleted
        shutil.rmtree(cache, ignore_errors=True)
        firsts.append(peak_rss_mb([GOBOT, "backtest", *flags], folder))
    whole = {"gobot backtest, first run (CSV)": (min(f[0] for f in firsts), max(f[2] for f in firsts))}
    process_runs = [("gobot backtest (cached)", [GOBOT, "backtest", *flags]),
                    ("gobot backtest --path per-bar", [GOBOT, "backtest", *flags, "--path", "per-bar"]),
                    ("numpy reference process", reference_script(data_file)),
                    ("backtesting.py", peer_script("backtesting.py", data_file))]
    if have_vbt:
        process_runs.append(("vectorbt (cold: import+JIT)", peer_script("vectorbt", data_file)))
    outputs = {}
    for name, command in process_runs:
        seconds, out, rss = peak_rss_mb(command, folder, repeat=repeat)
        whole[name], outputs[name] = (seconds, rss), out
    trades, equity = outputs["numpy reference process"].split()
    if int(trades) != year_bt["trades"] or abs(float(equity) - year_bt["equity"]) >= 0.005:
        failures.append(f"numpy reference process: {trades} trades, equity {equity}")
    _, json_out, _ = peak_rss_mb([GOBOT, "backtest", *flags, "--json"], folder)
    document = json.loads(json_out)
    if (len(document["trades"]) != year_bt["trades"]
            or abs(document["metrics"]["end_equity"] - year_bt["equity"]) >= 0.005):
        failures.append(f"gobot backtest (process): {len(document['trades'])} trades, equity "
                        f"{document['metrics']['end_equity']}")
    return whole


def reference_script(data_file: Path) -> list[str]:
    body = (NUMPY_FLOOR + f"table = np.loadtxt({str(data_file)!r}, delimiter=',', skiprows=1, usecols=(1, 4))\n"
            "trades, equity, _ = numpy_floor(np.ascontiguousarray(table[:, 0]), np.ascontiguousarray(table[:, 1]))\n"
            "print(trades, equity)\n")
    return [sys.executable, "-c", body]


def issue_rows(rows: list[dict], whole: dict[str, tuple[float, float]], total: int) -> list[dict]:
    """Issue 19's rows (the bench row protocol of bench/table.py)."""
    year = {r["tool"]: r["s"] for r in rows if r["rows"] == total}
    floor, bt = year["numpy floor"], year["backtesting.py"]
    fast, slow = year["gobot (vectorized)"], year["gobot (per-bar)"]
    first, cached = whole["gobot backtest, first run (CSV)"][0], whole["gobot backtest (cached)"][0]
    reference, bt_whole = whole["numpy reference process"][0], whole["backtesting.py"][0]
    worst = min(bt_whole / first, bt_whole / cached)
    peak = max(whole["gobot backtest, first run (CSV)"][1], whole["gobot backtest (cached)"][1])
    return [
        row("vectorized backtest of that year (1 year of 1m), in-process", fast, "s", "numpy floor", floor,
            fast / floor, "<= 2.5x floor", fast / floor <= 2.5),
        row("per-bar path, in-process", slow, "s", "backtesting.py", bt, bt / slow,
            ">= 10x faster than backtesting.py", bt / slow >= 10),
        row("`gobot backtest`, whole process, first run (CSV parsed)", first, "s", "numpy reference process",
            reference, first / reference, "<= 1 s", first <= 1.0),
        row("`gobot backtest`, whole process, cached", cached, "s", "numpy reference process", reference,
            cached / reference, "<= 1 s", cached <= 1.0),
        row("`gobot backtest`, whole process, vs backtesting.py", worst, "x", "backtesting.py process", bt_whole,
            worst, ">= 10x, cached or not", worst >= 10),
        row("`gobot backtest`, whole process, peak memory", peak, "MB", "-", None, None,
            f"< {MEMORY_MB:g} MB", peak < MEMORY_MB),
    ]


def row(measure: str, value: float, unit: str, baseline: str, baseline_value: float | None, ratio: float | None,
        goal: str, met: bool) -> dict:
    return {"measure": measure, "value": round(value, 4), "unit": unit, "baseline": baseline,
            "baseline_value": None if baseline_value is None else round(baseline_value, 4),
            "ratio": None if ratio is None else round(ratio, 2), "goal": goal, "met": bool(met)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=YEAR, help="candles in the full run (default: a year of 1m)")
    parser.add_argument("--keep", type=Path, help="write the data here and keep it")
    parser.add_argument("--repeat", type=int, default=3,
                        help="whole-process runs per tool; the best counts (default 3)")
    parser.add_argument("--json", type=Path, help="also write issue 19's rows to this file (bench/table.py)")
    args = parser.parse_args()
    have_bt, have_vbt = has("backtesting"), has("vectorbt")
    if not have_bt:
        raise SystemExit("backtesting.py is not installed: .venv/bin/pip install -e '.[bench]'")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="gobot-bench-"))
    candles = make_candles(args.rows)
    data_file = write_data(folder, candles)
    print(f"{args.rows:,} one-minute candles in {data_file} ({data_file.stat().st_size / 1e6:.1f} MB)")
    if not have_vbt:
        print("vectorbt is not installed (pip install vectorbt): its rows are skipped")

    failures: list[str] = []
    rows = in_process(candles, data_file, args.rows, have_vbt, failures)
    year_bt = next(r for r in rows if r["tool"] == "backtesting.py" and r["rows"] == args.rows)
    whole = whole_processes(data_file, folder, args.repeat, have_vbt, year_bt, failures)
    bt_whole, reference = whole["backtesting.py"][0], whole["numpy reference process"][0]
    print(f"\nwhole process, {args.rows:,} rows, best of {args.repeat} (Python start, imports, reading the data, run, "
          "output; a first run parses the CSV, later runs read the binary copy it kept)")
    print(f"{'process':<32} {'seconds':>9} {'x bt.py':>8} {'x numpy ref':>12} {'peak MB':>8}")
    for name, (seconds, rss) in whole.items():
        print(f"{name:<32} {seconds:>9.3f} {bt_whole / seconds:>8.1f} {seconds / reference:>12.2f} {rss:>8.0f}")

    measured = issue_rows(rows, whole, args.rows)
    print("\nissue 19 (ratios measured in this run)")
    print(f"{'measure':<62} {'value':>9} {'baseline':>24} {'ratio':>7}  {'goal':<34} met")
    for r in measured:
        base = "" if r["baseline_value"] is None else f"{r['baseline']} {r['baseline_value']:g}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:g}"
        print(f"{r['measure']:<62} {r['value']:>7g} {r['unit']:<2} {base:>24} {ratio:>7}  {r['goal']:<34} "
              f"{'yes' if r['met'] else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps(measured, indent=1) + "\n", encoding="utf-8")
    print("\ncross-check against backtesting.py (same closed trades, final equity to the cent): "
          + ("OK" if not failures else "FAILED"))
    for failure in failures:
        print(f"  {failure}")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
