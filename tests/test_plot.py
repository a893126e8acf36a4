"""`gobot plot` as a user runs it: the real command (a subprocess), real candle files and config, the
page opened in headless Chromium (the chart drawn, one marker per entry and exit, a clicked trade's
story), `--png` through the charts plugin, a paper run's archive through `--run`, and one-line errors."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.chart_page_support import ChartPage

GOBOT = str(Path(sys.executable).parent / "gobot")
RISK = ("risk_limits", "circuit_breaker")  # the default risk plugins: each judges every entry


def gobot(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([GOBOT, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture
def config(tmp_path, synthetic_data_dir) -> Path:
    """Backtests and runs on the session's synthetic candles, risk plugins on but set to let trades through."""
    from gobot.testing import replay_test_risk_toml

    sections = replay_test_risk_toml()
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(f"""\
        state_dir = "{tmp_path / 'state'}"
        [backtest]
        data_dir = "{synthetic_data_dir}"
        [plugins.replay]
        data_dir = "{synthetic_data_dir}"
        [plugins.archiver]
        database_url = "sqlite:///{tmp_path / 'archive.db'}"
        """) + sections, encoding="utf-8")
    return path


def backtest_json(config: Path, *args: str) -> dict:
    done = gobot("backtest", "--config", str(config), "--json", *args, cwd=config.parent)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_backtest_draws_every_trade_and_tells_a_clicked_trades_story(config):
    args = ("--strategy", "sma_rsi", "--data", "BTC/USDT")
    expected = backtest_json(config, *args)  # the same backtest, as `gobot backtest` runs it
    closed, still_open = len(expected["trades"]), len(expected["open_positions"])
    assert closed > 3
    page = config.parent / "out" / "bt.html"
    done = gobot("plot", "--config", str(config), "--symbol", "BTC/USDT", "--backtest", "-s", "sma_rsi",
                 "-o", str(page), cwd=config.parent)
    assert done.returncode == 0, done.stderr
    assert f"HTML chart: {page}" in done.stdout and f"{closed + still_open} trades" in done.stdout
    with ChartPage(page) as chart:
        chart.wait_drawn()
        state = chart.state()
        assert chart.canvases("tradechart") > 0 and state["symbol"] == "BTC/USDT" and state["barsDrawn"] > 0
        assert state["markers"] == 2 * closed + still_open  # one per entry, one per exit
        rows = chart.page.locator("#tradechart tr.gtc-trade")
        assert rows.count() == closed + still_open
        story = chart.open_trade("bt-1")
        assert {plugin for plugin, _ in story["verdicts"]} == set(RISK)
        assert "LONG" in story["signal"] or "SHORT" in story["signal"]
        assert "SMA9" in story["signal"]  # the strategy's rationale, "SMA9 below SMA26 (gap ...), RSI14 ..."
        assert "sizer plugin" in story["sizing"]
        first = expected["trades"][0]
        entry, exit_ = story["fills"]  # with their prices as `gobot backtest --json` has them
        assert f"{first['entry_price']:,.2f}" in entry and "open" in entry
        assert f"{first['exit_price']:,.2f}" in exit_ and first["exit_reason"] in exit_
        assert not chart.errors and not chart.left


def test_plot_candles_only_draws_the_candles_of_the_range_and_writes_a_png(config, synthetic_data_dir):
    from gobot.research.market_data import parse_time, read_csv

    page, picture = config.parent / "candles.html", config.parent / "candles.png"
    done = gobot("plot", "--config", str(config), "--symbol", "ETH/USDT", "--from", "2026-01-02", "--to",
                 "2026-01-03", "--timeframe", "15m", "-o", str(page), "--png", str(picture), "--png-size", "900x600",
                 cwd=config.parent)
    assert done.returncode == 0, done.stderr
    assert png_size(picture.read_bytes()) == (900, 600) and picture.stat().st_size > 10_000
    times = read_csv(synthetic_data_dir / "ETH_USDT-5m.csv")["timestamp"]
    start, end = parse_time("2026-01-02", "from"), parse_time("2026-01-03", "to")
    expected = len({int(t) // 900_000 for t in times if start <= t < end})  # 15m buckets of the 5m file
    with ChartPage(page) as chart:
        chart.wait_drawn()
        state = chart.state()
        assert state["timeframe"] in ("15m", "auto") and state["markers"] == 0
        drawn = chart.count_candles(start // 1000, end // 1000 - 1)
        assert drawn == expected == 96
        assert not chart.errors and not chart.left


@pytest.mark.parametrize("args,said", [
    (("--symbol", "XRP/USDT"), "no 5m candles for XRP/USDT"),
    (("--symbol", "XRP/USDT", "--backtest", "-s", "sma_rsi"), "no 5m candles for XRP/USDT"),
    (("--symbol", "BTC/USDT", "--backtest", "-s", "sma_rsi", "--from", "2020-01-01", "--to", "2020-02-01"),
     "no BTC/USDT candles between"),
    (("--symbol", "BTC/USDT", "--from", "2020-01-01", "--to", "2020-02-01"), "no BTC/USDT candles between"),
    (("--symbol", "BTC/USDT", "--from", "2026-01-03", "--to", "2026-01-02"), "is not after --from"),
    (("--symbol", "BTC/USDT", "--run", "--disable", "archiver"), "no archive answered"),
    (("--symbol", "BTC/USDT", "--run", "r-no-such-run"), "no archive holds run r-no-such-run"),
    (("--symbol", "BTC/USDT", "--run", "--backtest"), "--backtest or --run, not both"),
])
def test_what_cannot_be_plotted_is_one_line_and_exit_status_2(config, args, said):
    done = gobot("plot", "--config", str(config), *args, "-o", str(config.parent / "x.html"), cwd=config.parent)
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (config.parent / "x.html").exists()


def test_help_explains_with_examples(config):
    done = gobot("plot", "--help", cwd=config.parent)
    assert done.returncode == 0
    assert "Examples:" in done.stdout and "gobot plot --symbol BTC/USDT --backtest" in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 100
    listing = gobot("--help", cwd=config.parent)
    assert "plot " in listing.stdout


def test_plot_run_shows_a_paper_runs_archived_trades(config):
    """The last: it needs the archiver's ``gobot_trade_stories`` (helper C's) and a real paper run."""
    run = gobot("start", "--config", str(config), "--max-iterations", "200", "--quiet", cwd=config.parent)
    assert run.returncode == 0, run.stderr
    page = config.parent / "run.html"
    done = gobot("plot", "--config", str(config), "--symbol", "BTC/USDT", "--symbol", "ETH/USDT", "--run",
                 "-o", str(page), cwd=config.parent)
    assert done.returncode == 0, done.stderr
    status = json.loads(gobot("status", "--config", str(config), "--json", cwd=config.parent).stdout)
    closed, still_open = status["metrics"]["closed_trades"], len(status["positions"])
    assert closed > 0 and f"{closed + still_open} trades" in done.stdout
    with ChartPage(page) as chart:
        chart.wait_drawn()
        assert chart.state()["symbols"] == ["BTC/USDT", "ETH/USDT"]
        rows = chart.page.locator("#tradechart tr.gtc-trade")
        shown = {}
        for symbol in ("BTC/USDT", "ETH/USDT"):  # the table lists the symbol on screen
            chart.page.select_option("#tradechart select.gtc-symbol", symbol)
            chart.page.wait_for_function("s => window.gobotCharts.tradechart.state().symbol === s", arg=symbol)
            shown[symbol] = (rows.count(), chart.state()["markers"])
        assert sum(count for count, _ in shown.values()) == closed + still_open
        assert sum(markers for _, markers in shown.values()) == 2 * closed + still_open
        story = chart.open_trade(rows.first.get_attribute("data-trade-id"))  # ETH/USDT's newest
        assert {plugin for plugin, _ in story["verdicts"]} == set(RISK) and story["fills"]
        assert not chart.errors and not chart.left


class _Probe(BaseHTTPRequestHandler):
    """Records every request that reaches it (none should: the renderer refuses them all)."""

    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - the http.server name
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_page_renderer_refuses_every_request_and_draws_once_the_page_is_ready(config):
    """``gobot_render_page`` of the charts plugin, without a bot: a browser launched for the page and closed."""
    import asyncio
    import io

    from PIL import Image

    from gobot.cli.common import load_config
    from gobot_plugins.charts import Charts

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    html = textwrap.dedent(f"""\
        <!doctype html><html><body style="margin:0;background:#fff">
        <img src="{url}/image.png"><link rel="stylesheet" href="{url}/style.css">
        <script>
          fetch("{url}/fetch").catch(() => null);
          setTimeout(() => {{ document.body.style.background = "rgb(255, 0, 0)";
                             requestAnimationFrame(() => {{ window.gobotReady = true; }}); }}, 200);
        </script></body></html>""")
    try:
        png = asyncio.run(Charts().gobot_render_page(config=load_config(str(config)), html=html, width=320,
                                                       height=240))
    finally:
        server.shutdown()
    assert png_size(png) == (320, 240)
    assert Image.open(io.BytesIO(png)).convert("RGB").getpixel((300, 220)) == (255, 0, 0)  # drawn when ready
    assert _Probe.hits == []
