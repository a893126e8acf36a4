""""Profiles compared" in ``gobot report``: the sleeves of a side-by-side profiles run (``gobot start
--profile A --profile B``, one archived run per profile, tagged with the group and the profile) in one
table with the report's own metrics (``gobot_hookspecs.metrics``), their sample sizes and intervals,
and a caution while the samples are too small to tell the profiles apart; the HTML page adds each
sleeve's equity curve in one chart.
"""

from __future__ import annotations

import html
from typing import Any, Callable, Sequence

from gobot_hookspecs import metrics
from gobot_hookspecs.money import amount_text


def group_members(runs: Sequence[dict[str, Any]], run_id: str | None) -> tuple[str | None, list[dict[str, Any]]]:
    """The sleeve group that ``run_id`` names (a group id, or one of its sleeves' run ids; None: the latest
    run), and its runs in the order they were started; ``(None, [])`` when that run is not in a group."""
    if run_id is None:
        named = runs[:1]
    else:
        named = [r for r in runs if r["run_id"] == run_id or r.get("group_id") == run_id][:1]
    group = named[0].get("group_id") if named else None
    if not group:
        return None, []
    return group, sorted((r for r in runs if r.get("group_id") == group), key=lambda r: r["id"])


def build_profiles(store: Any, group: str, members: Sequence[dict[str, Any]], trades: Callable[[str], list[Any]],
                   currency: str) -> dict[str, Any]:
    """The comparison as plain data (the --json output's ``profiles``): one row per sleeve with its metrics
    (each over its own capital and mark-to-market curve), the intervals, and the caution."""
    rows = []
    for run in members:
        own = trades(run["run_id"])
        curve = [(c["time"], c["equity"]) for c in store.rows("cycles", [run["run_id"]], order_by=("time", "id"))]
        capital = run["initial_capital"]
        m = metrics.trade_metrics(own, capital, curve=curve or None, currency=currency)
        final = curve[-1][1] if curve else capital + m.total_pnl
        row = m.as_dict()
        row.update(
            profile=run.get("profile") or run["run_id"], run_id=run["run_id"], initial_capital=capital,
            final_equity=final, return_pct=(final / capital - 1.0) if capital else None,
            cycles=run["cycles"], first=run["first"], last=run["last"],
            win_rate_ci=list(metrics.wilson_interval(m.wins, m.trades)) if m.trades else None,
            expectancy_ci=_pair(metrics.mean_interval([t.pnl for t in own])),
            equity_curve=curve,
        )
        rows.append(row)
    return {"group": group, "rows": rows, "min_sample": metrics.MIN_RATIO_SAMPLE, "cautions": cautions(rows)}


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return list(interval) if interval is not None else None


def cautions(rows: Sequence[dict[str, Any]]) -> list[str]:
    """What keeps the table from ranking the profiles: samples under the report's minimum
    (``metrics.MIN_RATIO_SAMPLE``), win-rate and expectancy intervals that overlap, unequal time spans."""
    found = []
    small = [f"{r['profile']} (n={r['trades']})" for r in rows if not metrics.enough_for_ratios(r["trades"])]
    if small:
        found.append(f"too few closed trades to compare: {', '.join(small)}; below {metrics.MIN_RATIO_SAMPLE} "
                     "a difference between profiles is mostly chance (Sharpe and Sortino are not shown)")
    for key, what in (("win_rate_ci", "win rates"), ("expectancy_ci", "expectancies")):
        intervals = [r[key] for r in rows if r[key] is not None]
        if len(intervals) >= 2 and len(intervals) == len(rows) and _all_overlap(intervals):
            found.append(f"the {what}' 95% intervals all overlap: this sample does not tell the profiles apart")
    spans = {(r["first"], r["last"]) for r in rows}
    if len(spans) > 1 and len({r["first"] for r in rows}) > 1:
        found.append("the sleeves did not start at the same time: their numbers cover different markets")
    return found


def _all_overlap(intervals: Sequence[Sequence[float]]) -> bool:
    return max(low for low, _ in intervals) <= min(high for _, high in intervals)


#: (header, key, format) of the comparison's columns; cells come from the report's own ``cell``.
COLUMNS = (
    ("n", "trades", "num"), ("win%", "win_rate", "pct"), ("exp.", "expectancy", "money"),
    ("PF", "profit_factor", "ratio"), ("return", "return_pct", "return"), ("maxDD", "max_drawdown_pct", "return"),
    ("Sharpe", "sharpe", "big"), ("Sortino", "sortino", "big"), ("fees", "total_fees", "amount"),
)


def _text(row: dict[str, Any], key: str, kind: str, cell: Callable[..., str], currency: str) -> str:
    if kind == "return":
        value = row[key]
        return "-" if value is None else f"{value:+.2%}" if key == "return_pct" else f"{value:.2%}"
    return cell(row, key, kind, currency)


def _interval(values: list[float] | None, spec: str, currency: str = "") -> str:
    """``low–high``: percents with ``spec``, else amounts as the report's tables write them."""
    if values is None:
        return "-"
    if spec:
        return f"{spec.format(values[0])}–{spec.format(values[1])}"
    return "{}…{}".format(*(amount_text(v, currency, signed=True, significant=2) for v in values))


def print_profiles(data: dict[str, Any], console: Any, table_of: Callable[..., Any], cell: Callable[..., str],
                   escape: Callable[[str], str]) -> None:
    """The terminal table, the profiles side by side (a column each, as the strategy versions are: a row per
    profile would not fit 80 columns with the intervals), and the cautions."""
    profiles = data.get("profiles")
    if not profiles:
        return
    currency, rows = data["currency"], profiles["rows"]
    table = table_of(f"Profiles compared (group {profiles['group']})")
    table.add_column("")
    for row in rows:
        table.add_column(escape(row["profile"]), justify="right")
    lines = [(header, [_text(row, key, kind, cell, currency) for row in rows]) for header, key, kind in COLUMNS]
    lines.insert(2, ("win% 95% CI", [_interval(row["win_rate_ci"], "{:.0%}") for row in rows]))
    lines.insert(4, ("exp. 95% CI", [_interval(row["expectancy_ci"], "", currency) for row in rows]))
    lines.append(("cycles", [str(row["cycles"]) for row in rows]))
    for header, values in lines:
        table.add_row(header, *values)
    console.print()
    console.print(table)
    console.print(f"[dim]each profile on its own sleeve of capital, the same market and time span; exp. and fees in "
                  f"{currency or 'the quote currency'}; return and maxDD of the sleeve's equity[/]")
    for caution in profiles["cautions"]:
        console.print(f"  [yellow]caution:[/] {escape(caution)}")


def profiles_html(data: dict[str, Any], cell: Callable[..., str]) -> str:
    """The same table for the HTML page, then every sleeve's equity curve in one interactive chart."""
    from gobot_hookspecs.tradechart import equity_lines_embed

    profiles = data.get("profiles")
    if not profiles:
        return ""
    e, currency = html.escape, data["currency"]
    head = ("<tr><th>profile</th>" + "".join(f"<th>{e(h)}</th>" for h, _, _ in COLUMNS)
            + "<th>win% 95% CI</th><th>exp. 95% CI</th><th>cycles</th></tr>")
    body = "".join(
        f"<tr><td>{e(row['profile'])}</td>"
        + "".join(f"<td>{e(_text(row, key, kind, cell, currency))}</td>" for _, key, kind in COLUMNS)
        + f"<td>{e(_interval(row['win_rate_ci'], '{:.0%}'))}</td><td>{e(_interval(row['expectancy_ci'], '', currency))}"
        f"</td><td>{row['cycles']}</td></tr>"
        for row in profiles["rows"])
    notes = "".join(f"<p class=muted>Caution: {e(c)}</p>" for c in profiles["cautions"])
    lines = [(row["profile"], [int(t.timestamp() * 1000) for t, _ in row["equity_curve"]],
              [v for _, v in row["equity_curve"]]) for row in profiles["rows"]]
    chart = equity_lines_embed(lines, currency=currency, title=f"Equity by profile ({currency or 'quote currency'})",
                               height=300, element_id="profiles-equity", include_assets=False, theme="light")
    return (f"<h2>Profiles compared (group {e(profiles['group'])})</h2><p class=muted>Each profile over its own "
            f"sleeve of capital, the same market and time span; money in {e(currency or 'the quote currency')}."
            f"</p><table>{head}{body}</table>{notes}{chart}")
