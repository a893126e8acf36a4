"""``charts``: PNG charts for plugins that look at markets (answers ``gobot_render_chart`` / ``ctx.chart``),
and whole self-contained pages rendered to PNG (answers ``gobot_render_page``: ``gobot plot --png``).

Two modes:

- ``render`` (the default): candlesticks, volume and the configured indicators, drawn from the
  market-data plugin's closed candles (``ctx.candles``) on a self-contained page in headless
  Chromium — no CDN, no network, so it works offline, in replay and in tests;
- ``url``: a screenshot of a page built from ``url_template`` (a TradingView chart, your own
  dashboard) once ``wait_for_selector`` is visible. It shows that page's live data, so use it live.

One browser per run: launched in ``gobot_startup`` (a missing Chromium stops the start with a
clear message), reused by every cycle, closed in ``gobot_shutdown``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal
from urllib.parse import quote

from pydantic import Field, field_validator, model_validator

from gobot_hookspecs import ChartImage, PluginConfig, hookimpl
from gobot_hookspecs.candles import TIMEFRAMES

from . import indicators as ind
from .renderer import ChartRenderer, png_size, safe_origin

NAME = "charts"
URL_FIELDS = ("symbol", "base", "quote", "timeframe", "minutes")


class ChartsConfig(PluginConfig):
    executable_path: str = Field(
        "/usr/bin/chromium", description="the Chromium binary playwright drives (Debian's chromium package)"
    )
    mode: Literal["render", "url"] = Field(
        "render", description="render = draw from candles offline; url = screenshot url_template"
    )
    width: int = Field(1024, ge=320, le=4096, description="image width, pixels")
    height: int = Field(640, ge=240, le=4096, description="image height, pixels")
    theme: Literal["dark", "light"] = Field("dark", description="colours of rendered charts: dark or light")
    indicators: list[str] = Field(
        default_factory=lambda: ["sma:20", "sma:50", "bb:20", "rsi:14"],
        description="drawn on rendered charts: sma:N, ema:N, bb:N (Bollinger, 2 sd), rsi:N (own panel); N in candles",
    )
    url_template: str = Field(
        "", description="url mode: page to screenshot; {symbol} {base} {quote} {timeframe} {minutes} are filled in"
    )
    wait_for_selector: str = Field("", description="url mode: CSS selector that must be visible before the screenshot")
    page_timeout_seconds: float = Field(
        30.0, gt=0, le=300, description="browser start, page load and wait-for limit, seconds"
    )

    @field_validator("indicators")
    @classmethod
    def _known_indicators(cls, specs: list[str]) -> list[str]:
        for spec in specs:
            ind.parse(spec)
        return [spec.strip().lower() for spec in specs]

    @field_validator("url_template")
    @classmethod
    def _template_fields(cls, template: str) -> str:
        if template:
            try:
                template.format_map({name: "x" for name in URL_FIELDS})
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"unknown placeholder {exc} in url_template; "
                                 f"use {', '.join('{' + f + '}' for f in URL_FIELDS)}") from None
        return template

    @model_validator(mode="after")
    def _url_mode_needs_a_url(self) -> ChartsConfig:
        if self.mode == "url" and not self.url_template:
            raise ValueError("mode = \"url\" needs url_template (e.g. \"http://127.0.0.1:8080/chart?symbol={base}{quote}&tf={timeframe}\")")
        return self


def chart_url(template: str, symbol: str, timeframe: str) -> str:
    base, _, rest = symbol.partition("/")
    quote_ccy = rest.split(":")[0]
    minutes = TIMEFRAMES.get(timeframe, 0) // 60
    values = {"symbol": quote(symbol, safe=""), "base": base, "quote": quote_ccy, "timeframe": timeframe,
              "minutes": minutes}
    return template.format_map(values)


def chart_data(symbol: str, timeframe: str, candles, specs: list[str], limit: int, theme: str) -> dict:
    """What the page's ``draw`` takes: the last ``limit`` candles plus indicator series and labels."""
    shown = min(limit, len(candles))
    skip = len(candles) - shown
    series = ind.series(specs, list(candles.close), skip)
    o, c = candles.open[-1], candles.close[-1]
    first_close = candles.close[skip]
    change = (c / first_close - 1) * 100 if first_close else 0.0
    end = _end_time(candles.timestamp[-1], timeframe)
    return {
        "theme": theme,
        "title": f"{symbol} · {timeframe}",
        "subtitle": (
            f"O {o:.6g}  H {candles.high[-1]:.6g}  L {candles.low[-1]:.6g}  C {c:.6g}  "
            f"({change:+.2f}% over {shown} candles)  to {end:%Y-%m-%d %H:%M} UTC"
        ),
        "t": list(candles.timestamp[skip:]),
        "o": list(candles.open[skip:]),
        "h": list(candles.high[skip:]),
        "l": list(candles.low[skip:]),
        "c": list(candles.close[skip:]),
        "v": list(candles.volume[skip:]),
        **series,
    }


def caption(specs: list[str]) -> str:
    """``candlesticks and volume; SMA 20, Bollinger bands 20 (2 sd), RSI 14 in its own panel``."""
    names = {"sma": "SMA {}", "ema": "EMA {}", "bb": "Bollinger bands {} (2 sd)",
             "rsi": "RSI {} in its own panel (30/70 lines)"}
    drawn = [names[kind].format(period) for kind, period in map(ind.parse, specs)]
    return "candlesticks and volume" + (f"; {', '.join(drawn)}" if drawn else "")


def _end_time(last_open_ms: int, timeframe: str) -> datetime:
    return datetime.fromtimestamp(last_open_ms / 1000 + TIMEFRAMES.get(timeframe, 0), tz=timezone.utc)


class Charts:
    """One instance per bot: the browser of the run and the last chart of each symbol and timeframe."""

    def __init__(self) -> None:
        self.renderer: ChartRenderer | None = None
        # Same candles -> same picture: a 1h chart asked for every 15 minutes is drawn once an hour.
        self._last: dict[tuple[str, str, int], tuple[tuple, ChartImage]] = {}

    @hookimpl
    def gobot_config_model(self):
        return ChartsConfig

    def _renderer(self, config: ChartsConfig) -> ChartRenderer:
        if self.renderer is None:
            self.renderer = ChartRenderer(config.executable_path, config.width, config.height,
                                          config.page_timeout_seconds)
        return self.renderer

    @hookimpl
    async def gobot_startup(self, ctx):
        config = ChartsConfig.of(ctx, NAME)
        await self._renderer(config).start()

    @hookimpl
    async def gobot_shutdown(self):
        renderer, self.renderer = self.renderer, None
        if renderer is not None:
            await renderer.close()

    @hookimpl
    async def gobot_render_page(self, config, html, width, height):
        """A self-contained page as a PNG: in the run's browser, or one launched for this page and closed after
        (``gobot plot --png`` starts no bot)."""
        if self.renderer is not None and self.renderer.started:
            return await self.renderer.render_page(html, width, height)
        settings = ChartsConfig.of(config, NAME)
        renderer = ChartRenderer(settings.executable_path, width, height, settings.page_timeout_seconds)
        try:
            return await renderer.render_page(html, width, height)
        finally:
            await renderer.close()

    @hookimpl
    async def gobot_render_chart(self, ctx, symbol, timeframe, limit):
        config = ChartsConfig.of(ctx, NAME)
        renderer = self._renderer(config)
        if config.mode == "url":
            url = chart_url(config.url_template, symbol, timeframe)
            png = await renderer.screenshot(url, config.wait_for_selector)
            width, height = png_size(png)
            origin = safe_origin(url)
            return ChartImage(
                symbol=symbol, timeframe=timeframe, png=png, width=width, height=height, origin=origin,
                caption=f"screenshot of {origin}",
            )
        try:
            candles = await ctx.candles(symbol, timeframe, limit + ind.history_needed(config.indicators))
        except LookupError:
            return None  # no candles of this timeframe (e.g. 1m from 5m files): another plugin may have them
        if len(candles) == 0:
            return None
        key = (symbol, timeframe, limit)
        fingerprint = (len(candles), candles.timestamp[-1], candles.close[-1], candles.volume[-1],
                       tuple(config.indicators), config.theme)
        if key in self._last and self._last[key][0] == fingerprint:
            return self._last[key][1]
        png, drawn = await renderer.render(chart_data(symbol, timeframe, candles, config.indicators, limit,
                                                      config.theme))
        if drawn == 0:
            return None
        width, height = png_size(png)
        image = ChartImage(
            symbol=symbol,
            timeframe=timeframe,
            png=png,
            width=width,
            height=height,
            candles=drawn,
            end=_end_time(candles.timestamp[-1], timeframe),
            origin="render",
            caption=caption(config.indicators),
        )
        self._last[key] = (fingerprint, image)
        return image
