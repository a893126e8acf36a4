"""What vision signals cost in time: chart rendering in headless Chromium, and a replay cycle with vision on.

Prints two tables:

- rendering: the browser's start, the first chart (page set-up), then the median and 95th
  percentile of warm renders (1024x640 candlesticks + volume + SMA 20/50, Bollinger 20, RSI 14);
- cycles: replay cycles over the bundled data (2 symbols), median cycle and ideas-phase time, for
  the default plugins (the baseline), with ``charts`` + ``vision`` asking a loopback
  OpenAI-compatible server that answers at once, and the same again answered from the cache.
  Ratios are against the baseline measured in the same run. The first cycle (browser page set-up,
  the openai import) is shown on its own.

    .venv/bin/python bench/vision.py [--cycles 12] [--renders 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


def bench_rendering(renders: int) -> list[tuple[str, float, str]]:
    from gobot_plugins.charts import ChartsConfig, chart_data
    from gobot_plugins.charts.renderer import ChartRenderer
    from gobot_plugins.replay.data import find_candles

    config = ChartsConfig()
    candles = {tf: find_candles(ROOT / "data", "BTC/USDT", tf) for tf in ("5m", "15m")}

    async def run() -> list[tuple[str, float, str]]:
        renderer = ChartRenderer(CHROMIUM, config.width, config.height)
        started = time.perf_counter()
        await renderer.start()
        start_s = time.perf_counter() - started
        times, sizes = [], []
        first = None
        for i in range(renders + 1):
            tf = ("5m", "15m")[i % 2]
            window = candles[tf].tail(200 + i)  # a different picture every time
            began = time.perf_counter()
            png, _drawn = await renderer.render(chart_data("BTC/USDT", tf, window, config.indicators, 120,
                                                           config.theme))
            took = time.perf_counter() - began
            if first is None:
                first = took
            else:
                times.append(took)
                sizes.append(len(png))
        await renderer.close()
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        size = f"{statistics.median(sizes) / 1024:.0f} KiB PNG"
        return [
            ("browser start (Chromium via playwright)", start_s * 1000, ""),
            ("first chart (page set-up + render)", first * 1000, ""),
            (f"warm chart, median of {len(times)}", statistics.median(times) * 1000, size),
            ("warm chart, 95th percentile", p95 * 1000, ""),
        ]

    return asyncio.run(run())


def run_replay(state_dir: Path, cycles: int, config: dict, fresh: bool) -> list:
    from gobot.host.plugin_manager import build_plugin_set
    from gobot.run.bot import Bot
    from gobot.run.runner import Runner
    from gobot.testing import replay_settings

    settings = replay_settings(state_dir, ROOT / "data", {**config,
                                                          "plugins": {**config.get("plugins", {}),
                                                                      "console": {"cycle_lines": False}}})
    settings.orchestrator.max_iterations = cycles
    plugin_set = build_plugin_set(enable=settings.plugins.enable, disable=settings.plugins.disable)
    bot = Bot(settings, plugin_set, fresh=fresh)
    asyncio.run(Runner(bot, cycles).run())
    return list(bot.state.cycles)


def bench_cycles(cycles: int) -> list[tuple[str, float, float, float]]:
    from gobot.testing.loopback_openai import LoopbackOpenAI, Reply

    answer = {
        "action": "HOLD", "confidence": 0.5, "entry": None, "stop_loss": None, "take_profit": None,
        "timeframes": [{"timeframe": "5m", "action": "HOLD"}, {"timeframe": "15m", "action": "HOLD"}],
        "rationale": "range",
    }
    rows = []
    with LoopbackOpenAI(default=Reply.answer(answer)) as server, tempfile.TemporaryDirectory() as tmp:
        vision = {"plugins": {"enable": ["charts", "vision"], "vision": {"base_url": server.base_url}}}
        cases = [
            ("baseline: default plugins", Path(tmp) / "baseline", {}, False),
            ("charts + vision (loopback model)", Path(tmp) / "vision", vision, False),
            ("charts + vision, answers cached", Path(tmp) / "vision", vision, True),
        ]
        for name, state_dir, config, fresh in cases:
            rows_of_run = run_replay(state_dir, cycles, config, fresh)
            later = [row.duration_ms for row in rows_of_run[1:]]
            ideas = [row.phase_ms.get("ideas", 0.0) for row in rows_of_run[1:]]
            rows.append((name, rows_of_run[0].duration_ms, statistics.median(later), statistics.median(ideas)))
        requests = len(server.received)
    print(f"(the loopback model answered {requests} requests; 2 symbols x {cycles} cycles, then none: cached)\n")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=12)
    parser.add_argument("--renders", type=int, default=30)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")

    print(f"{'chart rendering':<44} {'ms':>9}")
    for name, ms, note in bench_rendering(args.renders):
        print(f"{name:<44} {ms:9.1f}  {note}")
    print()
    rows = bench_cycles(args.cycles)
    baseline = rows[0][2]
    print(f"{'replay cycle':<36} {'1st cycle ms':>12} {'median ms':>10} {'x baseline':>11} {'ideas ms':>9}")
    for name, first, median, ideas in rows:
        print(f"{name:<36} {first:12.1f} {median:10.1f} {median / baseline:11.1f} {ideas:9.1f}")


if __name__ == "__main__":
    main()
