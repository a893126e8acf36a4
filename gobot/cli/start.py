"""``gobot start`` and ``gobot status``."""

from __future__ import annotations

import asyncio
import json
import os

import click

from ..errors import StartRefused
from .common import config_option, load, setup_logging

LIVE_KEYS = ("BINANCE_API_KEY", "BINANCE_API_SECRET")


@click.command()
@config_option
@click.option("-p", "--plugin", "enable", multiple=True, metavar="NAME", help="Enable a plugin for this run (repeatable).")
@click.option("--disable", multiple=True, metavar="NAME", help="Disable a plugin for this run (repeatable).")
@click.option("--max-iterations", type=click.IntRange(min=0), default=None, help="Cycles to run (0 = no limit); default from config.")
@click.option("--paper/--live", "paper", default=True, show_default=True,
              help="Paper trades with simulated fills; --live sends real orders (needs keys in the environment and a risk plugin).")
@click.option("--fresh", is_flag=True, help="Start a new run instead of resuming an unfinished one (the old state is archived).")
@click.option("--quiet", is_flag=True, help="No per-cycle table at the end, just the summary.")
@click.option("-v", "--verbose", is_flag=True, help="Log INFO messages to the terminal too.")
def start(config_path, enable, disable, max_iterations, paper, fresh, quiet, verbose):
    """Run the bot: cycles of scan -> ideas -> adjust -> validate -> execute -> report.

    With no config and no keys this trades on paper, on the bundled synthetic market data, on a
    simulated clock (50 cycles of 15 minutes take seconds). An unfinished run resumes where it
    stopped (after a crash or kill -9 too). Ends on max_iterations, a completion target
    (daily_profit_target, max_daily_loss), the kill switch, or Ctrl-C (state is persisted).
    """
    from ..orchestrator import Bot
    from ..runner import Runner
    from ..summary import print_run_summary

    live = not paper
    settings, plugin_set = load(config_path, enable, disable, live=live)
    plugin_set.raise_for_failures()
    if settings.orchestrator.kill_switch_enabled and settings.kill_switch_path.exists():
        raise StartRefused(f"the kill switch is on ({settings.kill_switch_path}); run `gobot resume` to remove it")
    if live:
        _check_live(plugin_set)
    setup_logging(settings, verbose)
    bot = Bot(settings, plugin_set, live=live, fresh=fresh)
    if bot.resumed_from is not None:
        click.echo(f"Resuming run {bot.state.run_id} after cycle {bot.resumed_from}.")
    else:
        click.echo(f"Run {bot.state.run_id}: {'LIVE' if live else 'paper'} mode, plugins: {', '.join(plugin_set.enabled)}")
    outcome = asyncio.run(Runner(bot, max_iterations).run())
    print_run_summary(bot.state, outcome.reason, table=not quiet)


def _check_live(plugin_set) -> None:
    if not plugin_set.implementers("gobot_risk_check"):
        raise StartRefused("--live needs at least one enabled risk plugin (e.g. risk_limits); none is enabled")
    missing = [key for key in LIVE_KEYS if not os.environ.get(key)]
    if missing:
        raise StartRefused(f"--live needs {', '.join(missing)} in the environment (never in config.toml)")
    if not plugin_set.implementers("gobot_execute_order"):
        raise StartRefused("--live needs an enabled exchange executor plugin; the paper executor never trades live")


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path, as_json):
    """Show the run's state: iteration, equity, open positions, the last cycle, pause and kill switch."""
    from ..config import load_settings
    from ..state import StateStore
    from ..summary import print_status, status_dict

    settings = load_settings(config_path)
    store = StateStore(settings.state_path)
    data = status_dict(store.load(), store, settings)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        print_status(data)
