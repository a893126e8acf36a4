"""How a backtest is shown: a summary table on the terminal (rich), a JSON document, and a
self-contained HTML page: the interactive candle chart with every trade and its story, and the equity
and drawdown curves with labelled axes (``gobot_hookspecs.tradechart``, inlined: no network, no files).
"""

from __future__ import annotations

import html
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from gobot.research.backtest.engine import BacktestRun
from gobot_hookspecs.metrics import MIN_RATIO_SAMPLE, enough_for_ratios
from gobot_hookspecs.money import amount_text, money

HTML_TRADES = 500  # rows of the trades table in the HTML page


def _utc(ms: int, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime(fmt)


def _num(value: Any, fmt: str = "{:.2f}", none: str = "-") -> str:
    if value is None:
        return none
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return fmt.format(value)


def data_rows(run: BacktestRun) -> list[dict[str, Any]]:
    rows = []
    for series in run.series:
        rows.append({
            "symbol": series.symbol, "timeframe": series.timeframe, "candles": len(series), "source": series.source,
            "from": _utc(int(series.timestamp[0]), "%Y-%m-%d") if len(series) else None,
            "to": _utc(int(series.timestamp[-1]), "%Y-%m-%d") if len(series) else None,
            "gaps": len(series.gaps), "missing_candles": series.missing_candles,
            "largest_gap": max((g.missing for g in series.gaps), default=0),
            "first_gaps": [{"after": g.after.isoformat(), "missing": g.missing} for g in series.gaps[:10]],
            "market": {"amount_step": series.market.amount_step, "min_amount": series.market.min_amount,
                       "min_notional": series.market.min_notional, "source": series.market.source},
        })
    return rows


def as_json(run: BacktestRun, metrics: dict[str, Any], *, trades: bool = True) -> dict[str, Any]:
    s = run.settings
    sim = run.simulation
    clean = {k: ("inf" if isinstance(v, float) and math.isinf(v) else v) for k, v in _sampled(metrics).items()}
    return {
        "strategy": run.strategy,
        "params": run.params,
        "path": run.path,
        "currency": run.currency,
        "settings": {"fill": s.fill, "fee_percent": s.fee_percent, "slippage_percent": s.slippage_percent,
                     "stop_loss_percent": s.stop_loss_percent, "take_profit_percent": s.take_profit_percent,
                     "start_equity": s.start_equity, "sizing": str(s.sizing), "risk": s.risk,
                     "allow_short": s.allow_short},
        "data": data_rows(run),
        "metrics": clean,
        "vetoes": dict(sim.vetoes.most_common()),
        "decisions": sim.decisions,
        "trades": [t.as_dict() for t in sim.trades] if trades else len(sim.trades),
        "open_positions": [{"symbol": p.symbol, "direction": "LONG" if p.direction > 0 else "SHORT", "amount": p.amount,
                            "entry_price": p.entry_price,
                            "opened_at": datetime.fromtimestamp(p.entry_ms / 1000, tz=timezone.utc).isoformat()}
                           for p in sim.open_positions],
        "seconds": {"signals": sum(sig.seconds for sig in run.signals), "simulation": sim.seconds,
                    "total": run.seconds},
    }


#: The values inside a reason: a date (and time), a time of day, or a number with its unit
#: ("2.1x", "30s", "5%"); never the digits inside a word (a symbol, a setting's name).
_VALUE = re.compile(r"(?<![\w.:-])(?:\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?|\d{1,2}:\d{2}(?::\d{2})?"
                    r"|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?[a-z%]*)(?![\w.:])")


def _order(value: str):
    number = re.match(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", value)
    return ((0, float(number.group()), value)
            if number and number.end() == len(value.rstrip("abcdefghijklmnopqrstuvwxyz%")) else (1, 0.0, value))


def group_reasons(vetoes: dict[str, int]) -> list[tuple[str, int]]:
    """Veto reasons that differ only in their values, as one line with the real values: a value the
    same in every one is printed as it is, one that varies as its range ("confidence 0.55–0.68
    below min_confidence_threshold 0.70"); the most frequent first."""
    groups: dict[str, list[tuple[list[str], int]]] = {}
    for reason, n in vetoes.items():
        groups.setdefault(_VALUE.sub("\x00", reason), []).append((_VALUE.findall(reason), n))
    lines = []
    for skeleton, members in groups.items():
        texts = skeleton.split("\x00")
        parts = [texts[0]]
        for slot, text in enumerate(texts[1:]):
            values = sorted({values[slot] for values, _ in members}, key=_order)
            parts.append(values[0] if len(values) == 1 else f"{values[0]}–{values[-1]}")
            parts.append(text)
        lines.append(("".join(parts), sum(n for _, n in members)))
    return sorted(lines, key=lambda line: -line[1])


def _enough(metrics: dict[str, Any]) -> bool:
    return enough_for_ratios(metrics["trades"])


def _sampled(metrics: dict[str, Any]) -> dict[str, Any]:
    """Sharpe, Sortino and Calmar only over the contract's minimum sample of closed trades (None below)."""
    if _enough(metrics):
        return metrics
    return {**metrics, "sharpe": None, "sortino": None, "calmar": None}


def metric_rows(metrics: dict[str, Any], currency: str = "") -> list[tuple[str, str]]:
    """The result, one row per figure; amounts in ``currency`` (the tested symbols' quote)."""
    pf = metrics.get("profit_factor")
    return [
        ("trades", f"{metrics['trades']} ({metrics['wins']} won, {metrics['losses']} lost)"
                   + (f", {metrics['open_positions']} still open" if metrics.get("open_positions") else "")),
        ("win rate", _num(metrics["win_rate"], "{:.1%}")),
        ("profit factor", _num(pf)),
        ("expectancy / trade", "-" if metrics["expectancy"] is None else money(metrics["expectancy"], currency, True)),
        ("return", f"{metrics['return_pct']:+.2f}%  ({money(metrics['start_equity'], currency)} -> "
                   f"{money(metrics['end_equity'], currency)})"),
        ("max drawdown", f"{metrics['max_drawdown_pct']:.2%}  ({money(metrics['max_drawdown'], currency)})"),
        ("Sharpe / Sortino", f"{_num(metrics['sharpe'])} / {_num(metrics['sortino'])}" if _enough(metrics)
         else f"— / — (n={metrics['trades']}; shown from {MIN_RATIO_SAMPLE} trades)"),
        ("Calmar", _num(metrics["calmar"]) if _enough(metrics) else f"— (n={metrics['trades']})"),
        ("fees paid", money(metrics["total_fees"], currency)),
        ("avg holding", _num(metrics["avg_holding_seconds"] and metrics["avg_holding_seconds"] / 60, "{:.1f} min")),
        ("entries vetoed", str(metrics["vetoed_entries"])),
    ]


def print_summary(run: BacktestRun, metrics: dict[str, Any], *, show_trades: int = 0) -> None:
    """The summary: drawn by rich on a terminal; as plain aligned text when the output goes to a file or a pipe
    (the same words without colours, and rich's import and drawing, 20-50 ms of a one-second command, saved)."""
    import sys

    s = run.settings
    params = ", ".join(f"{k}={v:g}" for k, v in run.params.items())
    parts: list[Any] = [f"[bold]{run.strategy}[/] ({params}) — {run.path} path, {run.seconds:.3f} s",
                        f"fill {s.fill.replace('_', ' ')}, fee {s.fee_percent:g}%, slippage {s.slippage_percent:g}%, "
                        f"stop {_num(s.stop_loss_percent, '{:g}%', 'none')}, "
                        f"target {_num(s.take_profit_percent, '{:g}%', 'none')}, "
                        f"sizing {s.sizing}, risk {s.risk}{'' if s.allow_short else ', long only'}"]
    rows = []
    for row in data_rows(run):
        gaps = f"{row['gaps']} ({row['missing_candles']} missing)" if row["gaps"] else "none"
        market = row["market"]
        rules = ("defaults" if market["source"] == "defaults" else
                 f"step {market['amount_step']:g}, min {market['min_notional']:g}")
        rows.append((row["symbol"], row["timeframe"], f"{row['candles']:,}", row["from"], row["to"], gaps, rules))
    parts.append(("data", ("symbol", "tf", "candles", "from", "to", "gaps", "market rules"), "llrllrl", rows))
    parts.append(("result", None, "lr", metric_rows(metrics, run.currency)))
    if run.simulation.vetoes:
        grouped = group_reasons(run.simulation.vetoes)
        parts.append(f"entries not taken ({sum(n for _, n in grouped)}): "
                     + "; ".join(f"{n}x {reason}" for reason, n in grouped[:5]))
    for series in run.series:
        if series.gaps:
            biggest = max(series.gaps, key=lambda g: g.missing)
            parts.append(f"[yellow]gaps in {series.symbol}: {len(series.gaps)}, {series.missing_candles} candles "
                         f"missing (largest: {biggest.missing} after {biggest.after:%Y-%m-%d %H:%M}); not filled in: "
                         "orders pending across a gap fill at the next candle[/]")
    if show_trades:
        trades = []
        for t in run.trades[-show_trades:]:
            pnl = amount_text(t.pnl, run.currency, True)
            trades.append((t.symbol, t.direction.value, _utc(t.entry_ms, "%m-%d %H:%M"), _utc(t.exit_ms, "%m-%d %H:%M"),
                           f"{t.entry_price:.6g}", f"{t.exit_price:.6g}",
                           f"[green]{pnl}[/]" if t.pnl >= 0 else f"[red]{pnl}[/]", t.exit_reason))
        parts.append((f"last {show_trades} trades",
                      ("symbol", "side", "opened", "closed", "entry", "exit", f"P&L {run.currency}", "why"),
                      "llllrrrl", trades))
    (_rich_summary if sys.stdout.isatty() else _plain_summary)(parts)


def _rich_summary(parts: list[Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for part in parts:
        if isinstance(part, str):
            console.print(part, highlight=not part.startswith("entries not taken"))
            continue
        title, columns, justify, rows = part
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_header=columns is not None, title=title,
                      title_justify="left")
        for column, side in zip(columns or ("metric", "value"), justify):
            table.add_column(column, justify="right" if side == "r" else "left")
        for row in rows:
            table.add_row(*row)
        console.print(table)


_MARKUP = re.compile(r"\[/?(?:bold|yellow|green|red)?\]")


def _plain_summary(parts: list[Any]) -> None:
    """The same summary as plain text: markup removed, columns aligned, two spaces apart."""
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part if part.startswith("entries not taken") else _MARKUP.sub("", part))
            continue
        title, columns, justify, rows = part
        rows = [tuple(_MARKUP.sub("", cell) for cell in row) for row in rows]
        lines = ([columns] if columns else []) + rows
        widths = [max(len(line[i]) for line in lines) for i in range(len(justify))]
        out += ["", title]
        for n, line in enumerate(lines):
            out.append("  ".join(cell.rjust(w) if side == "r" else cell.ljust(w)
                                 for cell, w, side in zip(line, widths, justify)).rstrip())
            if columns and n == 0:
                out.append("  ".join("-" * w for w in widths))
    print("\n".join(out))


# -- HTML --------------------------------------------------------------------------------------------

_STYLE = ("body{font:14px system-ui,sans-serif;margin:1.5rem auto;max-width:1150px;color:#111}"
          "table{border-collapse:collapse;margin:.5rem 0 1rem}"
          "td,th{padding:.2rem .6rem;border-bottom:1px solid #e5e7eb;text-align:right}"
          "td:first-child,th:first-child{text-align:left}"
          ".note{color:#6b7280}.win{color:#15803d}.loss{color:#b91c1c}")


def write_html(run: BacktestRun, metrics: dict[str, Any], path: Path, *, stories: list | None = None,
               indicators: Iterable[str] = ()) -> Path:
    """One self-contained page (``gobot_hookspecs.tradechart``: nothing fetched, works offline): the summary,
    the interactive chart of each symbol's candles and ``indicators`` with every trade of ``stories`` (click
    one for its signal, verdicts, sizing and fills), the equity and drawdown curves with labelled axes, the
    data and the last trades."""
    from gobot.research.backtest.chart import DEFAULT_INDICATORS, backtest_payload, drawdown_percent, thin
    from gobot_hookspecs import tradechart

    e = html.escape
    ccy = run.currency
    params = ", ".join(f"{k}={v:g}" for k, v in run.params.items())
    sim = run.simulation
    if stories is None:
        from gobot.research.backtest.stories import trade_stories

        stories = trade_stories(run)
    payload = backtest_payload(run, stories, tuple(indicators) or DEFAULT_INDICATORS, equity=False)  # drawn below
    equity_t, equity_v = thin(sim.timeline, sim.equity)
    drawdown_t, drawdown_v = thin(sim.timeline, drawdown_percent(sim.equity), decimals=3)
    parts = [
        "<!doctype html><html><head><meta charset=utf-8>",
        f"<title>gobot backtest: {e(run.strategy)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Backtest: {e(run.strategy)} <small class=note>({e(params)})</small></h1>",
        f"<p class=note>{e(run.path)} path, {run.seconds:.3f} s. Fill {e(run.settings.fill)}, "
        f"fee {run.settings.fee_percent:g}%, slippage {run.settings.slippage_percent:g}%, "
        f"sizing {e(str(run.settings.sizing))}, risk {e(run.settings.risk)}. Amounts in {e(ccy)}.</p>",
        "<table><tr><th>metric</th><th>value</th></tr>",
        *[f"<tr><td>{e(label)}</td><td>{e(value)}</td></tr>" for label, value in metric_rows(metrics, ccy)],
        "</table><h2>Chart and trades</h2><p class=note>Scroll to zoom, drag to pan; click a trade (marker or row) "
        "for its signal, risk verdicts, sizing and fills.</p>",
        tradechart.embed({**payload, "theme": "light"}),
        "<h2>Equity and drawdown</h2>",
        tradechart.equity_embed(equity_t, equity_v, currency=ccy, title=f"Equity ({ccy}, marked to market)",
                                include_assets=False, theme="light"),
        tradechart.equity_embed(drawdown_t, drawdown_v, currency="%", title="Drawdown (% below the peak)",
                                height=180, element_id="drawdown", include_assets=False, theme="light"),
    ]
    parts.append("<h2>Data</h2><table><tr><th>symbol</th><th>timeframe</th><th>candles</th><th>from</th><th>to</th>"
                 "<th>gaps</th><th>missing candles</th></tr>")
    for row in data_rows(run):
        parts.append(f"<tr><td>{e(row['symbol'])}</td><td>{e(row['timeframe'])}</td><td>{row['candles']:,}</td>"
                     f"<td>{e(str(row['from']))}</td><td>{e(str(row['to']))}</td><td>{row['gaps']}</td>"
                     f"<td>{row['missing_candles']}</td></tr>")
    parts.append(f"</table><h2>Closed trades</h2><p class=note>{len(run.trades):,} closed; "
                 f"the last {min(HTML_TRADES, len(run.trades))} below.</p>"
                 "<table><tr><th>symbol</th><th>side</th><th>opened</th><th>closed</th><th>entry</th><th>exit</th>"
                 f"<th>P&amp;L {e(ccy)}</th><th>why</th></tr>")
    for t in run.trades[-HTML_TRADES:]:
        css = "win" if t.pnl > 0 else "loss"
        parts.append(f"<tr><td>{e(t.symbol)}</td><td>{t.direction.value}</td><td>{_utc(t.entry_ms)}</td>"
                     f"<td>{_utc(t.exit_ms)}</td><td>{t.entry_price:.6g}</td><td>{t.exit_price:.6g}</td>"
                     f"<td class={css}>{amount_text(t.pnl, ccy, True)}</td>"
                     f"<td>{e(t.exit_reason)}</td></tr>")
    parts.append("</table></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts), encoding="utf-8")
    return path
