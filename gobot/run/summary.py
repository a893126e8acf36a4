"""What a person reads at the end of a run and in ``gobot status``: the per-cycle table and the summary."""

from __future__ import annotations

from typing import Any

from gobot_hookspecs import metrics

from gobot.run.state import BotState, StateStore


def run_metrics(state: BotState) -> dict[str, Any]:
    """Trades, win rate, P&L and drawdown of a run (open positions marked to the last price).

    Trade statistics come from ``gobot_hookspecs.metrics``, the code the archiver's reports use.
    """
    closed = state.trades
    wins = sum(1 for t in closed if t.pnl > 0)
    unrealised = sum(p.unrealised_pnl(state.last_prices.get(s, p.entry_price)) for s, p in state.positions.items())
    realised = sum(t.pnl for t in closed)
    return {
        "cycles": state.iteration,
        "trades": len(closed) + len(state.positions),
        "closed_trades": len(closed),
        "open_positions": len(state.positions),
        "wins": wins,
        "win_rate": metrics.win_rate(closed),
        "expectancy": metrics.expectancy(closed),
        "realised_pnl": realised,
        "unrealised_pnl": unrealised,
        "pnl": state.cash + unrealised - state.initial_capital,
        "equity": state.cash + unrealised,
        "max_drawdown_pct": state.max_drawdown * 100,
        "vetoes": len(state.vetoes),
    }


def cycle_table(state: BotState):
    from rich import box
    from rich.table import Table

    table = Table(title=f"Run {state.run_id}: per cycle", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("#", "time UTC", "L/S/H", "veto", "ord", "fill", "closed", "equity", "P&L", "ms"):
        table.add_column(column, justify="left" if column in ("time UTC", "L/S/H") else "right")
    for row in state.cycles:
        pnl = f"[green]{row.pnl:+.2f}[/]" if row.pnl >= 0 else f"[red]{row.pnl:+.2f}[/]"
        long, short, hold = (part[:-1] for part in row.signals.split())
        table.add_row(
            str(row.iteration), f"{row.time:%m-%d %H:%M}", f"{long}/{short}/{hold}" + (f" {row.note}" if row.note else ""),
            str(row.vetoes or ""), str(row.orders or ""), str(row.fills or ""), str(row.closed or ""),
            f"{row.equity:.2f}", pnl, f"{row.duration_ms:.1f}",
        )
    return table


def print_run_summary(state: BotState, reason: str, table: bool = True) -> None:
    from rich.console import Console

    console = Console()
    if table and state.cycles:
        console.print(cycle_table(state))
    m = run_metrics(state)
    win_rate = f"{m['win_rate']:.0%} ({m['wins']}/{m['closed_trades']})" if m["win_rate"] is not None else "-"
    console.print(
        f"[bold]Summary[/] ({reason}): {m['cycles']} cycles, {m['trades']} trades "
        f"({m['closed_trades']} closed, {m['open_positions']} open), win rate {win_rate}, "
        f"P&L {m['pnl']:+.2f} (realised {m['realised_pnl']:+.2f}), equity {m['equity']:.2f}, "
        f"max drawdown {m['max_drawdown_pct']:.2f}%, risk vetoes {m['vetoes']}"
    )
    for veto in state.vetoes[-3:]:
        console.print(f"  veto at cycle {veto['iteration']} on {veto['symbol']}: {veto['reasons']}")


def status_dict(state: BotState | None, store: StateStore, settings) -> dict[str, Any]:
    data: dict[str, Any] = {
        "state_dir": str(store.dir),
        "paused": store.paused,
        "kill_switch": settings.kill_switch_path.exists(),
    }
    if state is None:
        data["run"] = None
        return data
    last = state.cycles[-1] if state.cycles else None
    data.update(
        run=state.run_id,
        iteration=state.iteration,
        finished=state.finished,
        finish_reason=state.finish_reason,
        metrics=run_metrics(state),
        positions={s: p.model_dump(mode="json") for s, p in state.positions.items()},
        last_cycle=last.model_dump(mode="json") if last else None,
        strategies={n: v.model_dump(mode="json") for n, v in state.strategies.items()},
    )
    return data


def print_status(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    flags = [flag for flag in ("paused", "kill_switch") if data[flag]]
    if data.get("run") is None:
        console.print(f"No run yet in {data['state_dir']}. {' '.join(flags)}")
        return
    m = data["metrics"]
    state = "finished: " + data["finish_reason"] if data["finished"] else "resumable"
    console.print(
        f"Run {data['run']} ({state}) after {data['iteration']} cycles: equity {m['equity']:.2f}, "
        f"P&L {m['pnl']:+.2f}, {m['closed_trades']} closed trades"
        + (f" — [yellow]{', '.join(flags)}[/]" if flags else "")
    )
    if data["positions"]:
        table = Table(title="Open positions", title_justify="left")
        for column in ("symbol", "side", "amount", "entry", "stop", "target"):
            table.add_column(column)
        for symbol, p in data["positions"].items():
            table.add_row(symbol, p["direction"], f"{p['amount']:.6g}", f"{p['entry_price']:.6g}",
                          f"{p['stop_loss'] or 0:.6g}", f"{p['take_profit'] or 0:.6g}")
        console.print(table)
    last = data["last_cycle"]
    if last:
        phases = ", ".join(f"{k} {v:.1f}" for k, v in last["phase_ms"].items())
        console.print(f"Last cycle #{last['iteration']} at {last['time']}: {last['signals']}; phases (ms): {phases}")
