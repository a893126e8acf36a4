"""`gobot backtest` as a user runs it: JSON and tables, the HTML report, both signal paths, gaps,
market rules from markets.json, the lookahead check, and one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from gobot.cli import cli

GOBOT = str(Path(sys.executable).parent / "gobot")


@pytest.fixture
def config(tmp_path, synthetic_data_dir) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(f"""\
        state_dir = "{tmp_path / 'state'}"
        [backtest]
        data_dir = "{synthetic_data_dir}"
        """), encoding="utf-8")
    return path


def backtest(config: Path, *args: str) -> dict:
    result = CliRunner().invoke(cli, ["backtest", "--config", str(config), "--json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def gobot(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([GOBOT, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


FAST = ("-p", "sma_cross", "-s", "sma_cross", "--sizing", "all-in", "--risk", "none")


def test_json_has_the_metrics_the_trades_and_the_data(config):
    result = backtest(config, *FAST)
    assert result["strategy"] == "sma_cross" and result["path"] == "vectorized"
    assert [d["symbol"] for d in result["data"]] == ["BTC/USDT", "ETH/USDT"]
    assert result["metrics"]["trades"] == len(result["trades"]) > 0
    # as [plugins.paper]
    assert result["settings"]["fee_percent"] == 0.1 and result["settings"]["slippage_percent"] == 0.05
    assert result["settings"]["allow_short"] is False  # sma_cross is long only
    assert {"win_rate", "profit_factor", "sharpe", "sortino", "calmar", "max_drawdown_pct"} <= set(result["metrics"])


def test_the_per_bar_path_gives_the_same_result(config):
    fast = backtest(config, *FAST)
    slow = backtest(config, *FAST, "--path", "per-bar")
    assert slow["path"] == "per-bar"
    assert slow["trades"] == fast["trades"] and slow["metrics"] == fast["metrics"]


def test_sizing_and_risk_plugins_are_asked_as_in_live(config):
    result = backtest(config, "--strategy", "sma_rsi", "--from", "2026-01-02")
    assert result["settings"]["sizing"] == "plugins" and result["settings"]["risk"] == "plugins"
    assert result["decisions"] > 0
    assert result["data"][0]["from"] == "2026-01-02"
    if result["vetoes"]:
        assert all(":" in reason for reason in result["vetoes"])  # each veto names its plugin
    # coarser candles are resampled for plugins
    assert not any("no 1h candles" in reason for reason in result["vetoes"])


def test_the_html_report_has_the_equity_curve_and_trade_markers(config, tmp_path):
    page = tmp_path / "report" / "bt.html"
    result = CliRunner().invoke(cli, ["backtest", "--config", str(config), *FAST, "--html", str(page)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "GobotTradeChart.autoMount" in html and "Equity and drawdown" in html and "<h2>Closed trades</h2>" in html
    assert html.count("if (!window.LightweightCharts)") == 1  # the library inlined once for the three charts
    assert f"HTML report: {page}" in result.output
    assert "win rate" in result.output and "max drawdown" in result.output  # the summary table


def test_gaps_are_reported_and_market_rules_come_from_markets_json(tmp_path):
    rows = ["timestamp_ms,open,high,low,close,volume"]
    price = 100.0
    for i in range(400):
        if 150 <= i < 160:
            continue  # ten missing minutes
        price *= 1.002 if (i // 40) % 2 == 0 else 0.998
        rows.append(f"{1767225600000 + i * 60000},{price},{price * 1.001},{price * 0.999},{price},1")
    data = tmp_path / "data"
    data.mkdir()
    (data / "BTC_USDT-1m.csv").write_text("\n".join(rows) + "\n")
    (data / "markets.json").write_text(json.dumps({"BTC/USDT": {"precision": {"amount": 0.5},
                                                                "limits": {"cost": {"min": 1e9}}}}))
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    result = backtest(config, *FAST, "--data", str(data / "BTC_USDT-1m.csv"), "--set", "fast=5", "--set", "slow=20")
    (series,) = result["data"]
    assert (series["timeframe"], series["gaps"], series["missing_candles"], series["candles"]) == ("1m", 1, 10, 390)
    assert series["market"] == {"amount_step": 0.5, "min_amount": 0.0, "min_notional": 1e9, "source": "markets.json"}
    assert result["trades"] == [] and list(result["vetoes"]) == ["notional below the market's minimum 1e+09"]
    text = CliRunner().invoke(cli, ["backtest", "--config", str(config), *FAST,
                                    "--data", str(data / "BTC_USDT-1m.csv")])
    assert "gaps in BTC/USDT: 1, 10 candles missing" in text.output


def test_the_lookahead_check_runs_on_request(config):
    result = CliRunner().invoke(cli, ["backtest", "--config", str(config), "--strategy", "sma_rsi",
                                      "--sizing", "all-in", "--risk", "none", "--check-lookahead"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "lookahead check: no earlier signal changed on truncated data" in result.output


def test_mistakes_are_one_line_errors_that_say_what_to_do(config, tmp_path):
    unknown = gobot("backtest", "--config", str(config), "--strategy", "nope")
    assert unknown.returncode == 2 and "no strategy 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr
    out_of_range = gobot("backtest", "--config", str(config), *FAST, "--set", "fast=999")
    assert "--set: fast = 999 is outside its range 2..100" in out_of_range.stderr
    bad = tmp_path / "BTC_USDT-5m.csv"
    bad.write_text("timestamp_ms,open,high,low,close,volume\n1,2,3,4,5,6\n2,2,3,x,5,6\n")
    broken = gobot("backtest", "--config", str(config), *FAST, "--data", str(bad))
    assert broken.returncode == 2 and str(bad) in broken.stderr and "could not convert" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1


def test_help_lists_backtest_and_optimize_without_importing_them():
    result = gobot("--help")
    assert "backtest" in result.stdout and "optimize" in result.stdout
    probe = subprocess.run([sys.executable, "-c",
                            "import sys\nfrom gobot.cli import cli\n"
                            "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
                            "print(sorted(m for m in ('numpy', 'optuna', 'gobot.research.backtest.engine') "
                            "if m in sys.modules))"],
                           capture_output=True, text=True, env={**os.environ})
    assert probe.stdout.strip().splitlines()[-1] == "[]"


def test_a_parsed_csv_is_kept_as_a_binary_copy_until_the_file_changes(tmp_path):
    from gobot.research.market_data import read_csv

    path = tmp_path / "BTC_USDT-1m.csv"
    path.write_text("timestamp_ms,open,high,low,close,volume\n60000,1,2,0.5,1.5,10\n120000,1.5,2,1,1.8,11\n")
    cache = tmp_path / "cache"
    first = read_csv(path, cache)
    (kept,) = list(cache.glob("*.npy"))
    second = read_csv(path, cache)
    assert (second["close"].tolist() == first["close"].tolist() == [1.5, 1.8]
            and second["timestamp"].tolist() == [60000, 120000])
    path.write_text("timestamp_ms,open,high,low,close,volume\n60000,1,2,0.5,1.7,10\n")
    changed = read_csv(path, cache)
    assert changed["close"].tolist() == [1.7]
    assert [p.name for p in cache.glob("*.npy")] != [kept.name] and len(list(cache.glob("*.npy"))) == 1


def test_veto_reasons_print_their_numbers(config):
    """Reasons that differ only in their values are one line — with the values, never "#:##:#"."""
    config.write_text(config.read_text() + '[plugins.risk_limits]\nlow_liquidity_hours = ["00:00-06:00"]\n',
                      encoding="utf-8")
    result = CliRunner().invoke(cli, ["backtest", "--config", str(config), "-p", "sma_cross", "-s", "sma_cross",
                                      "--sizing", "5"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line = " ".join(result.output[result.output.index("entries not taken"):].split())
    assert "#" not in line
    assert re.search(r"\d+x risk_limits: low-liquidity hours 00:00-06:00 UTC "
                     r"\(now \d\d:\d\d(–\d\d:\d\d)?\)", line), line


def test_veto_reasons_are_grouped_with_their_ranges():
    from gobot.research.backtest.report import group_reasons

    vetoes = {"risk_limits: low-liquidity hours 00:00-06:00 UTC (now 03:15)": 3,
              "risk_limits: low-liquidity hours 00:00-06:00 UTC (now 05:45)": 2,
              "risk_limits: confidence 0.71 below min_confidence_threshold 0.75": 4,
              "risk_limits: confidence 0.62 below min_confidence_threshold 0.75": 1,
              "risk_limits: high volatility on BTC/USDT: ATR% 0.2 is 12.5x its mean": 1,
              "risk_limits: high volatility on BTC/USDT: ATR% 0.123 is 2.1x its mean": 1,
              "notional below the market's minimum 1e+09": 7}
    assert group_reasons(vetoes) == [
        ("notional below the market's minimum 1e+09", 7),
        ("risk_limits: low-liquidity hours 00:00-06:00 UTC (now 03:15–05:45)", 5),
        ("risk_limits: confidence 0.62–0.71 below min_confidence_threshold 0.75", 5),
        ("risk_limits: high volatility on BTC/USDT: ATR% 0.123–0.2 is 2.1x–12.5x its mean", 2),
    ]


def test_a_run_without_sizing_or_risk_plugins_loads_only_its_strategys_plugin(config, installed_plugin):
    """--risk none and a fixed sizing ask no plugin: an enabled plugin that is neither the strategy's nor
    configured is not even imported (a first run on a year of 1m is ~10 % faster); asked for, it is."""
    installed_plugin("loud", "raise RuntimeError('loud was imported')\n")
    with_loud = config.read_text(encoding="utf-8").replace("[backtest]", '[plugins]\nenable = ["loud"]\n[backtest]')
    config.write_text(with_loud, encoding="utf-8")
    quiet = backtest(config, *FAST)
    assert quiet["metrics"]["trades"] > 0
    asked = CliRunner().invoke(cli, ["backtest", "--config", str(config), "-p", "sma_cross", "-s", "sma_cross",
                                     "--sizing", "all-in", "--risk", "plugins"])
    assert asked.exit_code != 0 and "plugin 'loud'" in str(asked.exception)
    assert "loud was imported" in str(asked.exception)


def test_research_processes_keep_freed_memory_on_glibc():
    """`gobot backtest` and `gobot optimize` ask glibc's malloc to keep freed buffers (fewer page faults)."""
    import platform

    from gobot.research.heap import keep_freed_memory

    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is expected


END_PROBE = """
import atexit, sys
import gobot.research.market_data as market_data
market_data.BACKGROUND_CACHE_BYTES = 0  # the candle cache is written by a thread, as for a year of 1m
class Teardown:
    def __del__(self):
        print("torn down", flush=True)
kept = Teardown()  # a module global: collected only by the interpreter's tear-down
atexit.register(lambda: print("exit handlers ran", flush=True))
sys.argv = ["gobot", *sys.argv[1:]]
from gobot.cli import run
run()
"""


def test_the_gobot_program_ends_a_research_command_without_tearing_the_interpreter_down(config, tmp_path):
    """After a successful backtest the process ends at once: the output is whole, the exit handlers ran and
    the candle cache's writer thread finished, but no module global was collected one by one. A failed
    command (and ``main`` called inside another program) exits the ordinary way."""
    data = tmp_path / "data"
    data.mkdir()
    rows = "\n".join(f"{60_000 * (i + 1)},{100 + i % 7},{101 + i % 7},{99 + i % 7},{100 + i % 5},1" for i in range(400))
    (data / "BTC_USDT-1m.csv").write_text(f"timestamp_ms,open,high,low,close,volume\n{rows}\n")
    done = subprocess.run([sys.executable, "-c", END_PROBE, "backtest", "--config", str(config), "--data",
                           str(data / "BTC_USDT-1m.csv"), *FAST, "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    document, _, rest = done.stdout.rpartition("}")
    assert json.loads(document + "}")["metrics"]["trades"] >= 0
    assert rest.split() == ["exit", "handlers", "ran"] and "torn down" not in done.stdout
    assert len(list((tmp_path / "state").rglob("*.npy"))) == 1  # the writer thread was waited for
    failed = subprocess.run([sys.executable, "-c", END_PROBE, "backtest", "--config", str(config), "--data",
                             str(tmp_path / "missing.csv"), *FAST], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and "torn down" in failed.stdout and "exit handlers ran" in failed.stdout
