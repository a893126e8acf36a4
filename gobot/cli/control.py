"""``gobot kill`` / ``resume`` / ``pause`` / ``unpause``: control files a running bot watches."""

from __future__ import annotations

import click

from ..config import load_settings
from ..state import StateStore, ensure_private_dir
from .common import config_option


@click.command()
@config_option
def kill(config_path):
    """Engage the kill switch: no new orders; a running loop persists its state and ends.

    `gobot start` refuses to run until `gobot resume` removes the switch.
    """
    settings = load_settings(config_path)
    path = settings.kill_switch_path
    ensure_private_dir(path.parent)
    path.write_text("kill switch engaged by `gobot kill`\n", encoding="utf-8")
    click.echo(f"Kill switch on: {path}")
    if not settings.orchestrator.kill_switch_enabled:
        click.secho("Warning: [orchestrator] kill_switch_enabled = false, so the bot ignores it.", fg="yellow", err=True)


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
