"""The interactive parts of ``gobot report --html`` (``gobot_hookspecs.tradechart``): the run's trades on
candles, one symbol at a time (a selector across the run's symbols), each trade's story a click away
(signal, risk verdicts, sizing, fills, the charts a vision model saw), and the equity curve with its
y-axis in the quote currency and a time axis. Everything inline: the page fetches nothing.

Candles come from ``config.history()`` (the data ``gobot backtest`` reads) over the run's span; a symbol
without candles there is named in the page instead. Imported only when an HTML report is written.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime, timedelta
from typing import Any, Sequence

from gobot_hookspecs.candles import timeframe_seconds

log = logging.getLogger(__name__)

#: Candles drawn before the first trade of the run and after its last cycle (the indicators' warm-up).
MARGIN_BARS = 120
#: Vision trades whose chart images go into the page (the newest): a page of thousands stays small.
MAX_IMAGE_STORIES = 20
#: Points of the equity curve handed to the page (evenly thinned, the last always kept).
MAX_EQUITY_POINTS = 5000
#: Trades drawn per run (the newest): the page stays a few MB and quick to open.
MAX_TRADES = 10_000
INDICATORS = ("sma:20", "sma:50")


def trade_chart(view: Any, store: Any, data: dict[str, Any], run_ids: Sequence[str]) -> str:
    """The trades section's HTML: the chart of every symbol of the runs, with the trades' stories (after the
    equity curve, whose fragment carries the kit's scripts)."""
    from gobot_hookspecs.tradechart import chart_payload, chart_series, embed

    from .store import loads
    from .stories import read_stories, run_row, vision_lookup

    currency = data["currency"]
    vision = vision_lookup(view, MAX_IMAGE_STORIES)
    per_run = [read_stories(store, run_id, limit=MAX_TRADES, currency=currency, vision=vision) for run_id in run_ids]
    stories = [story for found in per_run for story in found]
    stories.sort(key=lambda s: (s.entry_time, s.id))
    traded = {symbol for run_id in run_ids for symbol in loads((run_row(store, run_id) or {}).get("symbols"), [])}
    symbols = sorted(traded | {s.symbol for s in stories})
    if not symbols:
        return ""
    timeframe = view.config.backtest.timeframe
    start, end = _span(data, stories, timeframe)
    series, missing = [], []
    for symbol in symbols:
        try:
            candles = view.history(symbol, timeframe, start, end)
        except Exception as exc:  # a symbol the data folders do not hold (or a timeframe they cannot make)
            log.info("report: no %s candles for %s: %s", timeframe, symbol, exc)
            candles = None
        if candles is None or not len(candles):
            missing.append(symbol)
            continue
        series.append(chart_series(symbol, timeframe, candles, indicators=INDICATORS))
    parts = ["<h2>Trades on the chart</h2>"]
    if series:
        shown = {s["symbol"] for s in series}
        payload = chart_payload(series, [s for s in stories if s.symbol in shown], currency=currency,
                                title=f"{data['scope']} — {len(stories)} trades")
        parts.append("<p class=muted>Scroll to zoom, drag to pan; pick the symbol and the timeframe above the "
                     "chart. Click a trade (its marker or its row) for its story: the signal, every risk verdict, "
                     "the sizing and the fills with their fees.</p>")
        if any(len(found) == MAX_TRADES for found in per_run):
            parts.append(f"<p class=muted>The newest {MAX_TRADES:,} trades of each run are drawn.</p>")
        parts.append(embed({**payload, "theme": "light"}, height=520, include_assets=False))  # the equity's
    if missing:
        parts.append(f"<p class=muted>No {html.escape(timeframe)} candles for {html.escape(', '.join(missing))} "
                     "in the data folders (<code>[backtest] data_dir</code>, <code>[plugins.replay] data_dir</code>): "
                     "their trades are not drawn.</p>")
    return "\n".join(parts)


def equity_chart(data: dict[str, Any], include_assets: bool) -> str:
    """The equity curve, interactive: its y-axis labelled in the report's currency, a time axis."""
    from gobot_hookspecs.tradechart import equity_embed

    curve = data["equity_curve"]
    step = max(1, -(-len(curve) // MAX_EQUITY_POINTS))
    kept = curve[::step] + ([curve[-1]] if curve and (len(curve) - 1) % step else [])
    currency = data["currency"] or "quote currency"
    return equity_embed([int(t.timestamp() * 1000) for t, _ in kept], [v for _, v in kept],
                        currency=data["currency"], title=f"Equity ({currency})", height=300,
                        element_id="equity", include_assets=include_assets, theme="light")


def _span(data: dict[str, Any], stories: Sequence[Any], timeframe: str) -> tuple[datetime | None, datetime | None]:
    """From a margin before the first trade or cycle to a margin after the last one."""
    moments = [r[key] for r in data["runs"] for key in ("first", "last") if r.get(key) is not None]
    moments += [s.entry_time for s in stories] + [s.exit_time for s in stories if s.exit_time is not None]
    if not moments:
        return None, None
    margin = timedelta(seconds=timeframe_seconds(timeframe) * MARGIN_BARS)
    return min(moments) - margin, max(moments) + margin
