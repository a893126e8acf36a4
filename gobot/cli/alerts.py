"""``gobot alerts test`` and ``gobot alerts kinds``: check the alert channels without running the bot."""

from __future__ import annotations

import json

import click

from gobot.cli.common import config_option, load


@click.group()
def alerts():
    """Alert channels: send a sample of every alert kind, list the kinds."""


@alerts.command("kinds")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def kinds(as_json):
    """List every alert kind: its usual severity, who raises it and when."""
    from gobot_hookspecs import ALERT_KINDS

    if as_json:
        click.echo(json.dumps({k: {"severity": v.severity.value, "raised_by": v.raised_by, "description": v.description}
                               for k, v in ALERT_KINDS.items()}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="gobot alert kinds", title_justify="left")
    for column in ("kind", "severity", "raised by", "when"):
        table.add_column(column, overflow="fold")
    for kind, info in ALERT_KINDS.items():
        table.add_row(kind, info.severity.value, info.raised_by, info.description)
    Console().print(table)


@alerts.command("test")
@config_option
@click.option("--kind", "only", multiple=True, metavar="KIND",
              help="Send only this kind (repeatable); default: every kind.")
@click.option("-p", "--plugin", "enable", multiple=True, metavar="NAME",
              help="Enable a channel plugin for this test (repeatable).")
@click.option("--disable", multiple=True, metavar="NAME", help="Disable a plugin for this test (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def test(config_path, only, enable, disable, as_json):
    """Send one sample of every alert kind through every enabled channel and report, per channel,
    what was delivered.

    The samples are marked "[test]". Channels are the enabled plugins that implement
    gobot_send_alert (console, telegram, webhook, ...), with their [plugins.<name>] settings and
    severity filters; the bot need not run. Exit status 1 if a channel failed to deliver one.
    """
    import asyncio

    from gobot.cli.common import setup_logging
    from gobot.run.alerting import AlertChannels, sample_alerts
    from gobot_hookspecs import ALERT_KINDS

    unknown = sorted(set(only) - set(ALERT_KINDS))
    if unknown:
        raise click.BadParameter(f"unknown kind {', '.join(unknown)}; `gobot alerts kinds` lists them",
                                 param_hint="--kind")
    settings, plugin_set = load(config_path, enable, disable)
    setup_logging(settings)
    channels = AlertChannels(settings, plugin_set)
    samples = [a.model_copy(update={"title": f"[test] {a.title}"})
               for a in sample_alerts() if not only or a.kind in only]

    async def send_all() -> None:
        for alert in samples:
            await channels.send(alert)
        await channels.close()

    if not as_json:
        click.echo(f"Sending {len(samples)} alerts through {', '.join(channels.names) or 'no channel'} ...", err=True)
    asyncio.run(send_all())
    report = channels.report()
    failed = [info for info in channels.failed]
    if as_json:
        click.echo(json.dumps({"channels": report, "plugins_failed": {i.name: i.reason for i in failed}}, indent=2))
    else:
        _print_report(report, failed, len(samples))
    if not channels.names or failed or any(row["failed"] for row in report.values()):
        raise SystemExit(1)


def _print_report(report: dict, failed: list, sent: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"gobot alerts test: {sent} sample alerts per channel", title_justify="left")
    for column in ("channel", "delivered", "not delivered", "not sent (filtered)"):
        table.add_column(column, overflow="fold")
    for name, row in report.items():
        bad = f"[bold red]{len(row['failed'])}[/]" if row["failed"] else "0"
        table.add_row(name, f"[green]{len(row['delivered'])}[/]", bad, str(len(row["unreported"])))
    console.print(table)
    for name, row in report.items():
        for item in row["failed"]:
            console.print(f"[red]{name}[/]: {item['kind']}: {item['detail']}", markup=True, highlight=False)
        if row["unreported"]:
            console.print(f"[dim]{name}: not sent (below its min_severity, or no receipt): "
                          f"{', '.join(row['unreported'])}[/]")
    for info in failed:
        console.print(f"[bold red]plugin {info.name} failed to load[/]: {info.reason}", highlight=False)
    if not report:
        console.print("[yellow]No alert channel is enabled: enable one in [plugins] enable (telegram, webhook) "
                      "or keep console.[/]")
