"""Shared by the chart and vision tests: one Chromium per test module (on its own event loop), a
chart plugin that serves charts rendered once by it, and a recorder of signals and alerts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from gobot_hookspecs import ChartImage, hookimpl
from gobot_plugins.charts import ChartsConfig, caption, chart_data
from gobot_plugins.charts.renderer import ChartRenderer
from gobot_plugins.replay.data import find_candles

CHROMIUM = "/usr/bin/chromium"
BUNDLED_DATA = Path(__file__).resolve().parent.parent / "data"

# Skipped on a machine without Chromium, except under CI=true: there `make test` installed it, so
# its absence is a failure, not a reason to skip.
requires_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
    reason=f"{CHROMIUM} missing: `make test` installs Debian's chromium package",
)


class BrowserSession:
    """A started ChartRenderer and the event loop it lives on (playwright objects are bound to one loop)."""

    def __init__(self, width: int = 1024, height: int = 640):
        self.loop = asyncio.new_event_loop()
        self.renderer = ChartRenderer(CHROMIUM, width, height)
        self.run(self.renderer.start())

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.run(self.renderer.close())
        self.loop.close()

    def render(self, symbol: str, timeframe: str, limit: int = 120, indicators=None, theme: str = "dark",
               data_dir: Path = BUNDLED_DATA) -> ChartImage:
        specs = ChartsConfig().indicators if indicators is None else indicators
        candles = find_candles(data_dir, symbol, timeframe).tail(limit + 150)
        png, drawn = self.run(self.renderer.render(chart_data(symbol, timeframe, candles, specs, limit, theme)))
        return ChartImage(symbol=symbol, timeframe=timeframe, png=png, width=self.renderer.width,
                          height=self.renderer.height, candles=drawn, origin="render", caption=caption(specs))


class FixedCharts:
    """A chart plugin for vision tests: the same real PNGs every cycle, per timeframe; None for others."""

    def __init__(self, images: dict[str, ChartImage]):
        self.images = images

    @hookimpl
    def gobot_render_chart(self, symbol, timeframe):
        image = self.images.get(timeframe)
        return None if image is None else image.model_copy(update={"symbol": symbol})


class Recorder:
    """Keeps every cycle's signals (by source), the alerts and the orders."""

    def __init__(self):
        self.signals = []
        self.alerts = []
        self.orders = []
        self.intents = []

    @hookimpl
    def gobot_on_cycle_end(self, report):
        self.signals.append(list(report.signals))

    @hookimpl
    def gobot_send_alert(self, alert):
        self.alerts.append(alert)

    @hookimpl
    def gobot_on_order(self, order):
        self.orders.append(order)

    @hookimpl
    def gobot_risk_check(self, intent):
        self.intents.append(intent)  # abstains: only watches what reached the risk checks

    def of(self, source: str) -> list:
        return [signal for cycle in self.signals for signal in cycle if signal.source == source]

    def alerts_of(self, kind: str) -> list:
        return [alert for alert in self.alerts if alert.kind == kind]
