"""How big and how fast the interactive trade chart is on a year of 1m candles with 7,000 trades (issue 20).

Builds a synthetic year of 1m candles (a random walk, 525,600 rows, numpy) and 7,000 trades with their
stories (a signal with its rationale, three risk verdicts, the sizing, an entry and an exit fill), writes
the page ``gobot_hookspecs.tradechart.page()`` makes of them, opens it in headless Chromium
(/usr/bin/chromium) and measures:

- the HTML file's size (MB);
- the time to interactive: navigation start to ``window.gobotReady`` (the page sets it once the chart,
  table and markers are drawn; read from ``window.gobotReadyAt``, the page's own clock);
- zooming to one day and back to the whole year (controller ``setRange`` then ``fit``), until drawn
  (two animation frames after each step).

Baseline, in the same process and browser: the naive page: the same library inlined, every candle and
volume bar as plain JSON handed straight to lightweight-charts' ``setData``, one marker per entry and exit
for every trade, no aggregation (zoom with ``setVisibleRange`` and back with ``fitContent``).
Goals (issue 20): HTML < 10 MB, interactive < 2 s. Each figure is the median of ``--runs`` page loads.

    .venv/bin/python bench/charts.py [--minutes 525600] [--trades 7000] [--runs 3] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

GOAL_MB = 10.0
GOAL_SECONDS = 2.0
GOAL_ZOOM_SECONDS = 0.5
CHROMIUM = "/usr/bin/chromium"
DAY = 86_400


def synthetic_candles(minutes: int, seed: int = 20):
    """A random walk of 1m candles from 2025-01-01 UTC: a namespace of numpy columns."""
    from types import SimpleNamespace

    import numpy as np

    rng = np.random.default_rng(seed)
    close = 60_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0007, minutes)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.0003, minutes)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.0003, minutes)))
    start = int(datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    return SimpleNamespace(timestamp=start + np.arange(minutes, dtype="i8") * 60_000, open=open_.round(2),
                           high=high.round(2), low=low.round(2), close=close.round(2),
                           volume=rng.gamma(2.0, 5.0, minutes).round(4))


def synthetic_stories(candles, count: int, seed: int = 7) -> list:
    """``count`` trades spread over the year, 5 minutes to 10 hours long, each with its whole story."""
    import numpy as np

    from gobot_hookspecs import Action, Side, StoryFill, StorySignal, StoryVerdict, TradeStory

    rng = np.random.default_rng(seed)
    minutes = len(candles.close)
    entries = np.sort(rng.choice(minutes - 700, size=count, replace=False))
    lengths = rng.integers(5, 600, size=count)
    stories = []
    for number, (entry, length) in enumerate(zip(entries.tolist(), lengths.tolist())):
        exit_ = entry + length
        long = bool(rng.random() < 0.6)
        when = [datetime.fromtimestamp(int(candles.timestamp[i]) / 1000, timezone.utc) for i in (entry, exit_)]
        price_in, price_out = float(candles.close[entry]), float(candles.close[exit_])
        amount = round(1000 / price_in, 6)
        pnl = (price_out - price_in) * amount * (1 if long else -1) - 2.0
        side_in, side_out = (Side.BUY, Side.SELL) if long else (Side.SELL, Side.BUY)
        stories.append(TradeStory(
            id=str(number + 1), symbol="BTC/USDT", direction=Action.LONG if long else Action.SHORT, amount=amount,
            entry_time=when[0], entry_price=price_in, exit_time=when[1], exit_price=price_out,
            exit_reason="take_profit" if pnl > 0 else "stop_loss", stop_loss=round(price_in * 0.99, 2),
            take_profit=round(price_in * 1.02, 2), pnl=round(pnl, 4), fees=2.0, currency="USDT", strategy="sma_rsi",
            strategy_version=3,
            signal=StorySignal(source="sma_rsi", action=Action.LONG if long else Action.SHORT, confidence=0.62,
                               rationale="SMA 20 crossed SMA 50 with RSI 14 at 41: momentum turning", time=when[0],
                               timeframe="1m"),
            verdicts=[StoryVerdict(plugin="risk_limits", approved=True, reason="exposure 12% of 50% allowed"),
                      StoryVerdict(plugin="circuit_breaker", approved=True, reason="CLOSED"),
                      StoryVerdict(plugin="max_spread", approved=True, reason="spread 0.02% <= 0.10%")],
            sizing="fixed_fraction: 10% of equity at 1% risk",
            fills=[StoryFill(time=when[0], side=side_in, purpose="open", price=price_in, amount=amount, fee=1.0),
                   StoryFill(time=when[1], side=side_out, purpose="close", price=price_out, amount=amount, fee=1.0,
                             reason="take_profit" if pnl > 0 else "stop_loss")],
        ))
    return stories


def kit_page(candles, stories) -> str:
    from gobot_hookspecs.tradechart import chart_payload, chart_series, page

    series = chart_series("BTC/USDT", "1m", candles, indicators=("sma:20", "sma:50", "rsi:14"))
    payload = chart_payload([series], stories, currency="USDT", title="A year of 1m candles")
    return page(payload, title="bench: a year of 1m candles")


def naive_page(candles, stories) -> str:
    """The baseline: every candle as plain JSON straight into setData, every marker, no aggregation."""
    from gobot_hookspecs.tradechart import asset

    seconds = (candles.timestamp // 1000).tolist()
    bars = [{"time": t, "open": o, "high": h, "low": low, "close": c} for t, o, h, low, c in
            zip(seconds, candles.open.tolist(), candles.high.tolist(), candles.low.tolist(), candles.close.tolist())]
    volume = [{"time": t, "value": v} for t, v in zip(seconds, candles.volume.tolist())]
    markers = sorted(
        [{"time": int(s.entry_time.timestamp()), "position": "belowBar", "shape": "arrowUp", "color": "#4c9be8"}
         for s in stories]
        + [{"time": int(s.exit_time.timestamp()), "position": "aboveBar", "shape": "circle", "color": "#3fb97b"}
           for s in stories], key=lambda m: m["time"])
    trades = [s.model_dump(mode="json") for s in stories]
    data = json.dumps({"bars": bars, "volume": volume, "markers": markers, "trades": trades}, separators=(",", ":"))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>naive</title></head><body>
<div id="chart" style="height:560px"></div>
<script>{asset("lightweight-charts.js").decode()}</script>
<script>const DATA = {data};</script>
<script>
const LW = LightweightCharts, chart = LW.createChart(document.getElementById("chart"), {{autoSize: true}});
const candles = chart.addSeries(LW.CandlestickSeries), volume = chart.addSeries(LW.HistogramSeries,
  {{priceScaleId: "volume"}});
candles.setData(DATA.bars); volume.setData(DATA.volume); LW.createSeriesMarkers(candles, DATA.markers);
chart.timeScale().fitContent();
window.benchZoom = (from, to) => chart.timeScale().setVisibleRange({{from, to}});
window.benchFit = () => chart.timeScale().fitContent();
requestAnimationFrame(() => requestAnimationFrame(() => {{
  window.gobotReadyAt = performance.now(); window.gobotReady = true; }}));
</script></body></html>"""


ZOOM = """async ([from, to]) => {
  const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const kit = window.gobotCharts && window.gobotCharts.tradechart;
  const started = performance.now();
  if (kit) await kit.setRange(from, to); else window.benchZoom(from, to);
  await frames();
  if (kit) await kit.fit(); else window.benchFit();
  await frames();
  return (performance.now() - started) / 1000;
}"""


def measure(browser, path: Path, day: tuple[int, int]) -> dict:
    """One load of the page: seconds to interactive (page clock), seconds to zoom to a day and back."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    leaks: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith(("file:", "data:", "about:")):
            return r.continue_()
        leaks.append(url)
        return r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.goto(path.as_uri(), wait_until="commit", timeout=180_000)
    page.wait_for_function("window.gobotReady === true", timeout=180_000, polling=20)
    interactive = page.evaluate("window.gobotReadyAt") / 1000
    zoom = page.evaluate(ZOOM, list(day))
    context.close()
    if leaks:
        raise SystemExit(f"{path.name} made requests: {leaks[:3]}")
    return {"interactive": interactive, "zoom": zoom}


def run(minutes: int, trades: int, runs: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    candles = synthetic_candles(minutes)
    stories = synthetic_stories(candles, trades)
    print(f"{minutes:,} candles and {trades:,} trades made in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    middle = int(candles.timestamp[len(candles.timestamp) // 2] // 1000)
    day = (middle, middle + DAY)
    results = {}
    with tempfile.TemporaryDirectory(prefix="gobot-bench-charts-") as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        for name, build in (("kit", kit_page), ("naive", naive_page)):
            started = time.perf_counter()
            path = Path(folder) / f"{name}.html"
            path.write_text(build(candles, stories), encoding="utf-8")
            built = time.perf_counter() - started
            loads = [measure(browser, path, day) for _ in range(runs)]
            results[name] = {"mb": path.stat().st_size / 1e6, "built": built,
                             "interactive": statistics.median(r["interactive"] for r in loads),
                             "zoom": statistics.median(r["zoom"] for r in loads)}
            print(f"{name}: {results[name]}", file=sys.stderr)
        browser.close()
    return rows(results, minutes, trades)


def rows(results: dict, minutes: int, trades: int) -> list[dict]:
    kit, naive = results["kit"], results["naive"]
    what = f"{'a year of 1m' if minutes == 525_600 else f'{minutes:,} 1m candles'}, {trades:,} trades"
    baseline = "naive page (every candle as JSON into setData)"

    def row(measure, key, unit, goal, limit):
        value, base = kit[key], naive[key]
        return {"measure": f"{measure} ({what})", "value": round(value, 3), "unit": unit, "baseline": baseline,
                "baseline_value": round(base, 3), "ratio": round(base / value, 2) if value else None,
                "goal": goal, "met": value < limit}

    return [row("chart page size", "mb", "MB", f"< {GOAL_MB:g} MB", GOAL_MB),
            row("chart page interactive", "interactive", "s", f"< {GOAL_SECONDS:g} s", GOAL_SECONDS),
            row("chart zoom to a day and back", "zoom", "s", f"< {GOAL_ZOOM_SECONDS:g} s", GOAL_ZOOM_SECONDS)]


def render(table: list[dict]) -> str:
    lines = ["| measure | gobot chart | naive page | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['measure']} | {r['value']:.3g} {r['unit']} | {r['baseline_value']:.3g} {r['unit']} | "
                     f"{r['ratio']:.1f}x | {r['goal']} | {'yes' if r['met'] else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=525_600, help="1m candles (default: a year, 525,600)")
    parser.add_argument("--trades", type=int, default=7_000, help="trades (default 7,000)")
    parser.add_argument("--runs", type=int, default=3, help="page loads per page; the median is shown (default 3)")
    parser.add_argument("--quick", action="store_true", help="one load of each page, same sizes")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the table rows of `make bench` here")
    args = parser.parse_args(argv)
    table = run(args.minutes, args.trades, 1 if args.quick else args.runs)
    print(render(table))
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
