"""Shared CLI plumbing: the --config option, loading settings and plugins, logging set-up."""

from __future__ import annotations

import logging
import os
from typing import Iterable

import click

from gobot.config import Settings, load_settings
from gobot.host.plugin_manager import PluginSet, build_plugin_set
from gobot.secrets import RedactingFilter

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $GOBOT_CONFIG, else ./config.toml, else built-in defaults).",
)


def profile_option(help_text: str, multiple: bool = False):
    """``--profile NAME``: a strategy profile of ``gobot.profiles`` (an unknown name is a usage error naming the
    choices)."""
    from gobot.profiles import PROFILES

    return click.option("--profile", "profile_names" if multiple else "profile_name",
                        type=click.Choice(list(PROFILES)), multiple=multiple, metavar="NAME",
                        help=f"{help_text} Profiles: {', '.join(PROFILES)} (`gobot profiles` lists every value "
                        "and why).")


def percent_or_none(value: str | None, flag: str):
    """A --stop-loss/--take-profit value: a percent, ``none`` (no level), or ``...`` (not given: the config's)."""
    if value is None:
        return ...
    if value.strip().lower() in ("none", "off", "0"):
        return None
    try:
        number = float(value.rstrip("%"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: a percent such as 2, or none", param_hint=flag) from None
    if number <= 0:
        raise click.BadParameter("must be positive (or none)", param_hint=flag)
    return number


def load(config_path: str | None, enable: Iterable[str] = (), disable: Iterable[str] = (), *,
         live: bool = False, explain: bool = True, profile=None) -> tuple[Settings, PluginSet]:
    """Settings from the file (with ``profile``, a ``gobot.profiles.Profile``, merged over it) plus plugins
    per ``[plugins]`` and the command line's -p/--disable (``explain``: see ``build_plugin_set``)."""
    settings = load_settings(config_path, profile=profile)
    plugin_set = build_plugin_set(
        enable=[*settings.plugins.enable, *enable],
        disable=[*settings.plugins.disable, *disable],
        live=live,
        explain=explain,
    )
    return settings, plugin_set


def setup_logging(settings: Settings, verbose: bool = False) -> None:
    """Warnings to stderr, everything to ``<state_dir>/gobot.log``; secrets masked in both."""
    from gobot.run.state import ensure_private_dir

    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_gobot", False):  # a previous run in this process (tests, embedding)
            root.removeHandler(handler)
            handler.close()
    redacting = RedactingFilter()
    console = logging.StreamHandler()
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    log_file = ensure_private_dir(settings.state_path) / "gobot.log"
    os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))  # owner-only, like the state
    from gobot.run.state import DiskTolerantFileHandler

    file_handler = DiskTolerantFileHandler(log_file, encoding="utf-8")  # a full disk drops lines, prints no traceback
    file_handler.setLevel(logging.INFO)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for handler in (console, file_handler):
        handler.addFilter(redacting)
        handler._gobot = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in QUIET_LIBRARIES:  # gobot.log at INFO is gobot's story; their warnings and errors still come through
        logging.getLogger(name).setLevel(logging.WARNING)


#: Libraries whose INFO lines ("Added job", "Running job", "Context impl SQLiteImpl.", "Running upgrade ...")
#: are not the bot's story: WARNING and up only.
QUIET_LIBRARIES = ("apscheduler", "alembic")


def plugin_commands() -> tuple[dict[str, click.Command], Exception | None]:
    """Commands added by enabled plugins (config from $GOBOT_CONFIG or ./config.toml), and the error
    that kept them from being found (a broken config), if one did."""
    from gobot.errors import GobotError
    from gobot.host.hook_caller import HookCaller

    try:
        _settings, plugin_set = load(None)
        group = click.Group()
        HookCaller(plugin_set.pm).collect_sync("gobot_register_commands", cli=group, load_config=load_config)
    except GobotError as exc:
        return {}, exc  # `gobot config check` and `gobot plugins` report the problem in full
    return dict(group.commands), None


class LoadedConfig:
    """``gobot_hookspecs.ConfigView``: what a plugin's command gets from ``load_config``."""

    def __init__(self, settings: Settings, plugin_configs: dict):
        self.config = settings
        self._plugin_configs = plugin_configs

    def plugin_config(self, name: str):
        return self._plugin_configs.get(name)

    def history(self, symbol: str, timeframe: str, start=None, end=None):
        """Past candles as ``gobot backtest`` finds them (``gobot.research.backtest.history``)."""
        from gobot.research.backtest.history import history

        return history(self.config, symbol, timeframe, start, end, replay_config=self._plugin_configs.get("replay"))


def load_config(config_path: str | None = None) -> LoadedConfig:
    """The validated settings and enabled plugins' sections, for plugin commands (``gobot_register_commands``)."""
    from gobot.config import load_plugin_configs
    from gobot.host.hook_caller import HookCaller

    settings, plugin_set = load(config_path)
    plugin_set.raise_for_failures()
    return LoadedConfig(settings, load_plugin_configs(settings, HookCaller(plugin_set.pm)))
