"""Errors the CLI turns into one readable line each (never a traceback)."""

from __future__ import annotations

from dataclasses import dataclass


class GobotError(Exception):
    """Base class: ``str(error)`` is the message a user reads."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file, located by file and dotted key."""

    file: str
    key: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.file}:{self.key}: {self.message}"
        return f"{text} — fix: {self.fix}" if self.fix else text


class ConfigError(GobotError):
    """The configuration is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class PluginError(GobotError):
    """A plugin failed to load, register or answer; the message names the plugin and its distribution."""

    def __init__(self, plugin: str, message: str, distribution: str | None = None, hook: str | None = None):
        self.plugin = plugin
        self.distribution = distribution
        self.hook = hook
        where = f"plugin '{plugin}'"
        if distribution:
            where += f" (distribution {distribution})"
        if hook:
            where += f" in {hook}"
        super().__init__(f"{where}: {message}")


class Refused(GobotError):
    """A command will not do what was asked, and says why (a file it would overwrite, ...): exit status 2."""


class StartRefused(Refused):
    """``gobot start`` will not run, and says why (kill switch, live without a risk plugin, ...)."""
