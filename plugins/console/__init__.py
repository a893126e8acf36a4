"""``console``: alerts and one line per cycle on the terminal (the default alert channel)."""

from __future__ import annotations

import click
from pydantic import Field

from gobot_hookspecs import Action, PluginConfig, Severity, hookimpl
from gobot_hookspecs.money import money

NAME = "console"
_COLOURS = {Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.CRITICAL: "red"}
_ORDER = [Severity.INFO, Severity.WARNING, Severity.CRITICAL]


class ConsoleConfig(PluginConfig):
    min_severity: Severity = Field(Severity.INFO, description="quietest alert shown: INFO, WARNING or CRITICAL")
    cycle_lines: bool = Field(True, description="print one line per cycle")
    label: str = Field("", description="printed at the start of every line; set to the profile for each sleeve of "
                       "`gobot start --profile A --profile B`, whose lines interleave")


class Console:
    @hookimpl
    def gobot_config_model(self):
        return ConsoleConfig

    @hookimpl
    def gobot_send_alert(self, ctx, alert):
        config = ConsoleConfig.of(ctx, NAME)
        if _ORDER.index(alert.severity) < _ORDER.index(config.min_severity):
            return
        text = f" — {alert.text}" if alert.text else ""
        label = f"{config.label} " if config.label else ""
        click.secho(f"  {label}[{alert.severity.value}] {alert.title}{text}", fg=_COLOURS[alert.severity], err=True)
        ctx.audit("alert_delivery", channel=NAME, kind=alert.kind, title=alert.title, delivered=True, detail="printed")

    @hookimpl
    def gobot_report(self, ctx, report):
        config = ConsoleConfig.of(ctx, NAME)
        if not config.cycle_lines:
            return
        ideas = ", ".join(
            f"{s.symbol} {s.action.value} {s.confidence:.2f}" for s in report.signals if s.action is not Action.HOLD
        ) or "hold"
        total_ms = sum(p.duration_ms for p in report.phases)
        label = f"{config.label:<12} " if config.label else ""
        click.echo(
            f"{label}#{report.iteration:<4} {report.time:%Y-%m-%d %H:%M} | {ideas:<34} | vetoes {len(report.vetoes)} "
            f"orders {len(report.orders)} fills {len(report.fills)} | "
            f"equity {money(report.equity, ctx.currency):>13} | {total_ms:6.1f} ms"
        )
