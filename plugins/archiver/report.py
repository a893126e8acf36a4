"""The performance report: built from the archive with the shared metric code
(``gobot_hookspecs.metrics``), rendered as terminal tables (rich), JSON, or one self-contained HTML
file whose plots are inline SVG drawn by matplotlib (no network, no external files).
"""

from __future__ import annotations

import html
import importlib.util
import io
import json
import math
import statistics
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from gobot_hookspecs import metrics
from gobot_hookspecs.money import amount_text, money, quotes

from .patterns import DEFAULT_FDR, label_text, search
from .records import PHASES
from .report_drift import build_drift, drift_html, print_drift
from .report_profiles import build_profiles, group_members, print_profiles, profiles_html

MAX_PLOT_POINTS = 2000
DIMENSION_TITLES = {
    "strategy_version": "By strategy version",
    "symbol": "By symbol",
    "side": "By side",
    "hour": "By hour of entry (UTC)",
    "confidence_band": "By confidence band",
}


@dataclass(slots=True)
class TradeView:
    """A closed trade read back from the archive, shaped like ``gobot_hookspecs.Trade`` for the metrics."""

    run_id: str
    symbol: str
    direction: str
    amount: float
    entry_price: float
    exit_price: float
    opened_at: datetime
    closed_at: datetime
    fees: float
    pnl: float
    exit_reason: str
    confidence: float | None
    strategy: str | None
    strategy_version: int | None
    initial_stop_loss: float | None


class ReportError(Exception):
    """Nothing to report on (no archive, no such run): the message says what to do."""


# -- building -------------------------------------------------------------------------------------


def build_report(store: Any, run_id: str | None = None, all_runs: bool = False, min_trades: int = 20,
                 bands: Sequence[float] = metrics.DEFAULT_CONFIDENCE_BANDS, fdr: float = DEFAULT_FDR,
                 currency: str = "") -> dict[str, Any]:
    """Everything the report shows, as plain data (the --json output). Money is in the chosen runs'
    one quote, else ``currency`` (the config's, for runs of several quotes)."""
    from .store import loads, safe_url

    chosen, group_id, members = _chosen_runs(store, run_id, all_runs)
    run_ids = [r["run_id"] for r in chosen]
    currency = report_currency(chosen, loads) or currency
    # the earliest chosen run's capital; a sleeve group's: the sleeves' together
    start_equity = sum(r["initial_capital"] for r in chosen) if chosen == members else chosen[-1]["initial_capital"]

    trades = _trade_views(store, run_ids)
    profiles = None
    if group_id:
        kept = {r: [t for t in trades if t.run_id == r] for r in run_ids}
        profiles = build_profiles(store, group_id, members,
                                  lambda r: kept[r] if r in kept else _trade_views(store, [r]), currency)
    sleeve = {r["run_id"]: r.get("profile") for r in members} if group_id else {}
    if sleeve:  # each sleeve's versions of a strategy are its own: "conservative/sma_rsi v1"
        trades = [replace(t, strategy=_in_sleeve(sleeve, t.run_id, t.strategy)) for t in trades]
    cycles = store.rows("cycles", run_ids, order_by=("time", "id"))
    if len(chosen) == 1 and cycles:
        curve = [(c["time"], c["equity"]) for c in cycles]
    else:
        curve = metrics.equity_curve(trades, start_equity)
    summary = _metrics_dict(metrics.trade_metrics(trades, start_equity, curve=curve, currency=currency))

    by: dict[str, list[dict[str, Any]]] = {}
    for dimension in metrics.DIMENSIONS:
        by[dimension] = [
            {"label": label, "label_text": label_text(dimension, label) if dimension == "hour" else str(label),
             **_metrics_dict(metrics.trade_metrics(group, start_equity, currency=currency))}
            for label, group in metrics.group_trades(trades, dimension, bands).items()
        ]

    versions = []
    for row in store.rows("strategy_versions", run_ids, order_by=("run_id", "name", "version")):
        name = _in_sleeve(sleeve, row["run_id"], row["name"])
        group = [t for t in trades
                 if t.run_id == row["run_id"] and t.strategy == name and t.strategy_version == row["version"]]
        versions.append({
            "run_id": row["run_id"], "name": name, "version": row["version"], "params": loads(row["params"], {}),
            "reason": row["reason"], "status": row["status"], "created_at": row["created_at"],
            "started_at": row["started_at"], "ended_at": row["ended_at"], "archived_at": row["archived_at"],
            "metrics": _metrics_dict(metrics.trade_metrics(group, start_equity, currency=currency)),
        })

    learnings = [
        {"id": r["learning_id"], "iteration": r["iteration"], "created_at": r["created_at"], "source": r["source"],
         "symbol": r["symbol"], "text": r["text"], "evidence": loads(r["evidence"], {})}
        for r in store.rows("learnings", run_ids, order_by=("id",))
    ]
    return {
        "generated_at": datetime.now(timezone.utc),
        "database": safe_url(store.url),
        "scope": ("all runs" if all_runs else f"group {group_id} ({len(members)} profiles)" if chosen == members
                  else f"run {run_ids[0]}"),
        "runs": [{k: r[k] for k in ("run_id", "mode", "started_at", "first", "last", "cycles", "trades",
                                    "initial_capital")} for r in chosen],
        "currency": currency,
        "start_equity": start_equity,
        "final_equity": (cycles[-1]["equity"] if len(chosen) == 1 and cycles
                         else (curve[-1][1] if curve else start_equity)),
        "summary": summary,
        "equity_curve": curve,
        "by": by,
        "versions": versions,
        "proposals": _proposals(store, run_ids, loads),
        "min_pattern_trades": min_trades,
        **_patterns(trades, min_trades, bands, fdr, currency),
        "learnings": learnings,
        "activity": _activity(store, run_ids, cycles),
        "phases": _phase_stats(cycles),
        "drift": build_drift(store, run_ids),  # None: no trade of these runs was measured against a paper twin
        "profiles": profiles,  # None: not a side-by-side profiles run (report_profiles)
    }


def _in_sleeve(sleeve: dict[str, str | None], run_id: str, strategy: str | None) -> str | None:
    """A strategy's name in a sleeve group's report: "<profile>/<strategy>" (unchanged outside a group)."""
    profile = sleeve.get(run_id)
    return f"{profile}/{strategy}" if profile and strategy else strategy


def _chosen_runs(store: Any, run_id: str | None, all_runs: bool) -> tuple[list[dict[str, Any]], str | None,
                                                                         list[dict[str, Any]]]:
    """The runs to report on (all of them, the one named, or the latest; a sleeve group's sleeves when
    the latest run or the id named is a group's), the group of the run named or the latest, and its runs."""
    runs = store.runs()
    if not runs:
        raise ReportError("the archive has no runs yet: run `gobot start` with the archiver enabled first")
    group, members = group_members(runs, run_id)
    if all_runs:
        return runs, None, []
    if not run_id or run_id == group:
        return (members or runs[:1]), group, members
    chosen = [r for r in runs if r["run_id"] == run_id]
    if not chosen:
        known = ", ".join(r["run_id"] for r in runs[:5])
        raise ReportError(f"no run {run_id!r} in the archive; latest runs: {known}")
    return chosen, group, members


def _trade_views(store: Any, run_ids: list[str]) -> list[TradeView]:
    """The closed trades of ``run_ids``, oldest first, as the metrics read them."""
    return [
        TradeView(r["run_id"], r["symbol"], r["direction"], r["amount"], r["entry_price"], r["exit_price"],
                  r["opened_at"], r["closed_at"], r["fees"], r["pnl"], r["exit_reason"], r["confidence"],
                  r["strategy"], r["strategy_version"], r["initial_stop_loss"])
        for r in store.rows("trades", run_ids, order_by=("closed_at", "id"))
    ]


def _proposals(store: Any, run_ids: list[str], loads: Any) -> list[dict[str, Any]]:
    """Every proposed parameter change, oldest first, with its verdict (accepted as version N, or rejected and why)."""
    return [{"run_id": r["run_id"], "strategy": r["strategy"], "iteration": r["iteration"],
             "created_at": r["created_at"], "base_version": r["base_version"], "version": r["version"],
             "verdict": r["verdict"], "changes": loads(r["changes"], {}), "reason": r["reason"], "plugin": r["plugin"],
             "evidence": r["evidence"], "reasons": loads(r["reasons"], [])}
            for r in store.rows("strategy_proposals", run_ids, order_by=("run_id", "iteration", "strategy"))]


def _proposal_line(p: dict[str, Any]) -> str:
    """``#12 sma_rsi v1: slow 28 — rejected (validator: ...)`` or ``... — accepted as v2``."""
    changes = ", ".join(f"{k} {fmt(v)}" for k, v in p["changes"].items())
    verdict = f"accepted as v{p['version']}" if p["verdict"] == "accepted" else \
        f"rejected ({'; '.join(p['reasons'])})"
    return f"#{p['iteration']} {p['strategy']} v{p['base_version']}: {changes} — {verdict}"


def _patterns(trades: Sequence[Any], min_trades: int, bands: Sequence[float], fdr: float,
              currency: str = "") -> dict[str, Any]:
    """The discoveries, and how many groups were tested for them at which false discovery rate."""
    found = search(trades, min_trades, bands, fdr, currency)
    return {"patterns": [p.as_dict() for p in found.patterns], "groups_tested": found.tested, "pattern_fdr": fdr,
            "pattern_search": found.summary()}


def report_currency(runs: Sequence[dict[str, Any]], loads: Any) -> str:
    """The currency of the chosen runs' money: the one quote of the symbols archived with them; ""
    when they traded several quotes (``run_report`` then takes the config's ``[trading] currency``)."""
    found = quotes(symbol for run in runs for symbol in (loads(run.get("symbols")) or []))
    return found[0] if len(found) == 1 else ""


def _metrics_dict(m: metrics.TradeMetrics) -> dict[str, Any]:
    data = m.as_dict()
    data["win_rate_ci"] = list(metrics.wilson_interval(m.wins, m.trades)) if m.trades else None
    return data


def _activity(store: Any, run_ids: list[str], cycles: list[dict[str, Any]]) -> dict[str, Any]:
    signals = store.grouped_counts("signals", "action", run_ids)
    verdicts = store.grouped_counts("risk_verdicts", "approved", run_ids)
    return {
        "cycles": len(cycles),
        "signals": {action: signals.get(action, 0) for action in ("LONG", "SHORT", "HOLD")},
        "verdicts_approved": sum(v for k, v in verdicts.items() if k),
        "verdicts_vetoed": sum(v for k, v in verdicts.items() if not k),
        "orders": sum(store.grouped_counts("orders", "run_id", run_ids).values()),
        "fills": sum(store.grouped_counts("fills", "run_id", run_ids).values()),
        "execution_errors": sum(store.grouped_counts("execution_errors", "run_id", run_ids).values()),
        "plugin_errors": sum(len(json.loads(c["errors"] or "[]")) for c in cycles),
    }


def _phase_stats(cycles: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    stats = {}
    for phase in (*PHASES, "total"):
        values = sorted(c[f"{phase}_ms"] for c in cycles if c.get(f"{phase}_ms") is not None)
        if values:
            p95 = values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]
            stats[phase] = {"avg_ms": statistics.fmean(values), "p95_ms": p95, "max_ms": values[-1]}
    return stats


# -- JSON -----------------------------------------------------------------------------------------


def to_json(data: dict[str, Any]) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value)

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return "inf" if value > 0 else "-inf" if value < 0 else None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(data), default=default, indent=2)


# -- terminal -------------------------------------------------------------------------------------


def fmt(value: Any, kind: str = "num", currency: str = "") -> str:
    if value is None:
        return "-"
    if value == "inf" or (isinstance(value, float) and math.isinf(value)):
        return "∞"
    if kind == "pct":
        return f"{value:.0%}"
    if kind in ("money", "amount"):  # a table's amount (a P&L signed); its heading names the currency
        return amount_text(value, currency, signed=kind == "money", significant=2)  # fits the 80-column tables
    if kind == "ratio":
        return f"{value:.2f}"
    if kind == "big":  # Sharpe, Sortino: short samples annualise to large numbers
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}"
    if kind == "hold":
        return _duration(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


#: Metrics shown only over gobot_hookspecs.metrics.MIN_RATIO_SAMPLE closed trades, else "— (n=…)".
SAMPLED_RATIOS = ("sharpe", "sortino", "calmar")


def cell(metrics_row: dict[str, Any], key: str, kind: str, currency: str = "") -> str:
    """A metric of a row (summary, group, version) as text; Sharpe and Sortino below the minimum
    sample as "— (n=2)", n being the row's closed trades."""
    if key in SAMPLED_RATIOS:
        value = metrics_row[key]
        spec = "{:.0f}" if kind == "big" and value is not None and abs(value) >= 100 else "{:.2f}"
        return metrics.ratio_text(value, metrics_row["trades"], spec)
    return fmt(metrics_row[key], kind, currency)


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


#: (header, metric, format) of the per-group tables. ``exp.`` is the expectancy per trade, which is
#: also the average P&L (see gobot_hookspecs.metrics); ``R`` is the expectancy in R multiples.
METRIC_COLUMNS = (
    ("n", "trades", "num"), ("win%", "win_rate", "pct"), ("PF", "profit_factor", "ratio"),
    ("P&L", "total_pnl", "money"), ("exp.", "expectancy", "money"), ("R", "expectancy_r", "ratio"),
    ("maxDD", "max_drawdown", "amount"), ("Sharpe", "sharpe", "big"), ("Sortino", "sortino", "big"),
    ("hold", "avg_holding_seconds", "hold"),
)
#: The columns in money: a table's heading names their currency.
MONEY_METRICS = ("total_pnl", "expectancy", "max_drawdown")


def _money(value: Any, data: dict[str, Any], signed: bool = False) -> str:
    """An amount of the report with its currency (``gobot_hookspecs.money``); "-" for none."""
    return "-" if value is None else money(value, data["currency"], signed)


def _table(title: str, show_header: bool = True) -> Any:
    """A compact table: the per-group tables fit 80 columns."""
    from rich import box
    from rich.table import Table

    return Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, show_edge=False,
                 pad_edge=False, collapse_padding=True, show_header=show_header)


def render_terminal(data: dict[str, Any], console: Any) -> None:
    """The report as rich tables on ``console``: the summary, a table per breakdown, the strategy versions
    side by side, the patterns, the drift against the paper twin (when measured), then the activity, phase
    timings and latest learnings."""
    _print_heading(data, console)
    print_profiles(data, console, _table, cell, _escape)
    _print_summary(data, console)
    _print_breakdowns(data, console)
    _print_versions(data, console)
    _print_proposals(data, console)
    _print_patterns(data, console)
    print_drift(data, console, _table, _escape)
    _print_activity(data, console)


def _escape(text: str) -> str:
    """``text`` with its square brackets escaped for rich markup (rich is imported only to print)."""
    from rich.markup import escape

    return escape(text)


def _print_heading(data: dict[str, Any], console: Any) -> None:
    runs = data["runs"]
    head = runs[0]
    span = f"{_when(head['first'])} → {_when(head['last'])} UTC" if len(runs) == 1 else f"{len(runs)} runs"
    modes = {r["mode"] for r in runs}
    mode = modes.pop() if len(modes) == 1 else "all"
    console.print(f"[bold]Performance report[/] — {_escape(data['scope'])} ({mode}), {span}")
    console.print(f"archive: {_escape(data['database'])}")
    console.print(f"money in {data['currency'] or 'the quote currency'}")


def _print_summary(data: dict[str, Any], console: Any) -> None:
    s = data["summary"]
    summary = _table("Summary", show_header=False)
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    ci = s["win_rate_ci"]
    win = f"{fmt(s['win_rate'], 'pct')} ({s['wins']}/{s['trades']}; 95% CI {ci[0]:.0%}-{ci[1]:.0%})" if ci else "-"
    expectancy = f"{_money(s['expectancy'], data, True)} ({fmt(s['expectancy_r'], 'ratio')} R)"
    pairs = [
        ("closed trades", str(s["trades"])), ("win rate", win),
        ("total P&L", _money(s["total_pnl"], data, True)), ("profit factor", fmt(s["profit_factor"], "ratio")),
        ("average P&L", _money(s["avg_pnl"], data, True)), ("expectancy", expectancy),
        ("max drawdown", f"{_money(s['max_drawdown'], data)} ({s['max_drawdown_pct']:.2%})"),
        ("fees", _money(s["total_fees"], data)),
        ("Sharpe", cell(s, "sharpe", "ratio")), ("Sortino", cell(s, "sortino", "ratio")),
        ("avg holding", fmt(s["avg_holding_seconds"], "hold")),
        ("equity", f"{_money(data['start_equity'], data)} → {_money(data['final_equity'], data)}"),
    ]
    for left, right in zip(pairs[::2], pairs[1::2]):
        summary.add_row(*left, *right)
    console.print()
    console.print(summary)


def _print_breakdowns(data: dict[str, Any], console: Any) -> None:
    for dimension, rows in data["by"].items():
        if not rows:
            continue
        table = _table(DIMENSION_TITLES[dimension])
        table.add_column("group")
        for header, _, _ in METRIC_COLUMNS:
            table.add_column(header, justify="right")
        for row in rows:
            label = row["label_text"].removesuffix(" UTC")
            values = [_coloured(cell(row, key, kind, data["currency"]), key, row[key])
                      for _, key, kind in METRIC_COLUMNS]
            table.add_row(_escape(label), *values)
        console.print()
        console.print(table)
    console.print(f"[dim]P&L, exp. and maxDD in {data['currency'] or 'the quote currency'}; "
                  "exp. = expectancy per trade (= average P&L), R = expectancy in R multiples, "
                  "hold = average holding time; definitions in docs/archiver.md[/]")


def _print_versions(data: dict[str, Any], console: Any) -> None:
    versions = data["versions"][-8:]
    if not versions:
        return
    table = _table("Strategy versions side by side")
    table.add_column("")
    for v in versions:
        table.add_column(_escape(f"{v['name']} v{v['version']}"), justify="right")
    params = sorted({k for v in versions for k in v["params"]})
    for name in params:
        table.add_row(_escape(name), *[fmt(v["params"].get(name)) for v in versions])
    table.add_row("status", *[v["status"] for v in versions])
    table.add_row("active from", *[_when(v["started_at"]) for v in versions])
    table.add_row("until", *[_when(v["ended_at"]) for v in versions])
    for header, key, kind in METRIC_COLUMNS[:-1]:
        table.add_row(header, *[cell(v["metrics"], key, kind, data["currency"]) for v in versions])
    console.print()
    console.print(table)


def _print_proposals(data: dict[str, Any], console: Any) -> None:
    proposals = data["proposals"]
    if not proposals:
        return
    rejected = sum(1 for p in proposals if p["verdict"] == "rejected")
    console.print()
    console.print(f"[bold]Proposals[/]: {len(proposals)} ({len(proposals) - rejected} accepted, {rejected} rejected); "
                  "the latest:")
    for p in proposals[-10:]:
        console.print(f"  {_escape(_proposal_line(p))}")


def _print_patterns(data: dict[str, Any], console: Any) -> None:
    console.print()
    console.print(f"[bold]Patterns[/] (each over ≥ {data['min_pattern_trades']} trades; 95% Wilson intervals): "
                  f"{data['pattern_search']}")
    if not data["patterns"]:
        hint = _escape("(lower [plugins.archiver] min_pattern_trades or pass --min-trades for smaller samples)")
        if data["groups_tested"]:
            console.print("  none: no group's q-value is within the false discovery rate (what the trades show "
                          "along these groups is as likely to be chance)")
            return
        console.print(f"  none ({data['summary']['trades']} closed trades): a claim needs "
                      f"{data['min_pattern_trades']} trades behind it in a group of fewer than all trades " + hint)
        return
    for p in data["patterns"]:
        mark = "[green]●[/]" if p["win_rate"] > p["baseline_win_rate"] else "[red]●[/]"
        console.print(f"  {mark} {_escape(p['text'])}")


def _print_activity(data: dict[str, Any], console: Any) -> None:
    a = data["activity"]
    sig = a["signals"]
    console.print()
    console.print(
        f"[bold]Activity[/]: {a['cycles']} cycles; "
        f"signals {sig['LONG']} long, {sig['SHORT']} short, {sig['HOLD']} hold; "
        f"risk verdicts {a['verdicts_approved']} approved, {a['verdicts_vetoed']} vetoed; {a['orders']} orders, "
        f"{a['fills']} fills, {a['execution_errors']} execution errors, {a['plugin_errors']} plugin errors"
    )
    if data["phases"]:
        parts = ", ".join(f"{name} {v['avg_ms']:.1f}/{v['p95_ms']:.1f}" for name, v in data["phases"].items())
        console.print(f"[bold]Phase timings[/] (avg/p95 ms): {parts}")
    if data["learnings"]:
        console.print(f"[bold]Learnings[/] ({len(data['learnings'])}, latest 5):")
        for item in data["learnings"][-5:]:
            source, text = _escape(item["source"] or "-"), _escape(item["text"] or "")
            console.print(f"  #{item['iteration']} {_escape(item['id'])} ({source}) {text}")


def _coloured(text: str, key: str, value: Any) -> str:
    if key in ("total_pnl", "avg_pnl") and isinstance(value, float):
        return f"[green]{text}[/]" if value > 0 else f"[red]{text}[/]" if value < 0 else text
    return text


def _when(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value:%Y-%m-%d %H:%M}"


# -- HTML -----------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;\
color:#1d2330;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde1e8;\
padding-bottom:.3rem}
.muted{color:#667085;font-size:.9rem}table{border-collapse:collapse;margin:.5rem 0;font-size:.88rem}
th,td{padding:.25rem .6rem;text-align:right;border-bottom:1px solid #eef0f4}\
th:first-child,td:first-child{text-align:left}
th{background:#f6f7f9;font-weight:600}.pos{color:#15803d}.neg{color:#b91c1c}\
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
.plot svg{width:100%;height:auto}.kpis{display:flex;flex-wrap:wrap;gap:.6rem}\
.kpi{background:#f6f7f9;border-radius:6px;padding:.5rem .8rem;min-width:8.5rem}
.kpi b{display:block;font-size:1.1rem}li{margin:.25rem 0}.notable-up{color:#15803d}.notable-down{color:#b91c1c}
"""


def render_html(data: dict[str, Any], trades_chart: str = "") -> str:
    """One self-contained HTML page: inline CSS, the interactive equity curve and ``trades_chart`` (the
    trades on candles, ``report_chart``) with their scripts inline, and inline SVG plots; nothing fetched."""
    e = html.escape
    s = data["summary"]
    ci = s["win_rate_ci"]
    kpis = [
        ("closed trades", str(s["trades"])),
        ("win rate", f"{fmt(s['win_rate'], 'pct')}"
                     + (f" <span class=muted>(95% CI {ci[0]:.0%}–{ci[1]:.0%})</span>" if ci else "")),
        ("total P&L", e(_money(s["total_pnl"], data, True))), ("profit factor", fmt(s["profit_factor"], "ratio")),
        ("expectancy", f"{e(_money(s['expectancy'], data, True))} / {fmt(s['expectancy_r'], 'ratio')} R"),
        ("max drawdown", f"{e(_money(s['max_drawdown'], data))} ({s['max_drawdown_pct']:.2%})"),
        ("Sharpe", cell(s, "sharpe", "ratio")), ("Sortino", cell(s, "sortino", "ratio")),
        ("avg holding", fmt(s["avg_holding_seconds"], "hold")),
        ("equity", f"{e(_money(data['start_equity'], data))} → {e(_money(data['final_equity'], data))}"),
    ]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>gobot report — {e(data['scope'])}</title><style>{CSS}</style></head><body>",
        f"<h1>gobot performance report</h1><p class=muted>{e(data['scope'])} · archive {e(data['database'])} · "
        f"money in {e(data['currency'] or 'the quote currency')} · "
        f"generated {e(_when(data['generated_at']))} UTC</p>",
        "<div class=kpis>" + "".join(f"<div class=kpi><span class=muted>{e(k)}</span><b>{v}</b></div>" for k, v in kpis)
        + "</div>",
    ]
    parts.extend(_html_charts(data, trades_chart))
    parts.append(profiles_html(data, cell))

    parts.append(f"<h2>Patterns</h2><p class=muted>Each claim is over at least {data['min_pattern_trades']} trades, "
                 "with a 95% Wilson interval for its win rate, its p-value and its Benjamini–Hochberg q-value: "
                 f"{e(data['pattern_search'])}.</p>")
    if data["patterns"]:
        items = []
        for p in data["patterns"]:
            cls = "notable-up" if p["win_rate"] > p["baseline_win_rate"] else "notable-down"
            items.append(f"<li class='{cls}'>{e(p['text'])}</li>")
        parts.append("<ul>" + "".join(items) + "</ul>")
    else:
        parts.append(f"<p>None ({s['trades']} closed trades): a claim needs {data['min_pattern_trades']} "
                     "trades behind it and a q-value within the false discovery rate.</p>")

    for dimension, rows in data["by"].items():
        if rows:
            parts.append(f"<h2>{e(DIMENSION_TITLES[dimension])}</h2>" + _html_metrics_table(rows, data["currency"]))

    if data["versions"]:
        parts.append(_html_versions_table(data["versions"], data["currency"]))
    if data["proposals"]:
        parts.append(_html_proposals(data["proposals"]))
    if data["drift"]:
        parts.append(drift_html(data))

    a = data["activity"]
    parts.append(
        f"<h2>Activity</h2><p>{a['cycles']} cycles; signals {a['signals']['LONG']} long, {a['signals']['SHORT']} "
        f"short, {a['signals']['HOLD']} hold; risk verdicts {a['verdicts_approved']} approved, "
        f"{a['verdicts_vetoed']} vetoed; {a['orders']} orders, {a['fills']} fills, {a['execution_errors']} execution "
        f"errors, {a['plugin_errors']} plugin errors.</p>"
    )
    if data["phases"]:
        rows = "".join(f"<tr><td>{e(n)}</td><td>{v['avg_ms']:.2f}</td><td>{v['p95_ms']:.2f}</td>"
                       f"<td>{v['max_ms']:.2f}</td></tr>" for n, v in data["phases"].items())
        parts.append("<h2>Phase timings (ms)</h2><table><tr><th>phase</th><th>avg</th><th>p95</th><th>max</th></tr>"
                     f"{rows}</table>")
    if data["learnings"]:
        rows = "".join(f"<tr><td>#{x['iteration']}</td><td>{e(x['source'] or '')}</td>"
                       f"<td style='text-align:left'>{e(x['text'] or '')}</td><td style='text-align:left' "
                       f"class=muted>{e(json.dumps(x['evidence'], default=str)[:200])}</td></tr>"
                       for x in data["learnings"][-20:])
        parts.append(f"<h2>Learnings (latest 20 of {len(data['learnings'])})</h2><table><tr><th>cycle</th>"
                     f"<th>source</th><th>learning</th><th>evidence</th></tr>{rows}</table>")
    parts.append("<p class=muted>Definitions: docs/archiver.md. Sharpe and Sortino are annualised from the equity "
                 "curve's own sampling (returns per year observed); short samples give large values.</p></body></html>")
    return "\n".join(parts)


def _html_charts(data: dict[str, Any], trades_chart: str) -> list[str]:
    """The equity curve (interactive, carrying the chart kit's scripts for the page), the drawdown,
    ``trades_chart``, then P&L by hour and by confidence band (the static plots need matplotlib)."""
    from .report_chart import equity_chart

    parts = ["<h2>Equity and drawdown</h2>" + equity_chart(data, include_assets=True)]
    if importlib.util.find_spec("matplotlib") is None:  # the core install: no static plots
        return [*parts, f"<p class=muted>{html.escape(NO_PLOTS)}</p>", trades_chart]
    plots = make_plots(data)
    return [*parts, "<div class=plot>" + plots["drawdown"] + "</div>", trades_chart,
            "<h2>P&amp;L by hour and by confidence band</h2><div class=grid><div class=plot>" + plots["hour"]
            + "</div><div class=plot>" + plots["confidence"] + "</div></div>"]


def _html_proposals(proposals: list[dict[str, Any]]) -> str:
    rejected = sum(1 for p in proposals if p["verdict"] == "rejected")
    return (f"<h2>Proposals</h2><p>{len(proposals)} proposed parameter changes: {len(proposals) - rejected} "
            f"accepted, {rejected} rejected (the latest 20):</p><ul>"
            + "".join(f"<li>{html.escape(_proposal_line(p))}</li>" for p in proposals[-20:]) + "</ul>")


def _html_versions_table(versions: list[dict[str, Any]], currency: str = "") -> str:
    e = html.escape
    params = sorted({k for v in versions for k in v["params"]})
    head = "".join(f"<th>{e(v['name'])} v{v['version']}</th>" for v in versions)
    rows = [f"<tr><td>{e(name)}</td>" + "".join(f"<td>{e(fmt(v['params'].get(name)))}</td>" for v in versions)
            + "</tr>" for name in params]
    rows.append("<tr><td>status</td>" + "".join(f"<td>{e(v['status'])}</td>" for v in versions) + "</tr>")
    rows.append("<tr><td>active from</td>" + "".join(f"<td>{e(_when(v['started_at']))}</td>" for v in versions)
                + "</tr>")
    rows.append("<tr><td>until</td>" + "".join(f"<td>{e(_when(v['ended_at']))}</td>" for v in versions) + "</tr>")
    rows.append("<tr><td>why</td>" + "".join(f"<td>{e(v['reason'] or '')}</td>" for v in versions) + "</tr>")
    for header, key, kind in METRIC_COLUMNS[:-1]:
        rows.append(f"<tr><td>{e(header)}</td>"
                    + "".join(f"<td>{e(cell(v['metrics'], key, kind, currency))}</td>" for v in versions) + "</tr>")
    return f"<h2>Strategy versions side by side</h2><table><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def _html_metrics_table(rows: list[dict[str, Any]], currency: str = "") -> str:
    e = html.escape
    unit = f" {currency}" if currency else ""
    head = ("<tr><th>group</th>" + "".join(f"<th>{e(h + (unit if k in MONEY_METRICS else ''))}</th>"
                                           for h, k, _ in METRIC_COLUMNS)
            + "<th>win% 95% CI</th></tr>")
    body = []
    for row in rows:
        cells = []
        for _, key, kind in METRIC_COLUMNS:
            value = row[key]
            cls = (" class=pos" if key == "total_pnl" and isinstance(value, float) and value > 0
                   else " class=neg" if key == "total_pnl" and isinstance(value, float) and value < 0 else "")
            cells.append(f"<td{cls}>{e(cell(row, key, kind, currency))}</td>")
        ci = row["win_rate_ci"]
        cells.append(f"<td>{ci[0]:.0%}–{ci[1]:.0%}</td>" if ci else "<td>-</td>")
        body.append(f"<tr><td>{e(row['label_text'])}</td>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


#: Said in the report instead of the plots when matplotlib is not installed (the extra ``plots``).
NO_PLOTS = ("The static plots (drawdown, P&L by hour and by confidence band) need matplotlib: "
            "pip install 'gobot-trading[plots]'.")


def make_plots(data: dict[str, Any]) -> dict[str, str]:
    """The static plots as inline SVG strings: drawdown, P&L by hour and by confidence band (matplotlib,
    Agg-free SVG backend, no pyplot state). The equity curve is interactive (``report_chart``)."""
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "gobot"  # stable ids: the same data gives the same file
    from matplotlib.figure import Figure

    curve = data["equity_curve"]
    times = [t for t, _ in curve]
    equity = [v for _, v in curve]
    plots: dict[str, str] = {}

    fig = Figure(figsize=(10, 2.4))
    ax = fig.add_subplot()
    if curve:
        peak, underwater = -math.inf, []
        for value in equity:
            peak = max(peak, value)
            underwater.append((value / peak - 1.0) * 100 if peak > 0 else 0.0)
        t, u = _thin(times, underwater)
        ax.fill_between(t, u, 0, color="#dc2626", alpha=0.35, linewidth=0)
        ax.plot(t, u, color="#b91c1c", linewidth=0.9)
    ax.set_title("Drawdown from the running peak (%)", loc="left", fontsize=11)
    ax.set_ylabel("% below the peak", fontsize=9)
    ax.set_xlabel("time (UTC)", fontsize=9)
    _style(ax, fig)
    plots["drawdown"] = _svg(fig)

    by_hour = {row["label"]: row for row in data["by"]["hour"]}
    hours = list(range(24))
    pnl = [by_hour[h]["total_pnl"] if h in by_hour else 0.0 for h in hours]
    counts = [by_hour[h]["trades"] if h in by_hour else 0 for h in hours]
    unit = data["currency"] or "quote currency"
    plots["hour"] = _bars([f"{h:02d}" for h in hours], pnl, counts, f"P&L by hour of entry (UTC), {unit}")

    bands = data["by"]["confidence_band"]
    plots["confidence"] = _bars([row["label_text"] for row in bands], [row["total_pnl"] for row in bands],
                                [row["trades"] for row in bands], f"P&L by confidence band, {unit}", rotate=True)
    return plots


def _bars(labels: list[str], values: list[float], counts: list[int], title: str, rotate: bool = False) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 3.2))
    ax = fig.add_subplot()
    colours = ["#16a34a" if v > 0 else "#dc2626" if v < 0 else "#9ca3af" for v in values]
    positions = list(range(len(labels)))
    ax.bar(positions, values, color=colours)
    ax.axhline(0, color="#6b7280", linewidth=0.8)
    ax.set_xticks(positions, labels, fontsize=7, rotation=45 if rotate else 0)
    for x, (value, n) in enumerate(zip(values, counts)):
        if n:
            ax.annotate(f"n={n}", (x, value), ha="center", va="bottom" if value >= 0 else "top", fontsize=6,
                        color="#4b5563")
    ax.set_title(title, loc="left", fontsize=11)
    _style(ax, fig)
    return _svg(fig)


def _style(ax: Any, fig: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#e5e7eb", linewidth=0.6)
    ax.tick_params(labelsize=8)
    fig.tight_layout()


def _thin(xs: list[Any], ys: list[float]) -> tuple[list[Any], list[float]]:
    """At most MAX_PLOT_POINTS points, always keeping the last (a 100,000-point curve stays small)."""
    if len(xs) <= MAX_PLOT_POINTS:
        return xs, ys
    step = math.ceil(len(xs) / MAX_PLOT_POINTS)
    keep = list(range(0, len(xs), step))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


# -- the command ----------------------------------------------------------------------------------


def run_report(view: Any, run_id: str | None, all_runs: bool, html_path: str | None, as_json: bool,
               min_trades: int | None, database_url: str | None) -> None:
    import click
    from rich.console import Console

    from . import NAME, ArchiverConfig
    from .store import ArchiveStore, default_url, safe_url, sqlite_path

    config = ArchiverConfig.of(view, NAME)
    url = database_url or config.database_url or default_url(view.config.state_path)
    path = sqlite_path(url)
    if path and path != ":memory:" and not Path(path).exists():
        raise click.ClickException(f"no archive at {path}: run `gobot start` (with the archiver plugin enabled) first")
    console = Console(stderr=as_json)
    store = ArchiveStore(url, write_timeout=config.write_timeout_seconds)
    try:
        try:
            store.migrate()  # an archive written by an older gobot is upgraded in place, data kept
            with console.status("Reading the archive and computing metrics…"):
                data = build_report(store, run_id, all_runs, min_trades or config.min_pattern_trades,
                                    config.confidence_bands, config.pattern_fdr, view.config.trading.portfolio_currency)
            if html_path:
                from .report_chart import trade_chart

                with console.status("Reading the trades' stories and the candles…"):
                    chart = trade_chart(view, store, data, [r["run_id"] for r in data["runs"]])
        except ReportError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:  # one readable line, never a traceback (and no password from the URL)
            from .records import Redactor

            message = Redactor()(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            raise click.ClickException(f"cannot read the archive {safe_url(url)}: {message}") from None
    finally:
        store.close()
    if as_json:
        click.echo(to_json(data))
    else:
        render_terminal(data, console)
    if html_path:
        with console.status("Drawing the plots…"):
            page = render_html(data, chart)
        target = Path(html_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")
        console.print(f"HTML report written to {target} ({len(page) // 1024} KiB, self-contained)")
