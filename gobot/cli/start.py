"""``gobot start`` and ``gobot status``."""

from __future__ import annotations

import asyncio
import json
import os

import click

from gobot.cli.common import config_option, load, profile_option, setup_logging
from gobot.errors import StartRefused

LIVE_KEYS = ("BINANCE_API_KEY", "BINANCE_API_SECRET")


@click.command()
@config_option
@click.option("-p", "--plugin", "enable", multiple=True, metavar="NAME",
              help="Enable a plugin for this run (repeatable).")
@click.option("--disable", multiple=True, metavar="NAME", help="Disable a plugin for this run (repeatable).")
@click.option("--max-iterations", type=click.IntRange(min=0), default=None,
              help="Cycles to run (0 = no limit); default from config.")
@click.option("--paper/--live", "paper", default=True, show_default=True,
              help="--paper (the default) never risks real money: simulated fills, or an exchange plugin's testnet "
              "(the start line says which); --live sends real orders (needs keys in the environment "
              "and a risk plugin).")
@click.option("--fresh", is_flag=True,
              help="Start a new run instead of resuming an unfinished one (the old state is archived; "
              "on the wall clock open positions and working orders carry over).")
@click.option("--skip-validation", is_flag=True,
              help="With --live: start although `gobot validate` fails (audited, and alerted as CRITICAL).")
@click.option("--serve", is_flag=True,
              help="Serve /health, /metrics, the JSON API and the live dashboard while running "
              "([server] host and port).")
@click.option("--host", metavar="ADDRESS", default=None,
              help="Address the server binds (implies --serve); default [server] host, 127.0.0.1. A non-loopback one "
                   "needs GOBOT_DASHBOARD_TOKEN.")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="TCP port of the server (implies --serve); default [server] port, 8765; 0 = any free port.")
@click.option("--quiet", is_flag=True, help="No per-cycle table at the end, just the summary.")
@click.option("-v", "--verbose", is_flag=True, help="Log INFO messages to the terminal too.")
@profile_option("Run with a strategy profile's risk limits, sizing, timeframe and strategy parameters merged over "
                "the config file for this run (GOBOT_ variables and flags still win; amounts scale with "
                "initial_capital_usd). Given several times: the profiles run side by side on paper, each on its own "
                "sleeve of capital.", multiple=True)
@click.option("--share", "shares", multiple=True, metavar="PROFILE=PERCENT",
              help="With several --profile: PROFILE's share of initial_capital_usd (repeatable); the profiles not "
                   "named split the rest equally (default: equal sleeves).")
def start(config_path, enable, disable, max_iterations, paper, fresh, skip_validation, serve, host, port, quiet,
          verbose, profile_names, shares):
    """Run the bot: cycles of scan -> ideas -> adjust -> validate -> execute -> report.

    With no config and no keys this trades on paper, on the bundled synthetic market data, on a
    simulated clock (50 cycles of 15 minutes take seconds). An unfinished run resumes where it
    stopped (after a crash or kill -9 too). Ends on max_iterations, a completion target
    (daily_profit_target, max_daily_loss), the kill switch, or Ctrl-C (state is persisted).

    --live needs the exchange keys in the environment, an exchange executor, risk_limits or
    circuit_breaker enabled, and — unless the exchange plugin says the orders go to its testnet —
    a passing go-live readiness report (`gobot validate`), or --skip-validation.

    --profile NAME (conservative, aggressive, scalping) merges a strategy profile's risk limits,
    sizing, timeframe and strategy parameters over the config file for this run; the start line
    names it. `gobot profiles` shows every value and why. Several run side by side on paper, each on
    its own sleeve of capital (<state_dir>/sleeves/<profile>/), compared at the end and by `gobot report`.

    --serve (or [server] enabled = true) runs an HTTP server in this process: the dashboard at /,
    /health for supervisors, Prometheus /metrics; --host and --port choose where (and imply
    --serve). Its pause/resume/kill buttons need the token in GOBOT_DASHBOARD_TOKEN; a non-loopback
    host without it is refused.
    """
    from gobot.profiles import get_profile
    from gobot.run.bot import Bot
    from gobot.run.runner import Runner
    from gobot.run.summary import print_run_summary

    live = not paper
    if len(profile_names) > 1 or shares:  # side by side, each on its own sleeve (gobot.cli.sleeves)
        from gobot.cli.sleeves import start_sleeves

        return start_sleeves(config_path, profile_names, shares, enable, disable, max_iterations, live=live,
                             fresh=fresh, serve=serve or host is not None or port is not None, verbose=verbose)
    profile = get_profile(profile_names[0]) if profile_names else None
    settings, plugin_set = _load_with_profile(config_path, enable, disable, live, profile)
    _warn_unknown_sections(settings, plugin_set)
    if settings.orchestrator.kill_switch_enabled and settings.kill_switch_path.exists():
        raise StartRefused(f"the kill switch is on ({settings.kill_switch_path}); run `gobot resume` to remove it")
    from gobot.run.state import StateStore

    if StateStore(settings.state_path).bot_running():
        raise StartRefused(f"a bot is already running on {settings.state_path}; "
                           "stop it first (or use another state_dir)")
    if live:
        _check_live(plugin_set)
    overrides = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    for key, value in overrides.items():  # validated as [server] host and port are
        try:
            setattr(settings.server, key, value)
        except ValueError as exc:
            raise click.BadParameter(str(exc).splitlines()[-1].strip(), param_hint=f"--{key}") from None
    serve = serve or bool(overrides) or settings.server.enabled
    if serve:
        from gobot.ops.server import TOKEN_ENV, check_bind

        check_bind(settings.server.host, os.environ.get(TOKEN_ENV))
    from gobot.config import check_runnable

    check_runnable(settings)  # the state folder, secrets in the environment: as `gobot config check` reports them
    setup_logging(settings, verbose)
    had_state = fresh and (settings.state_path / "state.json").exists()
    bot = Bot(settings, plugin_set, live=live, fresh=fresh)
    _same_profile(bot, profile)
    if fresh:
        click.echo(_fresh_note(settings.state_path, had_state, bot))
    if live:
        _go_live_gate(bot, skip_validation)
    mode = bot.environment.upper() if bot.environment == "live" else bot.environment  # paper, testnet or LIVE

    def started() -> None:  # once every plugin started: a refusal prints its one line instead
        named = f", profile {profile.name}" if profile is not None else ""
        if bot.resumed_from is not None:
            click.echo(f"Resuming run {bot.state.run_id} ({mode} mode{named}) after cycle {bot.resumed_from}.")
        else:
            click.echo(f"Run {bot.state.run_id}: {mode} mode{named}, plugins: {', '.join(plugin_set.enabled)}")

    runner = Runner(bot, max_iterations, on_started=started)
    outcome = asyncio.run(_serve_and_run(runner, settings.server) if serve else runner.run())
    print_run_summary(bot.state, outcome.reason, table=not quiet, currency=bot.ctx.currency, portfolio=bot.portfolio)


def _same_profile(bot, profile) -> None:
    """A new run records its profile; a run resumes only under the profile it started with (another
    would change its timeframe, limits and strategy mid-run)."""
    name = profile.name if profile is not None else ""
    if bot.resumed_from is None:
        bot.state.profile = name
    elif bot.state.profile != name:
        started = f"with --profile {bot.state.profile}" if bot.state.profile else "without a profile"
        again = f"--profile {bot.state.profile}" if bot.state.profile else "no --profile"
        raise StartRefused(f"run {bot.state.run_id} was started {started}; resume it with {again}, "
                           "or start a new run with --fresh")


def _load_with_profile(config_path, enable, disable, live: bool, profile):
    """Settings and plugins, with ``profile`` (or None) merged over the config; the archive labels the
    run with the profile (``gobot report``)."""
    settings, plugin_set = load(config_path, enable, disable, live=live, profile=profile)
    if profile is not None:
        settings.plugin_sections.setdefault("archiver", {}).setdefault("profile", profile.name)
    plugin_set.raise_for_failures()
    return settings, plugin_set


#: What a fresh run leaves in the state folder, as the --fresh line names it (only those present are named).
_KEPT_ON_FRESH = (
    ("archive.db", "the archive (archive.db)"), ("archive_outbox.jsonl", "the archive outbox"),
    ("vision", "the vision answer cache and spend ledger (vision/)"), ("telegram-outbox.json", "the Telegram outbox"),
    ("optimizer", "the optimizer's studies"), ("optimizer.db", "the optimizer's studies"),
    ("optimizer.journal", "the optimizer's studies"),
    ("audit.jsonl", "the audit log"), ("gobot.log", "gobot.log"),
    ("PAUSED", "the pause (PAUSED)"), ("runs", "earlier runs (runs/)"),
)


def _fresh_note(state_path, had_state: bool, bot) -> str:
    """One line: what --fresh started afresh, and what it keeps in the state folder."""
    kept = list(dict.fromkeys(what for name, what in _KEPT_ON_FRESH if (state_path / name).exists()))
    if bot.state.positions or bot.state.open_orders:
        kept.append(f"{len(bot.state.positions)} open position(s) and {len(bot.state.open_orders)} "
                    "working order(s) (wall clock)")
    start = ("--fresh: a new run, the previous one's state archived in runs/" if had_state
             else "--fresh: a new run (none to archive)")
    return f"{start}; kept: {', '.join(kept) if kept else 'nothing else'}."


async def _serve_and_run(runner, server_config):
    """The run, with the dashboard server in the same event loop for as long as it lasts."""
    from gobot.ops.server import TOKEN_ENV, DashboardServer

    server = DashboardServer(runner.bot, runner, host=server_config.host, port=server_config.port,
                             token=os.environ.get(TOKEN_ENV), stall_seconds=server_config.stall_seconds)
    url = await server.start()
    controls = "on" if os.environ.get(TOKEN_ENV) else f"off (set {TOKEN_ENV} to enable)"
    click.echo(f"Dashboard: {url} — health {url}health, metrics {url}metrics; controls {controls}", err=True)
    try:
        return await runner.run()
    finally:
        await server.stop()


def _warn_unknown_sections(settings, plugin_set) -> None:
    """A ``[plugins.<name>]`` section no installed plugin reads (a typo leaves its plugin on its
    defaults): one warning line with the closest name; `gobot config check` refuses it."""
    from gobot.config import did_you_mean

    for name in sorted(set(settings.plugin_sections) - set(plugin_set.plugins)):
        click.secho(f"warning: {settings.file_label}:plugins.{name}: no installed plugin has this name "
                    f"and the section is ignored — fix: {did_you_mean(name, plugin_set.plugins)}rename or remove it",
                    fg="yellow", err=True)


def _check_live(plugin_set) -> None:
    if not plugin_set.implementers("gobot_risk_check"):
        raise StartRefused("--live needs at least one enabled risk plugin (e.g. risk_limits); none is enabled")
    if not {"risk_limits", "circuit_breaker"} & set(plugin_set.enabled):
        raise StartRefused("--live needs risk_limits or circuit_breaker enabled: a replacement may take the place "
                           "of one of them, never of both")
    missing = [key for key in LIVE_KEYS if not os.environ.get(key)]
    if missing:
        raise StartRefused(f"--live needs {', '.join(missing)} in the environment (never in config.toml)")
    if not plugin_set.implementers("gobot_execute_order"):
        raise StartRefused("--live needs an enabled exchange executor plugin; the paper executor never trades live")


def _go_live_gate(bot, skip_validation: bool) -> None:
    """Real money needs a passing readiness report (testnet runs are how it is earned)."""
    from gobot.ops.readiness import TESTNET, readiness_report
    from gobot_hookspecs import Alert, Severity

    if bot.environment == TESTNET:
        return
    report = readiness_report(bot.settings.state_path)
    if report.passed:
        return
    failing = "; ".join(f"{line.name}: {line.evidence}" for line in report.failing)
    if not skip_validation:
        raise StartRefused(f"--live: the go-live readiness report fails {len(report.failing)} of "
                           f"{len(report.lines)} checks "
                           f"(run `gobot validate` for the evidence, or pass --skip-validation): {failing}")
    bot.audit("validation_skipped", failing=[line.name for line in report.failing], evidence=failing)
    bot.ctx.alert(Alert(kind="validation_skipped", severity=Severity.CRITICAL,
                        title="LIVE without a passing readiness report (--skip-validation)", text=failing))
    click.secho(f"Warning: --skip-validation: going live although {len(report.failing)} readiness checks fail.",
                fg="red", err=True)


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path, as_json):
    """Show the run's state: iteration, equity, open positions, each strategy's validation (and what a
    failure did), the last cycle, pause and kill switch."""
    from gobot.config import load_settings
    from gobot.run.state import StateStore
    from gobot.run.summary import print_status, status_dict

    settings = load_settings(config_path)
    store = StateStore(settings.state_path)
    data = status_dict(store.load(), store, settings)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        print_status(data)
