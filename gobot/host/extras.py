"""The extras of the ``gobot-trading`` distribution: what a core feature needs beyond the core install.

The core install runs the demo. A command or option whose library comes with an extra checks for
it before importing it, so a missing one is one line naming the extra, never an ImportError
traceback (plugins do the same through their entry point, see ``plugin_manager.missing_extra``).
"""

from __future__ import annotations

import importlib.util

from gobot.errors import GobotError

#: The distribution users install (``gobot`` on PyPI is an unrelated project).
DISTRIBUTION = "gobot-trading"


class MissingExtra(GobotError):
    """A feature whose dependencies come with an extra that is not installed."""


def install_line(extra: str) -> str:
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def require(extra: str, module: str, feature: str) -> None:
    """Raise ``MissingExtra`` ("FEATURE needs: pip install 'gobot-trading[EXTRA]'") unless ``module`` is importable."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingExtra(f"{feature} needs: {install_line(extra)}")
