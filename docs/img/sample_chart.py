"""Makes docs/img/vision-sample-chart.png: the chart the vision plugin shows a model, rendered by the
``charts`` plugin's own code from the bundled synthetic data (BTC/USDT, 15m, 120 candles, defaults).

    .venv/bin/python docs/img/sample_chart.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gobot_plugins.charts import ChartsConfig, chart_data
from gobot_plugins.charts.renderer import ChartRenderer
from gobot_plugins.replay.data import find_candles

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = HERE / "vision-sample-chart.png"


async def main() -> None:
    config = ChartsConfig()
    candles = find_candles(ROOT / "data", "BTC/USDT", "15m").tail(120 + 150)
    renderer = ChartRenderer(config.executable_path, config.width, config.height)
    await renderer.start()
    try:
        png, drawn = await renderer.render(chart_data("BTC/USDT", "15m", candles, config.indicators, 120, config.theme))
    finally:
        await renderer.close()
    OUT.write_bytes(png)
    print(f"wrote {OUT.relative_to(ROOT)}: {drawn} candles, {len(png) // 1024} KiB")


if __name__ == "__main__":
    asyncio.run(main())
