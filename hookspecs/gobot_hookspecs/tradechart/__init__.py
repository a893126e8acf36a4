"""Interactive trade charts for the dashboard, the HTML reports and ``gobot plot``, written once for the
core and every plugin: candles and volume, indicators, one marker per entry and per exit, stop and target
lines, zoom and pan, a symbol selector and a timeframe switch, a trades table and a drill-down panel
(the signal, every risk verdict, the sizing, the fills, the vision images and the model's answer).

::

    from gobot_hookspecs.tradechart import chart_series, chart_payload, page

    series = chart_series("BTC/USDT", "1m", candles, indicators=("sma:20", "bb:20", "rsi:14"))
    payload = chart_payload([series], stories, currency="USDT", title="Backtest", equity=(times_ms, values))
    Path("chart.html").write_text(page(payload, title="BTC/USDT backtest"))

The page draws with TradingView's lightweight-charts (Apache-2.0), vendored from the npm registry
beside this file (``LIBRARY_VERSION``, its LICENSE and NOTICE; ``make vendor-charts`` re-fetches it
and checks ``LIBRARY_INTEGRITY``), and with ``tradechart.js`` / ``tradechart.css``. Everything is
inlined: no request leaves the page. Candles travel in a compact column encoding (``encoding``) and
are aggregated in the page to the visible range, so a year of 1m candles stays a few MB and fast.
See docs/charts.md. Not imported by ``gobot_hookspecs`` itself: the contract stays light.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from datetime import datetime, timezone
from functools import cache
from html import escape
from importlib import resources
from typing import Any, Iterable

from ..candles import timeframe_seconds
from ..models import TradeStory
from .encoding import encode_candles

#: The vendored lightweight-charts release (npm), and the integrity of its tarball as the registry gives it.
LIBRARY_VERSION = "5.3.0"
LIBRARY_INTEGRITY = (
    "sha512-w16fu2/FteUkIJdgc9G2tOCKs1fwFSqnqF8+kMgHGv0uGIfcfpEJhziSaQbML1yrkbeg4nQXV3msjmhBzhLNhw=="
)
LIBRARY_FILE = "lightweight-charts.standalone.production.js"
#: What ``asset()`` serves, by name -> the file in this package.
ASSETS = {
    "lightweight-charts.js": LIBRARY_FILE,
    "tradechart.js": "tradechart.js",
    "tradechart.css": "tradechart.css",
    "LICENSE": "LICENSE",
    "NOTICE": "NOTICE",
}
#: Indicators the page draws: "<kind>:<period>" (sma, ema and bb on the price, rsi in a pane of its own).
INDICATOR_KINDS = ("sma", "ema", "bb", "rsi")
_INDICATOR = re.compile(rf"^({'|'.join(INDICATOR_KINDS)}):([1-9][0-9]{{0,3}})$")
#: Trades lists longer than this (as JSON) travel zlib-compressed in embed()/page().
_COMPRESS_TRADES_OVER = 64 * 1024
_ELEMENT_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
ATTRIBUTION = ("Charts by TradingView Lightweight Charts\u2122, Copyright (c) TradingView, Inc., "
               "Apache License 2.0")

__all__ = [
    "LIBRARY_INTEGRITY", "LIBRARY_VERSION", "asset", "chart_payload", "chart_series", "embed", "equity_embed",
    "equity_lines_embed", "page",
]


def asset(name: str) -> bytes:
    """A file of the kit, by name: ``"lightweight-charts.js"``, ``"tradechart.js"``, ``"tradechart.css"``
    (and ``"LICENSE"``, ``"NOTICE"``), for a server to hand out (the dashboard)."""
    try:
        return _read(ASSETS[name])
    except KeyError:
        raise ValueError(f"unknown chart asset '{name}'; use one of {', '.join(ASSETS)}") from None


@cache
def _read(file: str) -> bytes:
    return resources.files(__name__).joinpath(file).read_bytes()


def _indicator_specs(indicators: Iterable[str]) -> list[str]:
    specs = [str(spec).strip().lower() for spec in indicators]
    for spec in specs:
        if not _INDICATOR.match(spec):
            raise ValueError(f"unknown indicator '{spec}'; use sma:N, ema:N, bb:N or rsi:N")
    return specs


def chart_series(symbol: str, timeframe: str, candles: Any, *,
                 indicators: Iterable[str] = ("sma:20", "sma:50")) -> dict:
    """One symbol's candles for a chart, compactly encoded (JSON-able).

    ``candles``: a ``Candles`` model (lists) or any object with ``timestamp`` (epoch ms), ``open``,
    ``high``, ``low``, ``close`` and ``volume`` columns, numpy arrays included, oldest first.
    ``indicators``: ``"sma:N"``, ``"ema:N"``, ``"bb:N"`` (Bollinger, 2 standard deviations) on the price,
    ``"rsi:N"`` (Wilder's) in a pane of its own; computed in the page on these candles.
    """
    columns = [getattr(candles, name) for name in ("timestamp", "open", "high", "low", "close", "volume")]
    lengths = {len(column) for column in columns}
    if len(lengths) > 1:
        raise ValueError(f"candle columns of different lengths: {sorted(lengths)}")
    return {"symbol": symbol, "timeframe": timeframe, "step": timeframe_seconds(timeframe),
            "indicators": _indicator_specs(indicators), **encode_candles(*columns)}


def _seconds(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _trade(story: TradeStory | dict, currency: str) -> dict:
    """A story as the page reads it: times in epoch seconds, the side as "long"/"short"."""
    story = story if isinstance(story, TradeStory) else TradeStory.model_validate(story)
    signal = story.signal
    return {
        "id": story.id, "symbol": story.symbol, "side": "short" if story.direction.value == "SHORT" else "long",
        "amount": story.amount, "entry": _seconds(story.entry_time), "entry_price": story.entry_price,
        "exit": _seconds(story.exit_time), "exit_price": story.exit_price, "exit_reason": story.exit_reason,
        "stop": story.stop_loss, "target": story.take_profit, "pnl": story.pnl, "fees": story.fees,
        "currency": story.currency or currency, "strategy": story.strategy, "strategy_version": story.strategy_version,
        "signal": None if signal is None else {
            "source": signal.source, "action": signal.action.value, "confidence": signal.confidence,
            "rationale": signal.rationale, "time": _seconds(signal.time), "timeframe": signal.timeframe},
        "verdicts": [{"plugin": v.plugin, "approved": v.approved, "reason": v.reason} for v in story.verdicts],
        "sizing": story.sizing,
        "fills": [{"time": _seconds(f.time), "side": f.side.value, "purpose": f.purpose, "price": f.price,
                   "amount": f.amount, "fee": f.fee, "commissions": dict(f.commissions), "reason": f.reason}
                  for f in story.fills],
        "images": [image for image in story.images if image.startswith("data:image/")],
        "answer": story.answer,
    }


def chart_payload(series: list[dict], stories: Iterable[TradeStory | dict], *, currency: str, title: str = "",
                  equity: tuple[list[int], list[float]] | None = None, symbol: str | None = None) -> dict:
    """What the page draws (JSON-able): the series of ``chart_series``, the trades (``TradeStory``
    models or their dicts), the currency the money is in, an optional equity curve
    ``(epoch ms, values in currency)`` and the symbol shown first (default: the first series')."""
    series = list(series)
    known = {s["symbol"] for s in series}
    if symbol is not None and symbol not in known:
        raise ValueError(f"symbol '{symbol}' has no series; series are for {sorted(known) or 'nothing'}")
    payload: dict[str, Any] = {
        "kind": "gobot-tradechart", "version": 1, "title": title, "currency": currency,
        "symbol": symbol or (series[0]["symbol"] if series else None), "series": series,
        "trades": [_trade(story, currency) for story in stories], "equity": None,
    }
    if equity is not None:
        times, values = equity
        payload["equity"] = {"t": [int(t) for t in times], "v": [float(v) for v in values]}
    return payload


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no "</script>", no "<!--")."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _for_page(payload: dict) -> dict:
    """The payload as embedded: a long trades list zlib-compressed (the page inflates it)."""
    trades = payload.get("trades") or []
    text = json.dumps(trades, separators=(",", ":"), allow_nan=False)
    if len(text) <= _COMPRESS_TRADES_OVER:
        return payload
    packed = base64.b64encode(zlib.compress(text.encode(), 6)).decode("ascii")
    return {**payload, "trades": None, "trades_z": packed}


def _assets_html() -> str:
    library = _read(LIBRARY_FILE).decode()
    return (f"<style data-gtc-asset>{_read('tradechart.css').decode()}</style>\n"
            f"<script data-gtc-asset>if (!window.LightweightCharts) {{\n{library}\n}}</script>\n"
            f"<script data-gtc-asset>{_read('tradechart.js').decode()}</script>\n")


def _check_id(element_id: str) -> str:
    if not _ELEMENT_ID.match(element_id):
        raise ValueError(f"element_id '{element_id}' must be a letter then letters, digits, '-' or '_'")
    return element_id


def embed(payload: dict, *, height: int = 560, element_id: str = "tradechart", include_assets: bool = True) -> str:
    """An HTML fragment for a page body: the chart with its symbol selector and timeframe switch, the
    trades table and the drill-down panel, mounted as ``window.gobotCharts[element_id]``. The library,
    the component and the CSS are inlined (``include_assets=False`` leaves them out for a second chart
    on the same page; they run once per page either way). No request leaves the page."""
    element_id = _check_id(element_id)
    options = {"height": int(height)}
    return ((_assets_html() if include_assets else "")
            + f'<div id="{element_id}" class="gtc"></div>\n'
            + f'<script type="application/json" id="{element_id}-data">{_script_json(_for_page(payload))}</script>\n'
            + f"<script>GobotTradeChart.autoMount({_script_json(element_id)}, \"trade\", "
              f"{_script_json(options)});</script>\n")


def equity_embed(times_ms: Iterable[int], values: Iterable[float], *, currency: str, title: str = "Equity",
                 height: int = 260, element_id: str = "equity", include_assets: bool = True,
                 theme: str = "dark") -> str:
    """An interactive equity line: a y-axis labelled in ``currency`` and a time axis (zoom and pan as
    the chart). The kit's assets are inlined unless ``include_assets=False``; ``theme``: "dark", "light"
    or "auto" (the system's)."""
    element_id = _check_id(element_id)
    data = {"t": [int(t) for t in times_ms], "v": [float(v) for v in values], "currency": currency, "title": title}
    return ((_assets_html() if include_assets else "")
            + f'<div id="{element_id}" class="gtc"></div>\n'
            + f'<script type="application/json" id="{element_id}-data">{_script_json(data)}</script>\n'
            + f"<script>GobotTradeChart.autoMount({_script_json(element_id)}, \"equity\", "
              f"{_script_json({'height': int(height), 'theme': theme})});</script>\n")


def equity_lines_embed(lines: Iterable[tuple[str, Iterable[int], Iterable[float]]], *, currency: str,
                       title: str = "Equity", height: int = 300, element_id: str = "equity-lines",
                       include_assets: bool = True, theme: str = "dark") -> str:
    """Several equity lines in one chart, each ``(name, times_ms, values)`` with its name on the price axis
    (profiles run side by side); otherwise as :func:`equity_embed`."""
    element_id = _check_id(element_id)
    data = {"lines": [{"name": str(name), "t": [int(t) for t in times], "v": [float(v) for v in values]}
                      for name, times, values in lines], "currency": currency, "title": title}
    return ((_assets_html() if include_assets else "")
            + f'<div id="{element_id}" class="gtc"></div>\n'
            + f'<script type="application/json" id="{element_id}-data">{_script_json(data)}</script>\n'
            + f"<script>GobotTradeChart.autoMount({_script_json(element_id)}, \"equity\", "
              f"{_script_json({'height': int(height), 'theme': theme})});</script>\n")


#: The page's Content-Security-Policy: inline scripts and styles, data: images, nothing fetched ('unsafe-eval'
#: lets browser-driving tools such as playwright evaluate their own scripts in the page).
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; "
       "font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")


def page(payload: dict, *, title: str) -> str:
    """A whole self-contained HTML document: the chart (and the equity curve when the payload has one),
    the attribution the library's licence asks for; ``window.gobotReady`` becomes true once drawn."""
    parts = [embed({**payload, "theme": payload.get("theme", "auto")}, height=560)]
    equity = payload.get("equity")
    if equity and equity.get("t"):
        parts.append('<h2 class="gtc-page-h2">Equity</h2>')
        parts.append(equity_embed(equity["t"], equity["v"], currency=payload.get("currency", ""),
                                  title=f"Equity ({payload.get('currency', '')})".replace(" ()", ""),
                                  include_assets=False, theme=payload.get("theme", "auto")))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="color-scheme" content="dark light">
<title>{escape(title)}</title>
<style>
html {{ scrollbar-gutter: stable; }}
body {{ margin: 0; padding: 16px 20px; background: #0f1419; color: #d8dee6;
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }}
@media (prefers-color-scheme: light) {{ body {{ background: #ffffff; color: #1f2328; }} }}
h1 {{ margin: 0 0 12px; font-size: 20px; }}
.gtc-page-h2 {{ margin: 20px 0 8px; font-size: 14px; text-transform: uppercase; letter-spacing: 0.6px; opacity: 0.7; }}
footer {{ margin-top: 16px; font-size: 12px; opacity: 0.75; }}
footer a {{ color: #4c9be8; }}
</style>
</head>
<body>
<h1>{escape(title)}</h1>
{''.join(parts)}
<footer>{escape(ATTRIBUTION)} &mdash; <a href="https://www.tradingview.com/" rel="noopener">tradingview.com</a>.
Made by gobot.</footer>
</body>
</html>
"""
