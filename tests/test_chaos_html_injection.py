"""Hostile strings rendered in Debian's Chromium: a plugin's strategy name, signal rationales,
learnings and risk reasons full of markup reach the live dashboard and the archiver's HTML report
(`gobot report --html`) as text. No element they describe is created, no script they carry runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil

import pytest
from click.testing import CliRunner

from chaos_support import record_figures
from gobot_hookspecs import Action, Learning, RiskVerdict, Signal, hookimpl
from server_support import TOKEN, Pacer, served, until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: Each part would run a script or create an element if it were inserted as HTML.
PAYLOAD = ("<img src=x onerror=\"window.pwned='img'\"><script>window.pwned='script'</script>"
           "\"'><svg onload=\"window.pwned='svg'\"></svg><b id=injected>&amp;")
CYCLES = 40

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None and os.environ.get("CI") != "true",
                       reason="Debian's chromium is not installed (make test installs it)"),
]


class Hostile:
    """A third-party plugin whose every free-text field is markup: strategy, rationale, learning, risk reason."""

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        if ctx.iteration == 1:
            ctx.add_learning(Learning(text=PAYLOAD, source=PAYLOAD, evidence={"why": PAYLOAD}))
        step = ctx.iteration % 6
        action = Action.LONG if step == 1 else Action.SHORT if step == 4 else Action.HOLD
        return [Signal(symbol=s.symbol, action=action, confidence=0.99, rationale=PAYLOAD, strategy=PAYLOAD)
                for s in snapshots]

    @hookimpl
    def gobot_risk_check(self, ctx, intent):
        return RiskVerdict(approved=True, reason=PAYLOAD)


async def injected(page) -> dict:
    """What the payload managed to do on ``page``: scripts run, elements created."""
    return await page.evaluate("""() => ({
        pwned: window.pwned || null, dialogs: window.dialogs || 0,
        elements: document.querySelectorAll("img[src='x'], #injected, svg[onload]").length,
    })""")


async def open_page(browser, url: str):
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    await page.add_init_script("window.alert = window.confirm = window.prompt = "
                               "() => { window.dialogs = (window.dialogs || 0) + 1 }")
    await page.goto(url)
    return page


def test_hostile_strings_stay_text_on_the_dashboard_and_in_the_html_report(replay_bot, tmp_path, monkeypatch):
    from playwright.async_api import async_playwright, expect

    database = tmp_path / "state" / "archive.db"
    bot = replay_bot(plugins=[("pacer", Pacer(free=CYCLES)), ("hostile", Hostile())], enable=["archiver"],
                     disable=["sma_rsi"], config={"plugins": {"archiver": {"min_pattern_trades": 2}}})

    async def scenario() -> list[dict]:
        async with served(bot) as (server, runner, task, client), async_playwright() as playwright:
            await until(lambda: bot.counters.cycles == CYCLES + 1, what=f"{CYCLES + 1} cycles")
            assert bot.state.trades and all(t.strategy == PAYLOAD for t in bot.state.trades)
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await open_page(browser, server.url + "#token=" + TOKEN)
                trades = page.locator("#trades tbody tr")
                await expect(trades).to_have_count(min(len(bot.state.trades), 50), timeout=10_000)
                await expect(trades.first).to_contain_text(PAYLOAD)  # shown, as text
                dashboard = await injected(page)
            finally:
                await browser.close()
            runner.request_stop("test over")
            for permits in [p for _, p in bot.plugin_set.pm.list_name_plugin() if isinstance(p, Pacer)]:
                permits.allow(5)
            await asyncio.wait_for(asyncio.shield(task), 20)

        config = tmp_path / "config.toml"
        config.write_text(f'state_dir = "state"\n[plugins.archiver]\ndatabase_url = "sqlite:///{database}"\n'
                          'min_pattern_trades = 2\n')
        monkeypatch.setenv("GOBOT_CONFIG", str(config))
        from gobot.cli import cli

        target = tmp_path / "report.html"
        result = CliRunner().invoke(cli, ["report", "--html", str(target)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await open_page(browser, target.as_uri())
                text = await page.locator("body").inner_text()
                report = await injected(page) | {"shown": text.count(PAYLOAD),
                                                 "raw": PAYLOAD in target.read_text(encoding="utf-8")}
            finally:
                await browser.close()
        return [dashboard, report]

    dashboard, report = asyncio.run(scenario())
    print("dashboard:", json.dumps(dashboard), "report:", json.dumps(report))
    record_figures("hostile strings (dashboard, HTML report in Chromium)", pages=2, scripts_run=0, elements_injected=0)
    assert dashboard == {"pwned": None, "dialogs": 0, "elements": 0}
    assert {k: report[k] for k in ("pwned", "dialogs", "elements")} == {"pwned": None, "dialogs": 0, "elements": 0}
    assert report["shown"] >= 2  # the strategy (by-strategy table) and the learning, as text
    assert not report["raw"]  # only its escaped form is in the file
