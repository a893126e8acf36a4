"""``gobot watchdog``: a small separate process that alerts when the bot's heartbeat goes stale."""

from __future__ import annotations

import click

from gobot.cli.common import config_option


@click.command()
@config_option
@click.option("--once", is_flag=True,
              help="Check once and exit: status 0 if the heartbeat is fresh or the bot stopped in order, "
              "1 if not (alerting then).")
@click.option("-v", "--verbose", is_flag=True, help="Print every check, not only changes.")
def watchdog(config_path, once, verbose):
    """Alert through the enabled channels when the bot's heartbeat goes stale.

    The running bot rewrites <state_dir>/heartbeat.json every [watchdog] heartbeat_interval
    seconds. This process checks it every check_interval seconds and sends a CRITICAL
    watchdog_stale alert when it is older than stale_after (again every repeat_after while it
    stays stale), and watchdog_recovered when it is fresh again. A bot that stopped in order
    marks the file and is not alerted about. Run it next to the bot, e.g. as a systemd service
    (docs/alerts.md); SIGTERM stops it cleanly.
    """
    import asyncio
    import logging
    import signal

    from gobot.cli.common import load
    from gobot.ops.watchdog import Watchdog
    from gobot.run.alerting import AlertChannels
    from gobot.secrets import RedactingFilter

    settings, plugin_set = load(config_path)
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    channels = AlertChannels(settings, plugin_set)
    for info in channels.failed:
        click.secho(f"watchdog: plugin {info.name} failed to load ({info.reason}); alerting without it",
                    fg="yellow", err=True)
    config = settings.watchdog
    state_dir = settings.state_path

    async def run() -> int:
        async def send(alert):
            failures = await channels.send(alert)
            for failure in failures:
                click.secho(f"watchdog: {failure}", fg="red", err=True)
            click.echo(f"watchdog: sent {alert.kind}: {alert.title}", err=True)

        dog = Watchdog(state_dir, config, send)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        click.echo(f"watchdog: watching {dog.path} (stale after {config.stale_after:g} s, checked every "
                   f"{config.check_interval:g} s) through {', '.join(channels.names) or 'no channel'}", err=True)
        last = None
        try:
            while True:
                heartbeat = await dog.check()
                if verbose or heartbeat.state != last:
                    click.echo(f"watchdog: {heartbeat.state}: {heartbeat.describe}", err=True)
                last = heartbeat.state
                if once:
                    return 0 if heartbeat.state in ("fresh", "stopped") else 1
                try:
                    await asyncio.wait_for(stop.wait(), timeout=config.check_interval)
                    return 0
                except asyncio.TimeoutError:
                    pass
        finally:
            await channels.close()

    raise SystemExit(asyncio.run(run()))
