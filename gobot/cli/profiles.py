"""``gobot profiles``: the strategy profiles (``gobot.profiles``) side by side, every value with its reason."""

from __future__ import annotations

import json

import click

from gobot.profiles import PROFILES, profiles_markdown, shown


def profiles_dict(names: list[str]) -> dict:
    """The profiles ``names`` as ``--json`` prints them: summary, risk per trade, each value with its reason."""
    from gobot.profiles import CAPITAL_KEYS, REFERENCE_CAPITAL, get_profile

    out = {}
    for name in names:
        profile = get_profile(name)
        out[name] = {
            "summary": profile.summary,
            "risk_per_trade_pct": round(profile.risk_per_trade_pct(), 4),
            "values": {key: {"value": value, "reason": profile.reasons[key],
                             **({"share_of_capital": value / REFERENCE_CAPITAL} if key in CAPITAL_KEYS else {})}
                       for key, value in profile.flat().items()},
        }
    return out


@click.command()
@click.argument("name", required=False, metavar="[NAME]", type=click.Choice(list(PROFILES)))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--markdown", is_flag=True, help="The tables of docs/risk.md's \"Profiles\" section (every profile).")
def profiles(name, as_json, markdown):
    """Show the strategy profiles side by side: every value each one sets and why.

    \b
    A profile is a named preset of risk limits, sizing, timeframe and strategy parameters:
      conservative  ~0.5 % of capital at risk a trade, 1h candles, quarter Kelly, few trades
      aggressive    the design's aggressive mode: ~2 % at risk a trade, 15m candles, half Kelly
      scalping      5m candles and loop, targets well above the round-trip costs, many trades
    Amounts (position size, exposure, loss limits) are shares of [trading] initial_capital_usd,
    shown for a capital of 100. Use one with `gobot init --profile NAME` (a config file with the
    values and their reasons) or `gobot start --profile NAME` (over your config, for one run).
    NAME shows one profile.
    """
    if markdown:
        click.echo(profiles_markdown(), nl=False)
        return
    names = [name] if name else list(PROFILES)
    data = profiles_dict(names)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    from rich.console import Console

    Console().print(_one_table(name, data[name]) if name else _side_by_side(data))


def _one_table(name: str, data: dict):
    """One profile: setting, value, why."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"gobot profile {name}: {escape(data['summary'])} (amounts for a capital of 100)",
                  title_justify="left")
    table.add_column("setting", overflow="fold", min_width=24)
    table.add_column("value", no_wrap=True)
    table.add_column("why", ratio=1)
    table.add_row("risk a trade", f"{data['risk_per_trade_pct']:.2f} % of capital",
                  "a full position stopped out, round-trip costs of the paper model included")
    for key, entry in data["values"].items():
        table.add_row(key, escape(shown(key, entry["value"])), escape(entry["reason"]))
    return table


def _side_by_side(data: dict):
    """Every profile in a column: each value with its reason beneath it."""
    from rich.markup import escape
    from rich.table import Table

    names = list(data)
    table = Table(title="gobot profiles: every value and why (amounts for a capital of 100)", title_justify="left",
                  show_lines=True)
    table.add_column("setting", overflow="fold", min_width=24)
    for each in names:
        table.add_column(f"{each}\n[dim]{escape(data[each]['summary'])}[/]", ratio=1)
    table.add_row("risk a trade", *(f"[bold]{data[each]['risk_per_trade_pct']:.2f} % of capital[/]\n[dim]a full "
                                    "position stopped out, round-trip costs of the paper model included[/]"
                                    for each in names))
    keys = list(dict.fromkeys(key for each in names for key in data[each]["values"]))
    for key in keys:
        cells = []
        for each in names:
            entry = data[each]["values"].get(key)
            cells.append("[dim]- (the config's)[/]" if entry is None else
                         f"[bold]{escape(shown(key, entry['value']))}[/]\n[dim]{escape(entry['reason'])}[/]")
        table.add_row(key, *cells)
    return table
