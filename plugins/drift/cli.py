"""``gobot drift report``: live trades against their paper twins, per day, per symbol and cumulative, in the
quote currency and in R. Light at import: click only (this runs for ``gobot --help``)."""

from __future__ import annotations

import json

import click

COLUMNS = ("trades", "missed", "live", "twin", "gap", "gap_r", "missed_or_partial", "entry_delay", "entry_slippage",
           "exit_delay", "exit_slippage", "fees", "funding", "funding_other")


def summarise(rows: list[dict], by: str) -> list[dict]:
    """One line per ``by`` (``day``, ``symbol`` or ``all``) with the parts summed, plus a cumulative gap."""
    from .attribution import PARTS

    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row["kind"] == "paper_only":
            continue
        key = {"day": (row["closed_at"] or "")[:10], "symbol": row["symbol"], "all": "all"}[by]
        groups.setdefault(key, []).append(row)
    lines, cumulative = [], 0.0
    for key in sorted(groups):
        group = groups[key]
        gap = sum(r["gap"] or 0.0 for r in group)
        in_r = [r["gap"] / r["risk"] for r in group if r["kind"] == "matched" and r["risk"]]
        cumulative += gap
        line = {by: key, "trades": len(group), "missed": sum(1 for r in group if r["kind"] == "missed"),
                "live": sum(r["live_pnl"] or 0.0 for r in group), "twin": sum(r["twin_pnl"] or 0.0 for r in group),
                "gap": gap, "gap_r": sum(in_r) / len(in_r) if in_r else None,
                "cumulative": cumulative, "currency": group[-1]["currency"]}
        line |= {part: sum(r[part] or 0.0 for r in group) for part in PARTS}
        paid: dict[str, float] = {}
        for row in group:
            for asset, amount in (row["commissions"] or {}).items():
                paid[asset] = paid.get(asset, 0.0) + amount
        line["commissions"] = paid  # as charged, in their own assets (BNB among them)
        lines.append(line)
    return lines


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return " ".join(f"{asset} {amount:.8g}" for asset, amount in sorted(value.items())) or "-"
    return f"{round(value, 8) or 0.0:+.2f}" if isinstance(value, float) else str(value)  # never -0.00


def add_drift_command(cli: click.Group, load_config) -> None:
    @cli.group(name="drift")
    def drift():
        """The drift sentinel: live trades against their paper twins and their backtest."""

    @drift.command(name="report")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                  help="Config file (default: $GOBOT_CONFIG, else ./config.toml, else built-in defaults).")
    @click.option("--by", type=click.Choice(["day", "symbol", "all"]), default="day", show_default=True,
                  help="One line per day (UTC, of the close), per symbol, or one for everything.")
    @click.option("--mode", type=click.Choice(["testnet", "live"]), default=None,
                  help="Only trades made on the test network, or with real money (default: both).")
    @click.option("--json", "as_json", is_flag=True, help="Print the lines and the breaches as JSON.")
    def report(config_path, by, mode, as_json):
        """Where live P&L and the paper twin's part ways, and why.

        \b
        Per line: trades (missed: the live order never filled), the live and twin P&L, the gap
        (live - twin) in the quote currency and in R (per trade, of the live trades' initial risk),
        and the gap split into missed or partial fills, entry and exit delay, entry and exit
        slippage, fees (BNB commissions included) and funding or other; then the cumulative gap and
        the commissions as charged, in their own assets. Then every breach and reset of the sentinel.
        See docs/drift.md.
        """
        from . import store

        view = load_config(config_path)
        state_dir = view.config.state_path
        lines = summarise(store.trades(state_dir, mode), by)
        events = store.events(state_dir)
        if as_json:
            click.echo(json.dumps({"by": by, "lines": lines, "events": events}, indent=2, default=str))
            return
        if not lines:
            click.echo(f"No trade measured against its twin yet in {store.path_in(state_dir)}.")
        else:
            header = [by, *COLUMNS, "cumulative", "commissions"]
            click.echo(f"Live - paper twin, in {lines[-1]['currency'] or 'the quote currency'} (gap_r in R per trade)")
            table = [header] + [[_cell(line.get(c)) for c in header] for line in lines]
            widths = [max(len(row[i]) for row in table) for i in range(len(header))]
            for row in table:
                click.echo("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
        for event in events:
            click.echo(f"{event['time'][:16]} {event['kind']}: {event['text']}")
