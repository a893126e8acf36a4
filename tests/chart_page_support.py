"""Opening a chart page (``gobot backtest --html``, ``gobot plot``) in headless Chromium as a reader would:
every request the page makes is checked, and one that would leave the file or 127.0.0.1 fails the test."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class ChartPage:
    """One page in one browser (a context manager): ``page`` is playwright's sync page, ``left`` the URLs
    that would have left the machine (each refused)."""

    def __init__(self, path: Path, width: int = 1400, height: int = 900):
        self.path, self.size = path, {"width": width, "height": height}
        self.left: list[str] = []

    def _check(self, route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        own = parts.scheme == "file" and Path(parts.path) == self.path.resolve()
        if own or parts.scheme in ("data", "about", "blob") or parts.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.left.append(url)
            route.abort()

    def __enter__(self) -> ChartPage:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = self.browser.new_context(viewport=self.size)
        context.route("**/*", self._check)
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(self.path.resolve().as_uri(), wait_until="load")
        return self

    def __exit__(self, *exc) -> None:
        self.browser.close()
        self._playwright.stop()

    def wait_drawn(self, timeout_ms: int = 20_000) -> None:
        """Until every chart of the page is drawn (``window.gobotReady``, which the kit sets)."""
        self.page.wait_for_function("window.gobotReady === true", timeout=timeout_ms)

    def state(self, element_id: str = "tradechart") -> dict:
        return self.page.evaluate("id => window.gobotCharts[id].state()", element_id)

    def count_candles(self, from_s: int, to_s: int, element_id: str = "tradechart") -> int:
        return self.page.evaluate("([id, a, b]) => window.gobotCharts[id].countCandles(a, b)",
                                  [element_id, from_s, to_s])

    def canvases(self, element_id: str) -> int:
        return self.page.locator(f"#{element_id} canvas").count()

    def open_trade(self, trade_id: str, element_id: str = "tradechart") -> dict:
        """Click the trade's row and read its drill-down: the signal, the verdicts, the sizing, the fills."""
        row = self.page.locator(f"#{element_id} tr.gtc-trade[data-trade-id='{trade_id}']")
        row.click()
        panel = self.page.locator(f"#{element_id} .gtc-drilldown[data-trade-id='{trade_id}']")
        panel.wait_for(state="visible", timeout=10_000)
        return {
            "signal": panel.locator(".gtc-signal").inner_text(),
            "verdicts": [(v.get_attribute("data-plugin"), v.inner_text()) for v in panel.locator(".gtc-verdict").all()],
            "sizing": panel.locator(".gtc-sizing").inner_text(),
            "fills": [f.inner_text() for f in panel.locator(".gtc-fill").all()],
        }
