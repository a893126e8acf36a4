"""``gobot risk status`` / ``gobot risk reset`` and ``gobot validate`` (the go-live readiness report).

Both risk commands build the bot from the persisted state without running a cycle and ask every
enabled plugin through a hook (``gobot_risk_status``, ``gobot_risk_reset``), so they work for any
risk plugin, built in or not.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import click

from gobot.cli.common import config_option

#: The plugins ``gobot risk reset`` starts: those that reset risk state and the alert channels that
#: announce it. No exchange plugin: an offline command opens no exchange session, so it works with a
#: live configuration and no ``--live`` (which only ``gobot start`` takes, to send orders).
RESET_NEEDS = ("gobot_risk_reset", "gobot_send_alert")


@click.group()
def risk():
    """Risk state: the circuit breaker, every counter against its limit, and resets."""


def _offline_bot(config_path):
    """The bot of the last run (finished or not), built from the persisted state; no cycle runs."""
    from gobot.cli.common import load
    from gobot.run.bot import Bot

    settings, plugin_set = load(config_path)
    plugin_set.raise_for_failures()
    return Bot(settings, plugin_set, reopen=True)


@risk.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path, as_json):
    """Print the breaker state, every counter against its limit, and why trading is or isn't allowed now.

    Reads the state the last cycle persisted (a running bot is not disturbed). Exit status 0.
    """
    from gobot.run.plugin_statuses import breaker_state, plugin_statuses
    from gobot.run.state import StateStore

    async def ask(bot):
        return await bot.requests.risk_statuses(), breaker_state(await plugin_statuses(bot))

    bot = _offline_bot(config_path)
    store = StateStore(bot.settings.state_path)
    statuses, breaker = asyncio.run(ask(bot))
    kill, paused = bot.kill_switch_on(), store.paused
    why = [f"{s.plugin}: {s.reason}" for s in statuses if not s.allows_trading]
    if kill:
        why.insert(0, f"kill switch on ({bot.settings.kill_switch_path})")
    if paused:
        why.insert(0, "paused (`gobot unpause`)")
    if not any(s.plugin for s in statuses):
        why.append("no risk plugin reports a status (a live bot needs risk_limits or circuit_breaker)")
    data = {
        "state_dir": str(store.dir),
        "run": bot.state.run_id if store.load() is not None else None,
        "time": bot.clock.now().isoformat(),
        "bot_running": store.bot_running(),
        "kill_switch": kill,
        "paused": paused,
        "breaker": breaker,  # whoever answers gobot_status with breaker=True
        "trading_allowed": not why,
        "why": why or [s_line for s_line in (f"{s.plugin}: {s.reason}" for s in statuses)],
        "plugins": [s.model_dump(mode="json") for s in statuses],
    }
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    _print_status(data)


def _print_status(data) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    run = f"run {data['run']}" if data["run"] else "no run yet"
    running = "a bot is running" if data["bot_running"] else "no bot running"
    console.print(f"Risk status of {run} at {data['time']} ({running})")
    console.print(f"Circuit breaker: [bold]{data['breaker']}[/]; "
                  f"kill switch {'[red]on[/]' if data['kill_switch'] else 'off'}; "
                  f"{'[red]paused[/]' if data['paused'] else 'not paused'}")
    for status in data["plugins"]:
        state = f" [{status['state']}]" if status["state"] else ""
        verdict = "[green]allows trading[/]" if status["allows_trading"] else "[red]blocks trading[/]"
        console.print(f"\n[bold]{status['plugin']}[/]{state}: {verdict} — {status['reason']}")
        if not status["counters"]:
            continue
        table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 1, 0, 2))
        for column in ("counter", "now", "limit", "note"):
            table.add_column(column, justify="right" if column in ("now", "limit") else "left")
        for counter in status["counters"]:
            unit = f" {counter['unit']}" if counter["unit"] else ""
            if counter["value"] == 1 and unit == " trades":
                unit = " trade"
            value = "-" if counter["value"] is None else _number(counter["value"]) + unit
            limit = "-" if counter["limit"] is None else _number(counter["limit"]) + unit
            row = [counter["name"], value, limit, counter["note"]]
            table.add_row(*([f"[red]{cell}[/]" for cell in row[:3]] + row[3:] if counter["blocking"] else row))
        console.print(table)
    console.print()
    if data["trading_allowed"]:
        console.print("[green]Trading allowed now[/]: " + "; ".join(data["why"]))
    else:
        console.print("[red]No new positions now[/]: " + "; ".join(data["why"]))


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if not value.is_integer() else str(int(value))
    return str(value)


@risk.command()
@config_option
@click.option("--reason", required=True, help="Why you reset it (audit log and alerts), e.g. 'reviewed the losses'.")
def reset(config_path, reason):
    """Clear the risk plugins' latched state: a circuit breaker's hard stop and counters, a day or
    week blocked by a loss limit. Trades already made still count toward the daily caps.

    A running bot applies the reset at the start of its next cycle; otherwise it is applied to
    the persisted state here. Either way it is written to the audit log and sent as an alert.
    """
    from gobot.config import load_settings
    from gobot.run.state import StateStore, atomic_write

    settings = load_settings(config_path)
    store = StateStore(settings.state_path)
    if store.bot_running():
        request = {"reason": reason, "requested_at": datetime.now(timezone.utc).isoformat()}
        atomic_write(store.reset_request_file, json.dumps(request))
        click.echo("A bot is running: it resets its risk state at the start of its next cycle (see its alerts).")
        return
    if store.load() is None:
        click.echo(f"No run in {store.dir}: nothing to reset.")
        return

    async def apply(bot):
        await bot.open_session(needs=RESET_NEEDS)
        try:
            answers = await bot.risk_reset(reason)
            bot.persist()
        finally:
            await bot.close_session()
        return answers

    bot = _offline_bot(config_path)
    answers = asyncio.run(apply(bot))
    for plugin, line in answers:
        click.echo(f"{plugin}: {line}")
    if not answers:
        click.echo("Nothing was latched: no plugin had anything to reset.")
    click.echo(f"Reset recorded in {settings.state_path / 'audit.jsonl'}.")


def _closed_trades(events: list[dict], mode: str) -> list[dict]:
    """The trades closed in runs of ``mode`` (``testnet``, ``live``), once each, oldest close first."""
    runs = {e["run_id"] for e in events if e.get("event") == "run_started" and e.get("mode") == mode}
    trades = {}
    for e in events:
        if e.get("event") == "trade_closed" and e.get("run_id") in runs:
            t = e.get("trade", {})
            trades[(e["run_id"], t.get("symbol"), t.get("opened_at"), t.get("closed_at"))] = t
    return sorted(trades.values(), key=lambda t: t.get("closed_at") or "")


def _figures(trades: list[dict]) -> str:
    if not trades:
        return "no closed trades"
    wins = sum(1 for t in trades if t.get("pnl", 0) > 0)
    pnl = sum(t.get("pnl", 0) for t in trades)
    return f"{wins / len(trades):.1%} won of {len(trades)}, {pnl / len(trades):+.4g} a trade"


def live_watch(state_dir, blocking: list[str]):
    """The go-live gate after launch: the last ``TARGET_TRADES`` live trades held to the gate's trade
    checks, beside the testnet figures that passed it, and every risk plugin that blocks trading now
    (the drift sentinel's breach among them)."""
    from gobot.ops.readiness import TARGET_TRADES, TARGET_WIN_RATE, ReadinessLine, ReadinessReport, _read

    events, _ = _read(state_dir / "audit.jsonl")
    testnet, live = _closed_trades(events, "testnet"), _closed_trades(events, "live")
    window = live[-TARGET_TRADES:]
    wins = sum(1 for t in window if t.get("pnl", 0) > 0)
    full = len(window) >= TARGET_TRADES
    report = ReadinessReport(str(state_dir))
    report.lines.append(ReadinessLine("live trades", f"a window of {TARGET_TRADES}", bool(live),
                                      f"{len(live)} closed live trades; testnet: {len(testnet)}"))
    rate = wins / len(window) if window else 0.0
    report.lines.append(ReadinessLine(
        f"live win rate (last {TARGET_TRADES})", f"> {TARGET_WIN_RATE:.0%}", not full or rate > TARGET_WIN_RATE,
        f"live: {_figures(window)}; testnet: {_figures(testnet)}"
        + ("" if full else f"; judged once {TARGET_TRADES} live trades closed")))
    for line in blocking:
        report.lines.append(ReadinessLine("risk plugin", "allows trading", False, line))
    return report


def _print_report(report, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("check", "target", "", "evidence"):
        table.add_column(column)
    for line in report.lines:
        table.add_row(line.name, line.target, "[green]PASS[/]" if line.passed else "[red]FAIL[/]", line.evidence)
    Console().print(table)


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--live", "after_launch", is_flag=True,
              help="After launch: the rolling live figures against the testnet ones, and what blocks trading now.")
def validate(config_path, as_json, after_launch):
    """The go-live readiness report: is the bot ready for real money?

    Judged from the audit log and the trade history in the state folder, for testnet runs (an
    exchange plugin that trades on its test network marks them): days run (7), trades (100+),
    win rate (> 60 %), every alert kind delivered, the kill switch exercised, a restart
    recovered, the audit log complete. Each line passes or fails with its evidence. `gobot start
    --live` refuses to run while it fails (unless --skip-validation). Exit status 1 if not ready.

    --live: after launch, the gate keeps watching. The last 100 live trades are held to the same
    trade checks (win rate > 60 %, judged once 100 closed), beside the testnet figures that passed
    it, and every risk plugin that blocks trading now fails a line (the drift sentinel's breach,
    a hard stop). Exit status 1 if a live check fails.
    """
    from gobot.config import load_settings
    from gobot.ops.readiness import readiness_report

    if after_launch:
        _validate_live(config_path, as_json)
        return
    report = readiness_report(load_settings(config_path).state_path)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        from rich.console import Console

        _print_report(report, f"Go-live readiness ({report.state_dir})")
        console = Console()
        if report.passed:
            console.print("[green]Ready[/]: `gobot start --live` may run.")
        else:
            console.print(f"[red]Not ready[/]: {len(report.failing)} of {len(report.lines)} checks fail; "
                          "`gobot start --live` refuses to run (see `--skip-validation`).")
    if not report.passed:
        raise click.exceptions.Exit(1)


def _validate_live(config_path, as_json) -> None:
    """``gobot validate --live``: exit status 1 when a live check fails."""
    from gobot.ops.readiness import readiness_report

    bot = _offline_bot(config_path)
    statuses = asyncio.run(bot.requests.risk_statuses())
    blocking = [f"{s.plugin}: {s.reason}" for s in statuses if not s.allows_trading]
    gate = readiness_report(bot.settings.state_path)
    report = live_watch(bot.settings.state_path, blocking)
    if as_json:
        click.echo(json.dumps({"live": report.as_dict(), "testnet": gate.as_dict()}, indent=2))
    else:
        _print_report(gate, f"The testnet gate ({gate.state_dir})")
        _print_report(report, "After launch: live, rolling")
        click.echo("Live checks pass." if report.passed
                   else f"Live checks fail: {len(report.failing)} of {len(report.lines)}.")
    if not report.passed:
        raise click.exceptions.Exit(1)
