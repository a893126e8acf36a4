"""What a person reads about a run: the per-cycle rows of the state, the daily summary alert,
``progress.json`` (rewritten after each cycle), and at the end of a run and in ``gobot status`` the
per-cycle table and the summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gobot.run import RunningBot
from gobot.run.portfolio import Portfolio
from gobot.run.state import MAX_CYCLE_ROWS, MAX_LEARNINGS, BotState, CycleRow, StateStore
from gobot.run.versions import status_line, strategy_status
from gobot_hookspecs import Action, Alert, CycleReport, metrics
from gobot_hookspecs.money import amount_text, decimals, money


def remember_cycle(state: BotState, report: CycleReport, duration_ms: float, next_clock: datetime | None) -> None:
    """Book a completed cycle in the state: its row (``MAX_CYCLE_ROWS`` kept), its learnings, the iteration,
    and on a simulated clock where the next cycle starts (``next_clock``)."""
    state.learnings = (state.learnings + report.learnings)[-MAX_LEARNINGS:]
    counts = {a: sum(1 for s in report.signals if s.action is a) for a in Action}
    state.cycles.append(CycleRow(
        iteration=report.iteration, time=report.time,
        signals=f"{counts[Action.LONG]}L {counts[Action.SHORT]}S {counts[Action.HOLD]}H",
        vetoes=len(report.vetoes), orders=len(report.orders), fills=len(report.fills), closed=len(report.trades_closed),
        equity=report.equity, pnl=report.equity - state.initial_capital, duration_ms=duration_ms,
        phase_ms={p.name: round(p.duration_ms, 3) for p in report.phases}, note="paused" if report.paused else "",
    ))
    state.cycles = state.cycles[-MAX_CYCLE_ROWS:]
    state.iteration = report.iteration
    if next_clock is not None:
        state.clock = next_clock


def daily_summary(state: BotState, new_day: str, currency: str = "") -> Alert | None:
    """The ``daily_summary`` alert for the last day before ``new_day`` that had cycles (UTC, bot clock);
    amounts in ``currency``, the portfolio's."""
    rows = [row for row in state.cycles if row.time.date().isoformat() < new_day]
    if not rows:
        return None
    day = rows[-1].time.date().isoformat()
    rows = [row for row in rows if row.time.date().isoformat() == day]
    start = state.day_start_equity.get(day, state.initial_capital)
    end = rows[-1].equity
    trades = [t for t in state.trades if t.closed_at.date().isoformat() == day]
    wins = sum(1 for t in trades if t.pnl > 0)
    vetoes = sum(row.vetoes for row in rows)
    realised = sum(t.pnl for t in trades)
    pnl = end - start
    win_rate = f", {wins / len(trades):.0%}" if trades else ""
    return Alert(
        kind="daily_summary",
        title=f"Daily summary {day}: P&L {money(pnl, currency, True)} ({pnl / start * 100 if start else 0.0:+.1f} %)",
        text=f"{len(trades)} trades closed ({wins} won{win_rate}), realised {money(realised, currency, True)}; "
        f"equity {money(end, currency)}; "
        f"{len(state.positions)} open positions; {vetoes} risk vetoes; {len(rows)} cycles",
        data={"day": day, "currency": currency, "pnl": round(pnl, 8), "trades": len(trades), "wins": wins,
              "equity": round(end, 8),
              "equity_curve": [[row.time.isoformat(), round(row.equity, 4)] for row in rows]},
    )


def daily_pnl(state: BotState, equity: float, now: datetime) -> float:
    """Equity change since the start of the day of the last cycle (UTC; ``now`` before the first cycle)."""
    day = (state.cycles[-1].time if state.cycles else now).date().isoformat()
    return equity - state.day_start_equity.get(day, state.initial_capital)


def progress(bot: RunningBot, breaker: str) -> dict[str, Any]:
    """``progress.json``: a small summary for watching a run from outside; ``breaker`` as ``gobot_status`` says."""
    state = bot.state
    last = state.cycles[-1] if state.cycles else None
    equity, currency = bot.portfolio.equity(), bot.ctx.currency
    digits = max(4, decimals(currency))  # a BTC amount keeps its satoshis
    return {
        "run_id": state.run_id,
        "currency": currency,
        "iteration": state.iteration,
        "max_iterations": bot.settings.orchestrator.max_iterations,
        "time": last.time if last else None,
        "phase_ms": last.phase_ms if last else {},
        "equity": round(equity, digits),
        "pnl": round(equity - state.initial_capital, digits),
        "daily_pnl": round(daily_pnl(state, equity, bot.clock.now()), digits),
        "closed_trades": len(state.trades),
        "open_positions": {s: p.model_dump(mode="json") for s, p in state.positions.items()},
        "breaker": breaker,
        "paused": bot.store.paused,
        "learnings": [item.model_dump(mode="json") for item in state.learnings[-5:]],
        "finished": state.finished,
        "finish_reason": state.finish_reason,
    }


async def write_progress(bot: RunningBot) -> None:
    """Rewrite ``progress.json`` after a cycle; the breaker's state is asked through ``gobot_status``."""
    from gobot.run.plugin_statuses import breaker_state, plugin_statuses

    document = progress(bot, breaker_state(await plugin_statuses(bot)))
    bot.disk.write(bot.store.progress_file, lambda: bot.store.save_progress(document))


def run_metrics(state: BotState, portfolio: Portfolio | None = None) -> dict[str, Any]:
    """Trades, win rate, P&L and drawdown of a run (open positions marked to the last price, converted
    into the portfolio currency by ``portfolio``; None = one currency).

    Trade statistics come from ``gobot_hookspecs.metrics``, the code the archiver's reports use.
    """
    closed = state.trades
    wins = sum(1 for t in closed if t.pnl > 0)
    unrealised = (portfolio or Portfolio(state)).unrealised()
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


def cycle_table(state: BotState, currency: str = ""):
    from rich import box
    from rich.table import Table

    table = Table(title=f"Run {state.run_id}: per cycle", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    unit = f" {currency}" if currency else ""
    for column in ("#", "time UTC", "L/S/H", "veto", "ord", "fill", "closed", f"equity{unit}", f"P&L{unit}", "ms"):
        table.add_column(column, justify="left" if column in ("time UTC", "L/S/H") else "right")
    for row in state.cycles:
        pnl = amount_text(row.pnl, currency, True)
        pnl = f"[green]{pnl}[/]" if row.pnl >= 0 else f"[red]{pnl}[/]"
        long, short, hold = (part[:-1] for part in row.signals.split())
        table.add_row(
            str(row.iteration), f"{row.time:%m-%d %H:%M}",
            f"{long}/{short}/{hold}" + (f" {row.note}" if row.note else ""),
            str(row.vetoes or ""), str(row.orders or ""), str(row.fills or ""), str(row.closed or ""),
            amount_text(row.equity, currency), pnl, f"{row.duration_ms:.1f}",
        )
    return table


def print_run_summary(state: BotState, reason: str, table: bool = True, currency: str = "",
                      portfolio: Portfolio | None = None) -> None:
    from rich.console import Console

    console = Console()
    if table and state.cycles:
        console.print(cycle_table(state, currency))
    m = run_metrics(state, portfolio)
    win_rate = f"{m['win_rate']:.0%} ({m['wins']}/{m['closed_trades']})" if m["win_rate"] is not None else "-"
    console.print(
        f"[bold]Summary[/] ({reason}): {m['cycles']} cycles, {m['trades']} trades "
        f"({m['closed_trades']} closed, {m['open_positions']} open), win rate {win_rate}, "
        f"P&L {money(m['pnl'], currency, True)} (realised {money(m['realised_pnl'], currency, True)}), "
        f"equity {money(m['equity'], currency)}, "
        f"max drawdown {m['max_drawdown_pct']:.2f}%, risk vetoes {m['vetoes']}",
        soft_wrap=True,  # one line a terminal folds, never a label cut in two
    )
    for veto in state.vetoes[-3:]:
        console.print(f"  veto at cycle {veto['iteration']} on {veto['symbol']}: {veto['reasons']}")


def status_dict(state: BotState | None, store: StateStore, settings) -> dict[str, Any]:
    data: dict[str, Any] = {
        "state_dir": str(store.dir),
        "paused": store.paused,
        "kill_switch": settings.kill_switch_path.exists(),
        "currency": settings.trading.portfolio_currency,
    }
    if state is None:
        data["run"] = None
        from gobot.run.sleeve_status import sleeves_status

        data["sleeves"] = sleeves_status(store.dir)  # a side-by-side profiles run keeps its bots in sleeves/
        return data
    last = state.cycles[-1] if state.cycles else None
    data.update(
        run=state.run_id,
        iteration=state.iteration,
        finished=state.finished,
        finish_reason=state.finish_reason,
        metrics=run_metrics(state, Portfolio(state, settings.trading.portfolio_currency, settings.trading.symbols)),
        positions={s: p.model_dump(mode="json") for s, p in state.positions.items()},
        last_cycle=last.model_dump(mode="json") if last else None,
        strategies={n: v.model_dump(mode="json") for n, v in state.strategies.items()},
        strategy_checks=strategy_status(state),
    )
    return data


def print_status(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    flags = [flag for flag in ("paused", "kill_switch") if data[flag]]
    if data.get("run") is None:
        sleeves = data.get("sleeves")
        if not sleeves:
            console.print(f"No run yet in {data['state_dir']}. {' '.join(flags)}")
            return
        console.print(f"Profiles side by side (group {sleeves['group_id']}, "
                      f"{'finished' if sleeves['finished'] else 'resumable'}) in {data['state_dir']}/sleeves "
                      f"{' '.join(flags)}")
        for name, sleeve in sleeves["profiles"].items():
            console.print(f"  {escape(name)}: " + (escape(sleeve) if isinstance(sleeve, str) else
                          f"run {sleeve['run']}, cycle {sleeve['iteration']}, equity {sleeve['equity']:.2f}, "
                          f"{sleeve['closed_trades']} closed trades"
                          + (f", finished: {escape(sleeve['finish_reason'] or '')}" if sleeve["finished"] else "")))
        return
    m = data["metrics"]
    state = "finished: " + data["finish_reason"] if data["finished"] else "resumable"
    console.print(
        f"Run {data['run']} ({state}) after {data['iteration']} cycles: "
        f"equity {money(m['equity'], data['currency'])}, P&L {money(m['pnl'], data['currency'], True)}, "
        f"{m['closed_trades']} closed trades"
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
    for name, check in data.get("strategy_checks", {}).items():  # the validate phase's verdicts and actions
        line = escape(f"Strategy {status_line(name, check)}")
        console.print(f"[yellow]{line}[/]" if check["passed"] is False else line, soft_wrap=True)
    last = data["last_cycle"]
    if last:
        phases = ", ".join(f"{k} {v:.1f}" for k, v in last["phase_ms"].items())
        console.print(f"Last cycle #{last['iteration']} at {last['time']}: {last['signals']}; phases (ms): {phases}")
