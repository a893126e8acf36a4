"""``gobot plugins``: every plugin in the ``gobot`` entry-point group, and what became of it;
``gobot plugins new``: a new plugin distribution, ready to install."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gobot.cli.common import config_option, load


@click.group(invoke_without_command=True)
@config_option
@click.option("-p", "--plugin", "enable", multiple=True, metavar="NAME", help="Show as if NAME were enabled.")
@click.option("--disable", multiple=True, metavar="NAME", help="Show as if NAME were disabled.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins(ctx, config_path, enable, disable, as_json):
    """List every installed plugin: name, distribution and version, hooks, status and why.

    Status is enabled, disabled (with the reason) or failed (with the error). Built-in
    defaults are on unless [plugins] disable lists them; other plugins are off until
    [plugins] enable (or -p NAME) lists them. A plugin whose extra is not installed says
    what to install ("needs: pip install 'gobot-trading[vision]'"), and fails with that line
    when enabled.

    `gobot plugins new NAME --kind signal` writes a new plugin distribution to start from.
    """
    if ctx.invoked_subcommand is not None:
        return
    _settings, plugin_set = load(config_path, enable, disable)
    rows = [info.as_dict() for info in sorted(plugin_set.plugins.values(), key=lambda i: i.name)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # Three columns that read at 80 (a pipe, a log) as on a wide terminal: the plugin with its
    # distribution beneath, the status with its whole reason (wrapped at words), one hook a line.
    table = Table(title="gobot plugins", title_justify="left")
    table.add_column("plugin", no_wrap=True)
    table.add_column("status", ratio=1)
    table.add_column("hooks", no_wrap=True)
    colours = {"enabled": "green", "disabled": "dim", "failed": "bold red"}
    for row in rows:
        dist = escape(f"{row['distribution']} {row['version']}".strip())
        status = (f"[{colours[row['status']]}]{row['status']}[/]"
                  + (f": {escape(row['reason'])}" if row["reason"] else ""))
        hooks = "\n".join(h.removeprefix("gobot_") for h in row["hooks"])
        table.add_row(f"{row['name']}\n[dim]{dist}[/]", status, hooks)
    Console().print(table)


@plugins.command("new")
@click.argument("name")
@click.option("--kind", type=click.Choice(["signal", "risk", "alert", "executor"]), required=True,
              help="signal: ideas per symbol; risk: vetoes orders; alert: a channel; executor: places orders.")
@click.option("--dir", "parent", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Folder to create the distribution in.")
def new(name, kind, parent):
    """Write a new plugin distribution NAME of the given kind, ready to install and test.

    \b
    It holds pyproject.toml (the `gobot` entry point NAME, the contract range as the only
    dependency), a README, the plugin module with the hooks of its kind and their right
    signatures, and tests that pass as generated:

    \b
      gobot plugins new momentum --kind signal
      pip install -e 'gobot-signal-momentum[test]' && pytest gobot-signal-momentum
      gobot start -p momentum
    """
    from gobot.cli.scaffold import Scaffold, check_name, write
    from gobot.host.plugin_manager import entry_points

    problem = check_name(name, {ep.name for ep in entry_points()})
    if problem:
        raise click.BadParameter(problem, param_hint="NAME")
    scaffold = Scaffold(name, kind)
    try:
        target = write(scaffold, parent)
    except FileExistsError as exc:  # a refusal to run as asked: exit status 2, as `gobot init` without --force
        from gobot.errors import Refused

        raise Refused(str(exc)) from None
    click.echo(f"Created {target}/ — {kind} plugin '{name}' (distribution {scaffold.distribution}):")
    for relative in scaffold.files():
        click.echo(f"  {relative}")
    steps = [(f"pip install -e '{target}[test]'", "the plugin, gobot and pytest"),
             (f"pytest {target}", "the generated tests pass as they are"),
             (f"gobot start -p {name}", "a paper run with it")]
    width = max(len(command) for command, _ in steps)
    click.echo("Next:")
    for command, why in steps:
        click.echo(f"  {command.ljust(width)}   # {why}")
