"""Makes the screenshots in docs/img (``make docs-images``; the tests never write them):

- ``dashboard.png``: the live dashboard during a short paper replay of the bundled synthetic data (the
  repository's config.toml, as ``make demo`` runs it), its chart with a trade's story open, in Debian's
  Chromium;
- ``backtest-chart.png``: ``gobot plot --backtest --png`` of two days of BTC/USDT from the bundled data.

    .venv/bin/python docs/img/docs_images.py

Every request the dashboard's page makes is checked: one that would leave 127.0.0.1 stops the script.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from gobot_hookspecs import hookimpl

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DASHBOARD = HERE / "dashboard.png"
BACKTEST = HERE / "backtest-chart.png"
CHROMIUM = "/usr/bin/chromium"
#: Cycles of the replay before the screenshot (15 simulated minutes each): a day and a half of trading.
CYCLES = 140
VIEWPORT = {"width": 1440, "height": 900}


class Hold:
    """Lets the replay run CYCLES cycles, then holds it inside the last one's end (the bot stays RUNNING)."""

    def __init__(self, cycles: int):
        self.left = cycles
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    @hookimpl
    async def gobot_on_cycle_end(self):
        self.left -= 1
        if self.left <= 0:
            self.reached.set()
            await self.release.wait()


def replay_settings(state_dir: Path):
    """The repository's config.toml (the demo's), with its state in ``state_dir`` and no end of its own."""
    from gobot.config import read_config, settings_from_dict

    data = read_config(ROOT / "config.toml")
    data["state_dir"] = str(state_dir)
    data.setdefault("orchestrator", {})["max_iterations"] = 0
    data.setdefault("plugins", {}).setdefault("replay", {})["data_dir"] = str(ROOT / "data")
    return settings_from_dict(data, "config.toml", base_dir=str(ROOT))


async def loopback_only(route) -> None:
    parts = urlsplit(route.request.url)
    if parts.scheme in ("data", "about", "blob") or parts.hostname in ("127.0.0.1", "localhost", "::1"):
        await route.continue_()
    else:
        await route.abort()
        raise SystemExit(f"the dashboard asked for {route.request.url}: only 127.0.0.1 may be asked")


async def screenshot(url: str, trade_id: str) -> None:
    """The dashboard at ``url`` with ``trade_id``'s story open on the chart, its top part down to the equity curve."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = await browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            await context.route("**/*", loopback_only)
            page = await context.new_page()
            await page.goto(url)
            await page.wait_for_function("() => chartView.controller && chartView.controller.state().barsDrawn > 0")
            await page.locator(f"#trades tbody tr[data-trade-id='{trade_id}']").click()
            panel = page.locator(f"#chart .gtc-drilldown[data-trade-id='{trade_id}']")
            await panel.wait_for(state="visible")
            await page.locator("#chart .gtc-fill").first.wait_for()  # the archive's story, not only the ledger's
            await page.locator("#chart .gtc-fit").click()  # the whole day and a half, in 15m candles
            await page.evaluate("chartView.controller.setTimeframe('15m')")
            await page.evaluate("window.scrollTo(0, 0)")
            await page.mouse.move(0, 0)  # no crosshair
            bottom = await page.evaluate("document.getElementById('equity-chart').getBoundingClientRect().bottom")
            await page.screenshot(path=str(DASHBOARD), full_page=True,
                                  clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": bottom + 16})
        finally:
            await browser.close()


async def dashboard() -> None:
    from gobot.host.plugin_manager import build_plugin_set
    from gobot.ops.chart import story_id
    from gobot.ops.server import DashboardServer
    from gobot.run.bot import Bot
    from gobot.run.runner import Runner
    hold = Hold(CYCLES)
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as folder:
        settings = replay_settings(Path(folder) / "state")
        plugins = build_plugin_set(enable=settings.plugins.enable, disable=settings.plugins.disable,
                                   extra_plugins=[("hold", hold)])
        bot = Bot(settings, plugins, fresh=True)
        runner = Runner(bot, 0)
        server = DashboardServer(bot, runner, host="127.0.0.1", port=0, token=token)
        url = await server.start()
        task = asyncio.create_task(runner.run())
        try:
            await asyncio.wait_for(hold.reached.wait(), 120)
            trade = bot.state.trades[-1]
            await screenshot(f"{url}#token={token}", story_id(trade.symbol, trade.client_order_id, trade.opened_at))
        finally:
            runner.request_stop("screenshot taken")
            hold.release.set()
            await asyncio.wait_for(task, 30)
            await server.stop()
    print(f"wrote {DASHBOARD.relative_to(ROOT)}: {len(bot.state.trades)} trades in {CYCLES} cycles")


def backtest() -> None:
    """``gobot plot --backtest --png`` in a folder of its own (built-in settings, the bundled demo market)."""
    with tempfile.TemporaryDirectory() as folder:
        command = [str(Path(sys.executable).with_name("gobot")), "plot", "--symbol", "BTC/USDT", "--backtest",
                   "--from", "2026-01-04", "--to", "2026-01-06", "-o", str(Path(folder) / "backtest.html"),
                   "--png", str(BACKTEST), "--png-size", "1600x900"]
        subprocess.run(command, cwd=folder, check=True)
    print(f"wrote {BACKTEST.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(dashboard())
    backtest()
