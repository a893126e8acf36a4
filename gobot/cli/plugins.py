"""``gobot plugins``: every plugin in the ``gobot`` entry-point group, and what became of it."""

from __future__ import annotations

import json

import click

from .common import config_option, load


@click.command()
@config_option
@click.option("-p", "--plugin", "enable", multiple=True, metavar="NAME", help="Show as if NAME were enabled.")
@click.option("--disable", multiple=True, metavar="NAME", help="Show as if NAME were disabled.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(config_path, enable, disable, as_json):
    """List every installed plugin: name, distribution and version, hooks, status and why.

    Status is enabled, disabled (with the reason) or failed (with the error). Built-in
    defaults are on unless [plugins] disable lists them; other plugins are off until
    [plugins] enable (or -p NAME) lists them.
    """
    _settings, plugin_set = load(config_path, enable, disable)
    rows = [info.as_dict() for info in sorted(plugin_set.plugins.values(), key=lambda i: i.name)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="gobot plugins", title_justify="left")
    for column in ("name", "distribution", "status", "hooks"):
        table.add_column(column, overflow="fold")
    colours = {"enabled": "green", "disabled": "dim", "failed": "bold red"}
    for row in rows:
        dist = f"{row['distribution']} {row['version']}".strip()
        status = f"[{colours[row['status']]}]{row['status']}[/]" + (f": {row['reason']}" if row["reason"] else "")
        hooks = ", ".join(h.removeprefix("gobot_") for h in row["hooks"])
        table.add_row(row["name"], dist, status, hooks)
    Console().print(table)
