"""``gobot start --profile A --profile B ...``: the profiles side by side in one paper run
(``gobot.run.sleeves``), then one summary per sleeve and a table comparing them."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, Sequence

import click

from gobot.errors import StartRefused


def start_sleeves(config_path: str | None, profiles: Sequence[str], shares: Sequence[str], enable: Sequence[str],
                  disable: Sequence[str], max_iterations: int | None, *, live: bool, fresh: bool, serve: bool,
                  verbose: bool) -> None:
    """Run ``profiles`` side by side on paper; refuse --live and --serve with a clear line."""
    if len(profiles) < 2:
        raise click.UsageError("--share needs several --profile options (the sleeves it divides the capital into)")
    if live:
        raise StartRefused(f"--live with {len(profiles)} profiles: side-by-side profiles run on paper only "
                           "(a comparison, not a way to trade); go live with one --profile")
    if serve:
        raise StartRefused("--serve with several profiles: the dashboard shows one bot; run without --serve "
                           "and compare with `gobot report` (or serve one profile's run)")
    from gobot.cli.common import setup_logging
    from gobot.config import check_runnable, load_settings
    from gobot.run.sleeves import build_bots, plan_group, run_group
    from gobot.run.state import StateStore

    parent = load_settings(config_path)  # the sleeves' shared parts; each sleeve builds its own plugins
    if parent.orchestrator.kill_switch_enabled and parent.kill_switch_path.exists():
        raise StartRefused(f"the kill switch is on ({parent.kill_switch_path}); run `gobot resume` to remove it")
    group = plan_group(config_path, parent, profiles, shares, enable, disable, fresh)
    for sleeve in group.sleeves:
        if StateStore(sleeve.settings.state_path).bot_running():
            raise StartRefused(f"a bot is already running on {sleeve.settings.state_path}; stop it first")
        check_runnable(sleeve.settings)
    setup_logging(parent, verbose)
    for note in group.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)

    def started(sleeve) -> None:
        bot, capital = sleeve.bot, sleeve.settings.trading.initial_capital_usd
        verb = f"resuming run {bot.state.run_id} after cycle {bot.resumed_from}" if bot.resumed_from is not None \
            else f"run {bot.state.run_id}"
        click.echo(f"Sleeve {sleeve.profile}: {verb} ({bot.environment} mode), capital "
                   f"{capital:g} ({sleeve.share:.0%}), every {sleeve.settings.orchestrator.loop_interval:g} s, "
                   f"state {sleeve.settings.state_path}")

    build_bots(group, max_iterations, started)
    span = f", {group.start:%Y-%m-%d %H:%M} → {group.until:%Y-%m-%d %H:%M} UTC" if group.start and group.end else ""
    click.echo(f"Profiles side by side: group {group.group_id}, {len(group.sleeves)} sleeves{span}")
    asyncio.run(run_group(group))
    print_group_summary(group)
    for sleeve in group.sleeves:
        if sleeve.error is not None:
            raise sleeve.error


def print_group_summary(group: Any) -> None:
    """One summary line per sleeve (as a single run prints it), then the profiles compared."""
    from rich.console import Console

    from gobot.run.summary import print_run_summary

    console = Console()
    for sleeve in group.sleeves:
        console.print(f"[bold]{sleeve.profile}[/] ({sleeve.settings.state_path})")
        if sleeve.error is not None:
            console.print(f"  crashed: {type(sleeve.error).__name__}: {sleeve.error}")
            continue
        bot = sleeve.bot
        print_run_summary(bot.state, sleeve.outcome.reason, table=False, currency=bot.ctx.currency,
                          portfolio=bot.portfolio)
    console.print()
    console.print(comparison_table(group))
    console.print(f"[dim]`gobot report` compares them from the archive (group {group.group_id}), with the "
                  "intervals' cautions; `gobot report --html FILE` draws their equity curves together[/]")


def _signed(value: float | None, currency: str) -> str:
    from gobot_hookspecs.money import amount_text

    return "-" if value is None else amount_text(value, currency, signed=True, significant=2)


def comparison_table(group: Any) -> Any:
    """The sleeves side by side (a column each) with the report's metrics (``gobot_hookspecs.metrics``) from each
    bot's state: the trades closed, the win rate and expectancy with their 95% intervals, and the ratios the
    report gates on its minimum sample."""
    from rich import box
    from rich.table import Table

    from gobot_hookspecs import metrics
    from gobot_hookspecs.money import amount_text

    table = Table(title=f"Profiles compared (group {group.group_id})", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    table.add_column("")
    columns = []
    for sleeve in group.sleeves:
        if sleeve.bot is None:
            continue
        state, currency = sleeve.bot.state, sleeve.bot.ctx.currency
        curve = [(c.time, c.equity) for c in state.cycles]
        m = metrics.trade_metrics(state.trades, state.initial_capital, curve=curve or None, currency=currency)
        low, high = metrics.wilson_interval(m.wins, m.trades)
        spread = metrics.mean_interval([t.pnl for t in state.trades])
        equity = sleeve.bot.portfolio.equity()  # open positions marked to their last price
        amount = partial(_signed, currency=currency)
        columns.append([
            amount_text(state.initial_capital, currency, significant=3), str(state.iteration),
            f"{curve[0][0]:%m-%d %H:%M}→{curve[-1][0]:%H:%M}" if curve else "-", str(m.trades),
            f"{m.win_rate:.0%}" if m.trades else "-", f"{low:.0%}–{high:.0%}" if m.trades else "-",
            amount(m.expectancy), f"{amount(spread[0])}…{amount(spread[1])}" if spread else "-",
            "-" if m.profit_factor is None else f"{m.profit_factor:.2f}",
            f"{equity / state.initial_capital - 1:+.2%}", f"{m.max_drawdown_pct:.2%}",
            metrics.ratio_text(m.sharpe, m.trades), metrics.ratio_text(m.sortino, m.trades),
            amount_text(m.total_fees, currency, significant=2),
        ])
        table.add_column(sleeve.profile, justify="right")
    labels = ("capital", "cycles", "span UTC", "n", "win%", "win% 95% CI", "exp.", "exp. 95% CI", "PF", "return",
              "maxDD", "Sharpe", "Sortino", "fees")
    for i, label in enumerate(labels):
        table.add_row(label, *[column[i] for column in columns])
    return table
