"""Deterministic crash points for crash-and-resume tests, the one implementation the core uses.

``GOBOT_TEST_KILL_POINT=<point>:<n>`` makes the process SIGKILL itself when it reaches that point:
``before_persist:N``, ``after_cycle:N``, ``before_archive_fill:N`` (``gobot.run.bot``),
``mid_state_write:N`` (``gobot.run.state.StateStore.save``, half a state file written) and
``optimizer_trial:N`` (``gobot.research.optimizer``). Standard library only: the core imports it in
production, where pytest is not installed. No plugin has a crash point of its own (plugins cannot
import gobot; one that needed a crash point would read the same variable).
"""

from __future__ import annotations

import os
import signal
from typing import Callable

KILL_POINT_ENV = "GOBOT_TEST_KILL_POINT"
#: read once: the crash tests set it in the environment of the process they start
ARMED = os.environ.get(KILL_POINT_ENV)


def armed(name: str) -> bool:
    """True if a test asked for a crash at ``name`` (a writer then splits its write to crash halfway)."""
    return ARMED == name


def kill_point(name: str, before: Callable[[], None] | None = None) -> None:
    """SIGKILL this process here if a test asked for ``name``; ``before()`` runs first (e.g. write half a file)."""
    if not armed(name):
        return
    if before is not None:
        before()
    os.kill(os.getpid(), signal.SIGKILL)
