"""The ``gobot`` command line. Commands live in one module per family and load only when used,
so ``gobot --help`` stays fast; plugins may add commands through ``gobot_register_commands``."""

from __future__ import annotations

import gc
import importlib
import sys

import click

from gobot.errors import GobotError, PluginError

#: command name -> "module:attribute", imported on first use.
COMMANDS = {
    "start": "gobot.cli.start:start",
    "status": "gobot.cli.start:status",
    "kill": "gobot.cli.control:kill",
    "resume": "gobot.cli.control:resume",
    "pause": "gobot.cli.control:pause",
    "unpause": "gobot.cli.control:unpause",
    "state": "gobot.cli.state:state",
    "plugins": "gobot.cli.plugins:plugins",
    "profiles": "gobot.cli.profiles:profiles",
    "init": "gobot.cli.config:init",
    "config": "gobot.cli.config:config",
    "data": "gobot.cli.data:data",
    "risk": "gobot.cli.risk:risk",
    "validate": "gobot.cli.risk:validate",
    "alerts": "gobot.cli.alerts:alerts",
    "watchdog": "gobot.cli.watchdog:watchdog",
    "backtest": "gobot.cli.backtest:backtest",
    "optimize": "gobot.cli.optimize:optimize",
    "plot": "gobot.cli.plot:plot",
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or help lists it)."""

    @staticmethod
    def _plugins(ctx: click.Context) -> dict[str, click.Command]:
        # Cached per invocation, not per process: a test (or an embedding program) that installs
        # or enables a plugin sees its commands on the next run without reloading this module.
        meta = ctx.find_root().meta
        if "gobot.plugin_commands" not in meta:
            from gobot.cli.common import plugin_commands

            meta["gobot.plugin_commands"], meta["gobot.plugin_commands_error"] = plugin_commands()
        return meta["gobot.plugin_commands"]

    @classmethod
    def _plugin_help(cls, ctx: click.Context) -> dict[str, str]:
        """Plugin commands' names and short help, for listing: kept between runs (``gobot.cli.listing``)
        while nothing they depend on changed, so `gobot --help` and completion load no plugin."""
        meta = ctx.find_root().meta
        if "gobot.plugin_help" not in meta:
            from gobot.cli import listing

            found = None if "gobot.plugin_commands" in meta else listing.cached()
            if found is None:
                commands = cls._plugins(ctx)
                if meta["gobot.plugin_commands_error"] is None:
                    listing.store(commands)
                found = {name: command.get_short_help_str(60) for name, command in commands.items()}
            meta["gobot.plugin_help"] = found
        return meta["gobot.plugin_help"]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self._plugin_help(ctx)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        try:
            return self._command(ctx, name)
        finally:
            if name not in PREPARED_UNCOLLECTED:
                imported()

    def _command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module, attribute = COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attribute)
        command = self._plugins(ctx).get(name)
        error = ctx.find_root().meta.get("gobot.plugin_commands_error")
        if command is None and error is not None and not ctx.resilient_parsing:
            # A plugin's command (`gobot report`) cannot be found while the config is broken: say
            # what is broken (one line a problem, exit status 2), not "no such command".
            raise error
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help straight from the docstrings' first lines, without importing every module.
        rows = [(name, SHORT_HELP.get(name, "")) for name in sorted(COMMANDS)]
        rows += sorted(self._plugin_help(ctx).items())
        with formatter.section("Commands"):
            formatter.write_dl(rows)


SHORT_HELP = {
    "start": "Run the bot (paper mode on bundled data unless told otherwise).",
    "status": "Show the run's state, open positions and last cycle.",
    "kill": "Engage the kill switch: no new orders, the running loop ends.",
    "resume": "Remove the kill switch so `gobot start` may run again.",
    "pause": "Keep scanning and reporting, but open no new positions.",
    "unpause": "Allow new positions again.",
    "state": "The state file: `gobot state restore` puts back the backup of a damaged state.json.",
    "plugins": "List every plugin: distribution, hooks, enabled or why not.",
    "profiles": "Strategy profiles (conservative, aggressive, scalping) side by side: every value and why.",
    "init": "Write a commented config.toml with every default (--profile NAME: a profile's values).",
    "config": "Check a config file (`gobot config check`).",
    "data": "Market data: download from an exchange, or generate the synthetic demo data.",
    "risk": "Risk state: `gobot risk status` (breaker, counters, why) and `gobot risk reset`.",
    "validate": "Go-live readiness report from the audit log (gates `gobot start --live`).",
    "alerts": "Alert channels: `gobot alerts test` sends one of every kind.",
    "watchdog": "Alert when the bot's heartbeat goes stale (run it beside the bot).",
    "backtest": "Backtest a strategy on candle files, offline (summary, --html, --json).",
    "optimize": "Tune a strategy's parameters with Optuna, walk-forward validated.",
    "plot": "Chart candles with a backtest's or a run's trades in one HTML file (--png).",
}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gobot-trading")
def cli() -> None:
    """gobot: a plugin-based trading bot. Safe by default: with no keys it trades on paper,
    on bundled market data.

    \b
    Quick start:
      gobot init          write config.toml (every setting, with units)
      gobot start         run 50 paper cycles on the bundled data
      gobot status        what the bot holds and did last
      gobot plugins       what is installed, enabled, and why

    Every command takes --config PATH (else $GOBOT_CONFIG, else ./config.toml).
    """


#: Hooks called while plugins load, register and start: a failure there means the set-up is wrong
#: (a plugin that cannot load, configure or start; None = loading): exit status 2. A plugin failing
#: in any other hook failed at work (an exchange unreachable during a download, ...): exit status 1.
SETUP_HOOKS = frozenset({None, "gobot_config_model", "gobot_register_commands", "gobot_register_strategies",
                         "gobot_clock", "gobot_rate_limit_policy", "gobot_environment", "gobot_startup"})


def exit_status(error: GobotError) -> int:
    """The convention every command follows (docs/operations.md, "Exit status"): 0 success,
    1 runtime failure, 2 usage or configuration error — a refusal to run as asked included."""
    if isinstance(error, PluginError) and error.hook not in SETUP_HOOKS:
        return 1
    return getattr(error, "exit_status", 2)


#: ``main`` keeps the cyclic collector off while the command's modules import (they allocate much and
#: free no cycles: ~75 collector passes, ~13 ms, of a first ``gobot backtest``), then freezes what was
#: imported (later passes skip it) and collects again (``imported``).
_importing = {"collector_off": False}

#: Commands that import and prepare much in their own body (``gobot optimize``: numpy, Optuna, the candles,
#: ~45 collector passes, ~7 ms of its serial start): the collector stays off until they call ``imported``
#: before their long phase. Frozen before the optimizer forks its workers, those objects are not written to by
#: the workers' collections either (the pattern ``gc.freeze``'s documentation gives for fork without exec).
PREPARED_UNCOLLECTED = frozenset({"optimize"})


def imported() -> None:
    """The command's modules are imported: freeze what exists and turn the collector back on (when ``main``
    turned it off; run inside another program, nothing changes)."""
    if _importing["collector_off"]:
        _importing["collector_off"] = False
        gc.freeze()
        gc.enable()


def main() -> None:
    """Entry point: exit status 0 success, 1 runtime failure, 2 usage or configuration error;
    errors are one line on stderr (see ``exit_status``)."""
    if gc.isenabled():
        gc.disable()
        _importing["collector_off"] = True
    try:
        # Without standalone mode click returns ``ctx.exit(code)``'s code instead of exiting.
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except GobotError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(exit_status(exc))
    except OSError as exc:  # a full disk (or quota, I/O error, read-only file system): one line, not a traceback
        from gobot.run.state import disk_error_text, is_disk_error

        if not is_disk_error(exc):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        click.secho(f"Error: {where}{disk_error_text(exc)} — fix: free space on that file system "
                    "and run the command again", fg="red", err=True)
        sys.exit(1)  # the machine failed the command, not its user: a runtime failure
    sys.exit(code if isinstance(code, int) else 0)


def run() -> None:
    """The ``gobot`` program (its console script and ``python -m gobot``): ``main``, and once a research
    command that asked for it succeeded, the process's end without the interpreter's tear-down
    (``gobot.research.heap.end_process``). ``main`` itself, called inside another program, only exits."""
    try:
        main()
    except SystemExit as exit:
        from gobot.research.heap import end_process

        end_process(exit.code)
