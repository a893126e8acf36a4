"""The live dashboard in Debian's Chromium, driven by playwright: it shows the replayed trades,
updates without a reload when a cycle completes, and its buttons pause and kill the bot; its chart
draws the run's candles with a marker per entry and exit, and a click on a trade opens its story.
Every request the page makes is checked: none may leave 127.0.0.1. (The screenshots in docs/img are
made by `make docs-images`, not by the tests.)"""

from __future__ import annotations

import asyncio
import os
import shutil
from urllib.parse import urlsplit

import pytest

from gobot_hookspecs import Action, RiskVerdict, Signal, hookimpl
from server_support import TOKEN, Pacer, served, until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
FREE_CYCLES = 40
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

pytestmark = [
    pytest.mark.slow,
    # `make test` installs it; under CI a missing browser fails the tests instead of skipping them.
    pytest.mark.skipif(shutil.which(CHROMIUM) is None and os.environ.get("CI") != "true",
                       reason="Debian's chromium is not installed (make test installs it)"),
]


def test_the_dashboard_shows_the_run_updates_live_and_its_buttons_control_the_bot(replay_bot, tmp_path):
    from playwright.async_api import async_playwright, expect

    pacer = Pacer(free=FREE_CYCLES)
    bot = replay_bot(plugins=[("pacer", pacer)])

    async def scenario():
        async with served(bot) as (server, runner, task, client), async_playwright() as playwright:
            await until(lambda: bot.counters.cycles == FREE_CYCLES + 1, what=f"{FREE_CYCLES + 1} cycles")
            trades = list(bot.state.trades)
            assert trades, "the replay closed no trade to show"
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1440, "height": 900})
                await page.goto(server.url + "#token=" + TOKEN)

                # The page loads and shows the replayed trades, newest first.
                await expect(page.locator("#iteration")).to_have_text(str(FREE_CYCLES + 1), timeout=10_000)
                rows = page.locator("#trades tbody tr")
                await expect(rows).to_have_count(min(len(trades), 50))
                newest = trades[-1]
                await expect(rows.first).to_contain_text(newest.symbol)
                await expect(rows.first).to_contain_text(f"{newest.pnl:+.2f}")
                await expect(rows.first).to_contain_text(newest.exit_reason)
                await expect(page.locator("#closed")).to_have_text(str(len(trades)))
                await expect(page.locator("#positions tbody tr")).to_have_count(max(1, len(bot.state.positions)))
                await expect(page.locator("#state-badge")).to_have_text("RUNNING")
                await expect(page.locator("#health-badge")).to_have_text("healthy")
                await expect(page.locator("#equity-chart .gtc-axis-label")).to_have_text("USDT")  # its y-axis' unit
                await expect(page.locator("#plugins li.enabled", has_text="paper")).to_have_count(1)
                assert "token" not in page.url  # the token left the address bar

                # A new cycle appears without a reload.
                pacer.allow(1)
                await expect(page.locator("#iteration")).to_have_text(str(FREE_CYCLES + 2), timeout=10_000)
                first_cycle = page.locator("#cycles tbody tr").first
                await expect(first_cycle.locator("td").first).to_have_text(str(FREE_CYCLES + 2))
                phases = bot.state.cycles[-1].phase_ms
                await expect(first_cycle).to_contain_text(f"{phases['validate']:.1f}")

                # The pause button pauses the bot: the next cycle opens nothing.
                await page.click("#pause")
                await expect(page.locator("#state-badge")).to_have_text("PAUSED")
                await expect(page.locator("#control-msg")).to_have_text("pause: done")
                assert bot.store.paused and bot.ctx.paused
                await expect(page.locator("#pause")).to_be_disabled()
                pacer.allow(1)
                await expect(page.locator("#iteration")).to_have_text(str(FREE_CYCLES + 3), timeout=10_000)
                assert bot.state.cycles[-1].note == "paused"
                await expect(page.locator("#cycles tbody tr").first).to_contain_text("paused")

                # Resume, then kill: the run ends at the next cycle boundary.
                await page.click("#unpause")
                await expect(page.locator("#state-badge")).to_have_text("RUNNING")
                assert not bot.store.paused
                page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
                await page.click("#kill")
                await expect(page.locator("#state-badge")).to_have_text("KILLED")
                pacer.allow(1)
                outcome = await asyncio.wait_for(asyncio.shield(task), 10)
                assert "kill switch" in outcome.reason
            finally:
                await browser.close()

    asyncio.run(scenario())


def test_a_page_without_the_token_cannot_pause_the_bot(replay_bot):
    from playwright.async_api import async_playwright, expect

    bot = replay_bot(plugins=[("pacer", Pacer(free=3))])

    async def scenario():
        async with served(bot) as (server, runner, task, client), async_playwright() as playwright:
            await until(lambda: bot.counters.cycles == 4, what="four cycles")
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                await page.goto(server.url)
                await expect(page.locator("#iteration")).to_have_text("4", timeout=10_000)
                await page.click("#pause")
                await expect(page.locator("#control-msg")).to_contain_text("pause refused: pause needs Authorization")
                assert not bot.store.paused
                await page.fill("#token", "not-the-token")
                await page.locator("#token").dispatch_event("change")
                await page.click("#pause")
                await expect(page.locator("#control-msg")).to_contain_text("pause refused")
                assert not bot.store.paused
            finally:
                await browser.close()

    asyncio.run(scenario())


class LoopbackOnly:
    """Routes every request of a browser context: one to 127.0.0.1 (or data:, about:, blob:) goes on, any
    other is refused and kept in ``left``; ``asked`` keeps every URL asked for."""

    def __init__(self):
        self.left: list[str] = []
        self.asked: list[str] = []

    async def __call__(self, route) -> None:
        url = route.request.url
        self.asked.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "about", "blob") or parts.hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            self.left.append(url)
            await route.abort()


async def chart_state(page) -> dict:
    return await page.evaluate("chartView.controller.state()")


async def drill_down(page, trade_id: str) -> dict:
    """The drill-down of ``trade_id`` once it is open: its signal, verdicts, sizing and fills as shown."""
    panel = page.locator(f"#chart .gtc-drilldown[data-trade-id='{trade_id}']")
    await panel.wait_for(state="visible", timeout=10_000)
    return {
        "rationale": await panel.locator(".gtc-rationale").inner_text(),
        "verdicts": [(await v.get_attribute("data-plugin"), await v.inner_text())
                     for v in await panel.locator(".gtc-verdict").all()],
        "sizing": await panel.locator(".gtc-sizing").inner_text(),
        "fills": await panel.locator(".gtc-fill").count(),
    }


def lone_exit(trades) -> object:
    """A closed trade whose exit shares its bar with no other entry or exit (its marker is its own to click),
    and that ended well before the newest candle."""
    times = [moment for t in trades for moment in (t.opened_at, t.closed_at)]
    return next(t for t in trades[:-2] if times.count(t.closed_at) == 1)


async def candles_and_markers(page, bot, symbol: str) -> None:
    """The symbol's candles, every one the bot has, and one marker per entry and per exit of its trades."""
    await page.wait_for_function(f"() => chartView.controller && chartView.controller.state().symbol === '{symbol}'"
                                 " && chartView.controller.state().barsDrawn > 0")
    assert await page.locator("#chart canvas").count() > 0
    state = await chart_state(page)
    assert (state["symbol"], state["timeframe"]) == (symbol, "5m")
    candles = await bot.ctx.candles(symbol, "5m", 1000)
    first, last = candles.timestamp[0] / 1000, candles.timestamp[-1] / 1000
    assert await page.evaluate(f"chartView.controller.countCandles({first}, {last})") == len(candles)
    closed = [t for t in bot.state.trades if t.symbol == symbol]
    assert closed and state["markers"] == 2 * len(closed) + (symbol in bot.state.positions)


async def marker_click(page, bot, symbol: str, stories: dict) -> None:
    """A click on a trade's exit marker opens that trade's story: its rationale, sizing, verdicts and fills."""
    trade = lone_exit([t for t in bot.state.trades if t.symbol == symbol])
    point = await page.evaluate("id => chartView.controller.markerPoint(id, 'exit')", trade.client_order_id)
    await page.mouse.click(point["x"], point["y"])
    shown = await drill_down(page, trade.client_order_id)
    story = stories[trade.client_order_id]
    assert shown["rationale"] == story["signal"]["rationale"] and shown["sizing"] == story["sizing"]
    assert [plugin for plugin, _ in shown["verdicts"]] == [v["plugin"] for v in story["verdicts"]]
    assert {plugin for plugin, _ in shown["verdicts"]} == {"risk_limits", "circuit_breaker"}
    assert all(v["reason"] in text for (_, text), v in zip(shown["verdicts"], story["verdicts"]))
    assert shown["fills"] == 2


async def table_click(page, bot, other: str, stories: dict) -> dict:
    """A row of the dashboard's trades table: the chart switches to its symbol and opens its story."""
    from playwright.async_api import expect

    trade = next(t for t in bot.state.trades if t.symbol == other)
    await page.locator(f"#trades tbody tr[data-trade-id='{trade.client_order_id}']").click()
    shown = await drill_down(page, trade.client_order_id)
    assert shown["sizing"] == stories[trade.client_order_id]["sizing"]
    await expect(page.locator("#chart-symbol")).to_have_value(other)
    state = await chart_state(page)
    assert state["symbol"] == other and state["openTrade"] == trade.client_order_id
    return state


async def next_load(page, action) -> None:
    """``action()``, then wait until the page has drawn the chart again."""
    loads = int(await page.locator("#chart").get_attribute("data-loads"))
    await action()
    await page.wait_for_function(f"() => Number(document.getElementById('chart').dataset.loads) > {loads}")


async def switches(page, bot, symbol: str) -> None:
    """The symbol selector brings the other symbol's chart; the timeframe switch aggregates its candles."""
    await next_load(page, lambda: page.select_option("#chart-symbol", symbol))
    assert (await chart_state(page))["symbol"] == symbol
    await page.select_option("#chart .gtc-timeframe", "15m")
    candles = await bot.ctx.candles(symbol, "5m", 1000)
    quarter_hours = {t - t % 900_000 for t in candles.timestamp}
    state = await chart_state(page)
    assert state["timeframe"] == "15m" and not state["auto"]
    first, last = min(quarter_hours) / 1000, max(quarter_hours) / 1000
    assert await page.evaluate(f"chartView.controller.countCandles({first}, {last})") == len(quarter_hours)


async def equity_axes(page, bot) -> None:
    """The equity curve: a y-axis in the portfolio currency, a time axis, a point a cycle."""
    from playwright.async_api import expect

    await expect(page.locator("#equity-chart .gtc-axis-label")).to_have_text("USDT")
    assert await page.locator("#equity-chart canvas").count() > 0
    equity = await page.evaluate("({points: equityChart.chart.panes()[0].getSeries()[0].data().length, "
                                 "time: equityChart.chart.timeScale().options().visible, "
                                 "unit: equityChart.state().currency})")
    assert equity == {"points": len(bot.state.cycles), "time": True, "unit": "USDT"}


def test_the_dashboard_charts_the_runs_candles_with_its_trades_and_opens_a_trades_story(replay_bot):
    """The chart: candles of the symbol drawn, one marker per entry and exit, a click on a marker and on a
    row of the trades table opens the right trade's story, a refresh keeps the zoom, the symbol and
    timeframe switch; the equity curve has its y-axis in the currency; the kit's files come from the bot
    and no request leaves 127.0.0.1."""
    from playwright.async_api import async_playwright, expect

    pacer = Pacer(free=60)
    bot = replay_bot(plugins=[("pacer", pacer)])
    routes = LoopbackOnly()

    async def scenario():
        async with served(bot) as (server, runner, task, client), async_playwright() as playwright:
            await until(lambda: bot.counters.cycles == 61, what="61 cycles")
            symbol, other = bot.settings.trading.symbols
            stories = {t["id"]: t for s in (symbol, other)
                       for t in (await client.get("/api/chart", params={"symbol": s})).json()["trades"]}
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(viewport={"width": 1440, "height": 900})
                await context.route("**/*", routes)
                page = await context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                await page.goto(server.url + "#token=" + TOKEN)
                await candles_and_markers(page, bot, symbol)
                await marker_click(page, bot, symbol, stories)
                zoomed = await table_click(page, bot, other, stories)

                # The next cycle redraws the chart in place: the zoom and the open trade stay.
                async def next_cycle():
                    pacer.allow(1)
                    await expect(page.locator("#iteration")).to_have_text("62", timeout=10_000)

                await next_load(page, next_cycle)
                after = await chart_state(page)
                kept = ("symbol", "visibleFrom", "visibleTo", "openTrade")
                assert {k: after[k] for k in kept} == {k: zoomed[k] for k in kept}

                await switches(page, bot, symbol)
                await equity_axes(page, bot)
                assert errors == []
            finally:
                await browser.close()

    asyncio.run(scenario())
    assert routes.left == []
    assert {urlsplit(url).path for url in routes.asked} >= {
        "/", "/dashboard.js", "/assets/lightweight-charts.js", "/assets/tradechart.js", "/assets/tradechart.css",
        "/api/chart"}


#: Would run a script or create an element if the page inserted it as HTML.
MARKUP = ("<img src=x onerror=\"window.pwned='img'\"><script>window.pwned='script'</script>"
          "<svg onload=\"window.pwned='svg'\"></svg><b id=injected>&amp;")


class HostileStrategy:
    """A third-party strategy and risk plugin whose every free text is markup."""

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        step = ctx.iteration % 6
        action = Action.LONG if step == 1 else Action.SHORT if step == 4 else Action.HOLD
        return [Signal(symbol=s.symbol, action=action, confidence=0.99, rationale=MARKUP, strategy=MARKUP)
                for s in snapshots]

    @hookimpl
    def gobot_risk_check(self, ctx, intent):
        return RiskVerdict(approved=True, reason=MARKUP)


def test_a_trades_story_shows_hostile_text_as_text(replay_bot):
    """The story of a trade whose strategy, rationale and risk reason are markup: shown as text, nothing runs."""
    from playwright.async_api import async_playwright

    bot = replay_bot(plugins=[("pacer", Pacer(free=30)), ("hostile", HostileStrategy())], disable=["sma_rsi"])
    routes = LoopbackOnly()

    async def scenario():
        async with served(bot) as (server, runner, task, client), async_playwright() as playwright:
            await until(lambda: bot.counters.cycles == 31, what="31 cycles")
            trade = bot.state.trades[-1]
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(viewport={"width": 1440, "height": 900})
                await context.route("**/*", routes)
                page = await context.new_page()
                await page.goto(server.url + "#token=" + TOKEN)
                await page.locator(f"#trades tbody tr[data-trade-id='{trade.client_order_id}']").click()
                shown = await drill_down(page, trade.client_order_id)
                panel = await page.locator("#chart .gtc-drilldown").inner_text()
                harm = await page.evaluate("""() => ({pwned: window.pwned || null,
                    elements: document.querySelectorAll("img[src='x'], #injected, svg[onload]").length})""")
                return shown, panel, harm
            finally:
                await browser.close()

    shown, panel, harm = asyncio.run(scenario())
    assert harm == {"pwned": None, "elements": 0}
    assert shown["rationale"] == MARKUP  # the text itself, shown as text
    assert any(plugin == "hostile" and MARKUP in text for plugin, text in shown["verdicts"])
    assert MARKUP in panel  # the strategy's name too
    assert routes.left == []
