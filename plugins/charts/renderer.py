"""``ChartRenderer``: one headless Chromium (driven by playwright) that draws charts and screenshots pages.

playwright is imported when the browser starts, never when the plugin is imported. The browser is
the system's Chromium (``executable_path``; Debian's package is ``/usr/bin/chromium``): gobot never
downloads a browser of its own.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .page import PAGE_HTML

LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = "install it (Debian/Ubuntu: apt-get install chromium) or set [plugins.charts] executable_path"


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; ValueError if it is not a PNG."""
    if len(png) < 24 or png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def safe_origin(url: str) -> str:
    """A URL without credentials, query or fragment, for records and messages (tokens live there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else "(url)"


class ChartRenderer:
    """Owns the browser of one run: ``start()`` once, ``render``/``screenshot`` many times, ``close()`` once.

    Charts are drawn one at a time on a single page that loaded the chart page once (each draw is
    a ``draw(data)`` call and a screenshot, not a page load). The chart page may not touch the
    network: every request it makes is aborted.
    """

    def __init__(self, executable_path: str, width: int, height: int, timeout_seconds: float = 30.0):
        self.executable_path = executable_path
        self.width = width
        self.height = height
        self.timeout_ms = timeout_seconds * 1000
        self._playwright: Any = None
        self._browser: Any = None
        self._chart_page: Any = None
        self._url_page: Any = None
        self._lock = asyncio.Lock()

    @property
    def started(self) -> bool:
        return self._browser is not None

    async def start(self) -> None:
        if self._browser is not None:
            return
        if not Path(self.executable_path).exists():
            raise FileNotFoundError(f"Chromium not found at {self.executable_path}: {INSTALL_HINT}")
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        try:
            self._browser = await self._playwright.chromium.launch(
                executable_path=self.executable_path, args=LAUNCH_ARGS, headless=True,
                timeout=max(self.timeout_ms, 30_000)
            )
        except Exception as exc:
            await self._playwright.stop()
            self._playwright = None
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RuntimeError(f"Chromium at {self.executable_path} did not start: {first_line}; "
                               f"{INSTALL_HINT}") from None

    async def close(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = self._chart_page = self._url_page = None
        try:
            if browser is not None:
                await browser.close()
        finally:
            if playwright is not None:
                await playwright.stop()

    async def _new_page(self, offline: bool) -> Any:
        await self.start()
        context = await self._browser.new_context(
            viewport={"width": self.width, "height": self.height}, device_scale_factor=1, java_script_enabled=True
        )
        context.set_default_timeout(self.timeout_ms)
        if offline:
            # The chart page is self-contained; anything it asks the network for is a bug.
            await context.route("**/*", lambda route: route.abort())
        return await context.new_page()

    async def render(self, data: dict[str, Any]) -> tuple[bytes, int]:
        """Draw one chart (``data`` as ``draw`` in the page takes it); returns the PNG and the candles drawn."""
        async with self._lock:
            if self._chart_page is None:
                page = await self._new_page(offline=True)
                await page.set_content(PAGE_HTML, wait_until="load")
                self._chart_page = page
            drawn = await self._chart_page.evaluate("data => draw(data)",
                                                    {**data, "width": self.width, "height": self.height})
            png = await self._chart_page.screenshot(type="png", full_page=False, animations="disabled")
        return png, int(drawn["candles"])

    async def render_page(self, html: str, width: int, height: int) -> bytes:
        """A whole self-contained page at ``width`` x ``height`` as a PNG: every request it makes is refused
        (it must carry everything inline); drawn once it sets ``window.gobotReady = true``, or on its load
        event when it never mentions ``gobotReady``."""
        await self.start()
        context = await self._browser.new_context(viewport={"width": width, "height": height},
                                                  device_scale_factor=1, java_script_enabled=True)
        context.set_default_timeout(self.timeout_ms)
        refused: list[str] = []

        async def refuse(route) -> None:
            refused.append(route.request.url)
            await route.abort()

        try:
            await context.route("**/*", refuse)
            page = await context.new_page()
            await page.set_content(html, wait_until="load")
            if "gobotReady" in html:
                try:
                    await page.wait_for_function("window.gobotReady === true")
                except Exception as exc:
                    seen = f" (refused requests: {', '.join(refused[:3])})" if refused else ""
                    raise RuntimeError(f"the page never set window.gobotReady: {_first_line(exc)}{seen}") from None
            return await page.screenshot(type="png", full_page=False, animations="disabled")
        finally:
            await context.close()

    async def screenshot(self, url: str, wait_for_selector: str = "") -> bytes:
        """Load ``url``, wait for ``wait_for_selector`` to be visible (if given), screenshot the viewport."""
        async with self._lock:
            if self._url_page is None:
                self._url_page = await self._new_page(offline=False)
            page = self._url_page
            where = safe_origin(url)
            try:
                await page.goto(url, wait_until="load")
            except Exception as exc:
                raise RuntimeError(f"could not load {where}: {_first_line(exc).replace(url, where)}") from None
            if wait_for_selector:
                try:
                    await page.wait_for_selector(wait_for_selector, state="visible")
                except Exception as exc:
                    raise RuntimeError(f"{where}: '{wait_for_selector}' did not appear: "
                                       f"{_first_line(exc).replace(url, where)}") from None
            return await page.screenshot(type="png", full_page=False, animations="disabled")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
