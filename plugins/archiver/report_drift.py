"""The report's "Drift: live vs paper twin" section, from the ``drift`` table (``gobot_on_drift``; since 0006).

Per day (UTC, of the close), per symbol and in total: the trades measured, the live and twin P&L, the
gap (live - twin) in the portfolio currency and in R (the sum of each trade's gap over its initial risk;
a missed trade has no live risk and counts in money only),
the cumulative gap, and the parts that add up to the gap. Trades only the twin made (``paper_only``:
live entries vetoed by a drift breach) have no gap; they are counted apart. The section shows only
when the chosen runs have drift rows.
"""

from __future__ import annotations

import html
from typing import Any

from gobot_hookspecs import DRIFT_PARTS

#: (header, key) of the tables: the parts, the two delays shown together.
COLUMNS = (("n", "trades"), ("live", "live"), ("twin", "twin"), ("gap", "gap"), ("gap R", "gap_r"),
           ("slip in", "entry_slippage"), ("slip out", "exit_slippage"), ("delay", "delay"),
           ("missed/partial", "missed_or_partial"), ("fees", "fees"), ("funding", "funding"),
           ("other", "funding_other"),
           ("cumulative", "cumulative"), ("cum. R", "cumulative_r"))
MONEY = {"live", "twin", "gap", "entry_slippage", "exit_slippage", "delay", "missed_or_partial", "fees",
         "funding", "funding_other", "cumulative"}
TITLES = {"day": "per day (UTC, of the close)", "symbol": "per symbol", "all": "all trades"}


def build_drift(store: Any, run_ids: list[str]) -> dict[str, Any] | None:
    """The section's data, or None when the runs have no drift rows."""
    rows = store.rows("drift", run_ids, order_by=("closed_at", "id"))
    if not rows:
        return None
    measured = [r for r in rows if r["kind"] != "paper_only"]
    return {
        "trades": len(measured), "missed": sum(1 for r in measured if r["kind"] == "missed"),
        "paper_only": len(rows) - len(measured), "modes": sorted({r["mode"] for r in rows}),
        "by": {"day": _lines(measured, lambda r: f"{r['closed_at']:%Y-%m-%d}" if r["closed_at"] else "-"),
               "symbol": _lines(measured, lambda r: r["symbol"]),
               "all": _lines(measured, lambda r: "all")},
    }


def _lines(rows: list[dict[str, Any]], label: Any) -> list[dict[str, Any]]:
    """One line per label (sorted), the running sums carried from line to line."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(label(row), []).append(row)
    lines, cumulative, cumulative_r = [], 0.0, 0.0
    for key in sorted(groups):
        group = groups[key]
        line: dict[str, Any] = {"label": key, "trades": len(group),
                                "missed": sum(1 for r in group if r["kind"] == "missed"),
                                "live": _sum(group, "live_pnl"), "twin": _sum(group, "twin_pnl"),
                                "gap": _sum(group, "gap"), "gap_r": _sum(group, "gap_r")}
        line |= {part: _sum(group, part) for part in DRIFT_PARTS}
        line["delay"] = line["entry_delay"] + line["exit_delay"]
        cumulative += line["gap"]
        cumulative_r += line["gap_r"]
        line |= {"cumulative": cumulative, "cumulative_r": cumulative_r}
        lines.append(line)
    return lines


def _sum(rows: list[dict[str, Any]], key: str) -> float:
    return sum(r[key] or 0.0 for r in rows)


def _cell(line: dict[str, Any], key: str, currency: str) -> str:
    from gobot_hookspecs.money import amount_text

    value = line[key]
    if key == "trades":
        return str(value) + (f" ({line['missed']} missed)" if line["missed"] else "")
    value = round(value, 8) or 0.0  # rounding noise never shows as -0.00
    return amount_text(value, currency, signed=True, significant=2) if key in MONEY else f"{value:+.2f}"


def _note(drift: dict[str, Any], currency: str) -> str:
    extra = f"; {drift['paper_only']} trades the twin made alone (paper_only, after a breach)" \
        if drift["paper_only"] else ""
    return (f"{drift['trades']} trades measured ({', '.join(drift['modes'])}), {drift['missed']} missed{extra}. "
            f"Money in {currency or 'the quote currency'}, live - twin; gap R = the gaps in R (over each trade's "
            "initial risk; a missed trade has none and counts in money only), summed; slip in/out, delay "
            "(entry + exit), missed/partial, fees and funding add up to the gap (docs/drift.md).")


def print_drift(data: dict[str, Any], console: Any, table: Any, escape: Any) -> None:
    """The section as rich tables (``table(title)`` makes one in the report's style)."""
    drift = data.get("drift")
    if not drift:
        return
    for by, lines in drift["by"].items():
        out = table(f"Drift: live vs paper twin, {TITLES[by]}")
        out.add_column(by)
        for header, _ in COLUMNS:
            out.add_column(header, justify="right")
        for line in lines:
            out.add_row(escape(line["label"]), *[_cell(line, key, data["currency"]) for _, key in COLUMNS])
        console.print()
        console.print(out)
    console.print(f"[dim]{escape(_note(drift, data['currency']))}[/]")


def drift_html(data: dict[str, Any]) -> str:
    """The section as HTML tables ("" without drift rows)."""
    drift = data.get("drift")
    if not drift:
        return ""
    e = html.escape
    parts = ["<h2>Drift: live vs paper twin</h2>", f"<p class=muted>{e(_note(drift, data['currency']))}</p>"]
    for by, lines in drift["by"].items():
        head = f"<tr><th>{e(by)}</th>" + "".join(f"<th>{e(h)}</th>" for h, _ in COLUMNS) + "</tr>"
        body = "".join(
            f"<tr><td>{e(line['label'])}</td>"
            + "".join(f"<td{_class(line, key)}>{e(_cell(line, key, data['currency']))}</td>" for _, key in COLUMNS)
            + "</tr>" for line in lines)
        parts.append(f"<h3>{e(TITLES[by].capitalize())}</h3><table class=drift-{by}>{head}{body}</table>")
    return "\n".join(parts)


def _class(line: dict[str, Any], key: str) -> str:
    if key not in ("gap", "cumulative") or abs(line[key]) < 0.005:
        return ""
    return " class=pos" if line[key] > 0 else " class=neg"
