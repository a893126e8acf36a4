"""gobot's backtester against backtesting.py and vectorbt: same data, same strategy, same trades.

A year of 1-minute candles (525,600, a seeded geometric random walk made with numpy) is written in
the replay format with a ``markets.json`` whose amount step is one satoshi (1e-8), as
backtesting.py's ``FractionalBacktest`` trades. The strategy is an SMA(10)/SMA(50) cross on the
close: long when the fast average crosses strictly above the slow one, out on the opposite cross,
all-in net of the entry fee, filled at the next bar's open, 0.1 % commission per fill, 1,000,000
start cash, an open position at the end marked to the last close. vectorbt (when installed) gets
the signals shifted one bar and ``price=open``.

For the full year and for its first 20,000 rows it checks that gobot finds the same number of
closed trades and the same final equity (to the cent) as backtesting.py, and prints each tool's
wall time in-process and as a whole process (Python start, imports, CSV parsing, run, output),
the ratios to backtesting.py, and the peak memory of the ``gobot backtest`` process.

    .venv/bin/pip install -e ".[bench]"      # backtesting, vectorbt
    .venv/bin/python bench/backtest_vs_peers.py [--rows 525600] [--keep DIR]
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
TARGETS = {"whole process s": 1.0, "x backtesting.py": 10.0, "per-bar x backtesting.py": 4.0, "memory MB": 300.0}


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


def gobot_run(data_file: Path, rows: int, path: str):
    from gobot.research.backtest.engine import ExecutionSettings, Sizing, run
    from gobot.research.market_data import read_markets, series_from_file
    from gobot_plugins.sma_cross.strategy import SmaCrossStrategy

    series = series_from_file(data_file, markets=read_markets(data_file.parent))
    series = series.between(None, int(series.timestamp[rows - 1]) + 1)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=YEAR, help="candles in the full run (default: a year of 1m)")
    parser.add_argument("--keep", type=Path, help="write the data here and keep it")
    parser.add_argument("--repeat", type=int, default=3,
                        help="whole-process runs per tool; the best counts (default 3)")
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

    rows: list[dict] = []
    failures: list[str] = []
    for n in (min(SLICE, args.rows), args.rows):
        bt_s, bt_trades, bt_equity = backtesting_run(backtesting_frame(candles, n))
        rows.append({"tool": "backtesting.py", "rows": n, "s": bt_s, "trades": bt_trades, "equity": bt_equity,
                     "base": bt_s})
        for path in ("vectorized", "per-bar"):
            gobot_run(data_file, min(n, 5000), path)  # warm imports and caches, as the peers get
            seconds, trades, equity = gobot_run(data_file, n, path)
            rows.append({"tool": f"gobot ({path})", "rows": n, "s": seconds, "trades": trades, "equity": equity,
                         "base": bt_s})
            if trades != bt_trades or abs(equity - bt_equity) >= 0.005:
                failures.append(f"gobot {path} on {n:,} rows: {trades} trades, equity {equity:.6f}; "
                                f"backtesting.py: {bt_trades} trades, equity {bt_equity:.6f}")
        if have_vbt:
            seconds, trades, equity = vectorbt_run(candles, n)
            rows.append({"tool": "vectorbt (warm)", "rows": n, "s": seconds, "trades": trades, "equity": equity,
                         "base": bt_s})

    print("\nin-process (data in memory; vectorbt after its JIT warm-up)")
    print(f"{'tool':<22} {'rows':>9} {'seconds':>9} {'x bt.py':>8} {'trades':>7} {'final equity':>18}")
    for row in rows:
        print(f"{row['tool']:<22} {row['rows']:>9,} {row['s']:>9.3f} {row['base'] / row['s']:>8.1f} {row['trades']:>7} "
              f"{row['equity']:>18.6f}")

    flags = ["--data", str(data_file), "-p", "sma_cross", "-s", "sma_cross", "--sizing", "all-in", "--risk", "none",
             "--fee", "0.1", "--slippage", "0", "--stop-loss", "none", "--take-profit", "none", "--equity", str(CASH),
             "--no-progress"]
    env_cwd = folder
    # Like an installed package (pip compiles on install), gobot's modules are byte-compiled before timing;
    # an environment with PYTHONDONTWRITEBYTECODE would otherwise recompile them in every timed process.
    ROOT = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "gobot"), str(ROOT / "plugins"),
                    str(ROOT / "hookspecs")], check=True)
    whole: list[tuple[str, float, float, str]] = []
    first = peak_rss_mb([GOBOT, "backtest", *flags], env_cwd)  # parses the CSV and keeps a binary copy
    process_runs = [("gobot backtest", [GOBOT, "backtest", *flags]),
                    ("gobot backtest --path per-bar", [GOBOT, "backtest", *flags, "--path", "per-bar"]),
                    ("backtesting.py", peer_script("backtesting.py", data_file))]
    if have_vbt:
        process_runs.append(("vectorbt (cold: import+JIT)", peer_script("vectorbt", data_file)))
    for name, command in process_runs:
        seconds, out, rss = peak_rss_mb(command, env_cwd, repeat=args.repeat)
        whole.append((name, seconds, rss, out))
    whole.insert(1, ("gobot backtest, first run (CSV)", first[0], first[2], first[1]))
    _, json_out, _ = peak_rss_mb([GOBOT, "backtest", *flags, "--json"], env_cwd)
    document = json.loads(json_out)
    year_bt = next(r for r in rows if r["tool"] == "backtesting.py" and r["rows"] == args.rows)
    if (len(document["trades"]) != year_bt["trades"]
            or abs(document["metrics"]["end_equity"] - year_bt["equity"]) >= 0.005):
        failures.append(f"gobot backtest (process): {len(document['trades'])} trades, equity "
                        f"{document['metrics']['end_equity']}")
    bt_whole = next(s for name, s, _, _ in whole if name == "backtesting.py")
    print(f"\nwhole process, {args.rows:,} rows, best of {args.repeat} (Python start, imports, reading the data, run, "
          "output; gobot's later runs of a file read the binary copy its first run kept)")
    print(f"{'process':<30} {'seconds':>9} {'x bt.py':>8} {'peak MB':>8}")
    for name, seconds, rss, _ in whole:
        print(f"{name:<30} {seconds:>9.3f} {bt_whole / seconds:>8.1f} {rss:>8.0f}")

    g_whole = whole[0][1]
    g_first = whole[1][1]
    g_rss = max(whole[0][2], whole[1][2])
    g_fast = next(r for r in rows if r["tool"] == "gobot (vectorized)" and r["rows"] == args.rows)
    g_slow = next(r for r in rows if r["tool"] == "gobot (per-bar)" and r["rows"] == args.rows)
    checks = [
        (f"gobot backtest whole process < {TARGETS['whole process s']:g} s", g_whole,
         g_whole < TARGETS["whole process s"]),
        (f"  the same, first run (parses the CSV) < {TARGETS['whole process s']:g} s", g_first,
         g_first < TARGETS["whole process s"]),
        (f"in-process >= {TARGETS['x backtesting.py']:g}x backtesting.py", year_bt["s"] / g_fast["s"],
         year_bt["s"] / g_fast["s"] >= TARGETS["x backtesting.py"]),
        (f"whole process >= {TARGETS['x backtesting.py']:g}x backtesting.py's", bt_whole / g_whole,
         bt_whole / g_whole >= TARGETS["x backtesting.py"]),
        (f"per-bar path >= {TARGETS['per-bar x backtesting.py']:g}x backtesting.py", year_bt["s"] / g_slow["s"],
         year_bt["s"] / g_slow["s"] >= TARGETS["per-bar x backtesting.py"]),
        (f"gobot backtest peak memory < {TARGETS['memory MB']:g} MB", g_rss, g_rss < TARGETS["memory MB"]),
    ]
    print("\ntargets")
    for label, value, ok in checks:
        print(f"  {label:<48} {value:>9.2f}  {'OK' if ok else 'MISSED'}")
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
