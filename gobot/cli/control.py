"""``gobot kill`` / ``resume`` / ``pause`` / ``unpause``: control files a running bot watches."""

from __future__ import annotations

import click

from gobot.cli.common import config_option
from gobot.config import load_settings
from gobot.run.state import (
    StateError,
    StateStore,
    disk_error_text,
    ensure_private_dir,
    is_disk_error,
    write_control_file,
)


@click.command()
@config_option
@click.option("--close-positions", is_flag=True,
              help="Also close every open position with CRITICAL priority: a running bot does it in its next cycle; "
                   "with none running, this command runs the close-out itself until flat.")
@click.option("--reason", default="kill switch engaged by `gobot kill`", show_default=True,
              help="Why: kept in the kill switch file, the audit log and the alerts.")
def kill(config_path, close_positions, reason):
    """Engage the kill switch: no new orders; a running loop persists its state and ends.

    A running bot checks the switch before every order it sends, so it halts new orders at once
    (and between cycles within 2 seconds on the wall clock). With --close-positions it first runs
    close-out cycles — CRITICAL closes only, never risk-checked — until no position is open.
    With no bot running, --close-positions builds the bot from the persisted state and runs those
    cycles here (paper runs fill at the next candle's open; live runs need the keys, as `start --live`).

    `gobot start` refuses to run until `gobot resume` removes the switch.
    """
    settings = load_settings(config_path)
    path = settings.kill_switch_path
    store = StateStore(settings.state_path)
    ensure_private_dir(store.dir)
    _write_switch(path, reason)
    if close_positions:
        _write_switch(store.close_request_file, reason)
    try:
        state = store.load()
    except StateError as exc:  # the switch is on all the same: a damaged state never stands in its way
        state, damaged = None, exc
    else:
        damaged = None
    _audit(settings, state, "kill_switch", reason=reason, source="gobot kill", close_positions=close_positions)
    click.echo(f"Kill switch on: {path}")
    if not settings.orchestrator.kill_switch_enabled:
        click.secho("Warning: [orchestrator] kill_switch_enabled = false, so the bot ignores it.",
                    fg="yellow", err=True)
    if not close_positions:
        return
    if store.bot_running():
        click.echo("A bot is running: it sends no new order from now on, closes every open position with CRITICAL "
                   "priority in its next cycle (again each cycle until flat), then stops.")
        return
    if damaged is not None:
        raise damaged  # no close-out from a state that cannot be read: one line, exit status 2
    _close_out(config_path, settings, store, state)


def _write_switch(path, reason: str) -> None:
    """A control file, owner-only. On a full disk it is created empty: the switch is on, its reason not written."""
    try:
        write_control_file(path, f"{reason}\n")
    except OSError as exc:
        if not (is_disk_error(exc) and path.exists()):
            raise
        click.secho(f"Warning: {path} is on, but its reason could not be written: {disk_error_text(exc)}.",
                    fg="yellow", err=True)


def _audit(settings, state, event: str, **data) -> None:
    """An audit line from a command (no bot running, or beside a running one: the log is append-only)."""
    from gobot.run.audit import AuditLog

    log = AuditLog(settings.state_path / "audit.jsonl")
    log.write(event, sim_time=state.clock if state else None, run_id=state.run_id if state else "",
              iteration=state.iteration if state else 0, **data)
    if log.pending:
        click.secho(f"Warning: not written to {log.path}: {disk_error_text(log.error)}.", fg="yellow", err=True)
        log.pending.clear()
    log.close()


def _run_mode(state_dir, run_id: str) -> str:
    """The mode (paper, live, testnet) the run was started in, from its run_started audit events."""
    from gobot.run.audit import read_audit

    modes = [e.get("mode") for e in read_audit(state_dir / "audit.jsonl")
             if e.get("event") == "run_started" and e.get("run_id") == run_id]
    return modes[-1] if modes and modes[-1] else "paper"


def _close_out(config_path, settings, store, state) -> None:
    """No bot is running: build it from the persisted state and run close-out cycles until flat."""
    import asyncio

    from gobot.cli.common import load, setup_logging
    from gobot.errors import StartRefused
    from gobot.run.bot import Bot
    from gobot.run.runner import Runner
    from gobot_hookspecs.money import money

    if state is None or not (state.positions or any(i.purpose == "close" for i in state.intents.values())):
        store.close_request_file.unlink(missing_ok=True)
        click.echo("No open positions: nothing to close.")
        return
    if not settings.orchestrator.kill_switch_enabled:
        raise StartRefused("cannot run a close-out with [orchestrator] kill_switch_enabled = false; "
                           "enable it, or start the bot (it closes the positions in its first cycle)")
    mode = _run_mode(settings.state_path, state.run_id)
    live = mode != "paper"
    settings, plugin_set = load(config_path, live=live)
    plugin_set.raise_for_failures()
    if live:
        from gobot.cli.start import _check_live

        _check_live(plugin_set)
    setup_logging(settings)
    bot = Bot(settings, plugin_set, live=live, reopen=True)
    before = len(bot.state.trades)
    symbols = ", ".join(sorted(bot.state.positions)) or "pending closes"
    click.echo(f"No bot is running: closing {symbols} of run {bot.state.run_id} ({mode}) with CRITICAL priority.")
    runner = Runner(bot)
    asyncio.run(runner.run())
    for trade in bot.state.trades[before:]:
        click.echo(f"  closed {trade.direction.value.lower()} {trade.symbol} @ {trade.exit_price:.6g}: "
                   f"P&L {money(trade.pnl, bot.ctx.currency, True)}")
    if bot.state.positions:
        click.secho(f"Still open after {runner.close_out_cycles} close-out cycles: "
                    f"{', '.join(sorted(bot.state.positions))}. Check the exchange, then run this again.",
                    fg="red", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"Flat after {runner.close_out_cycles} close-out cycles. `gobot resume` removes the kill switch.")


@click.command()
@config_option
def resume(config_path):
    """Remove the kill switch, so `gobot start` may run (and resume the stopped run) again."""
    settings = load_settings(config_path)
    path = settings.kill_switch_path
    if path.exists():
        path.unlink()
        click.echo(f"Kill switch removed: {path}")
    else:
        click.echo("The kill switch was not on.")
    request = StateStore(settings.state_path).close_request_file
    if request.exists():
        click.secho(f"A close-out is still pending ({request}): the next `gobot start` closes the open positions "
                    "first. Delete that file to cancel it.", fg="yellow", err=True)


@click.command()
@config_option
def pause(config_path):
    """Pause: the loop keeps scanning and reporting (and exits positions) but opens none."""
    StateStore(load_settings(config_path).state_path).set_paused(True)
    click.echo("Paused: no new positions until `gobot unpause`.")


@click.command()
@config_option
def unpause(config_path):
    """Let the loop open positions again."""
    StateStore(load_settings(config_path).state_path).set_paused(False)
    click.echo("Unpaused.")
