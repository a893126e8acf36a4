"""Memory in the research commands: freed numpy buffers stay in the process for the next ones, and a
short command runs without the cyclic garbage collector.

A backtest or an optimizer trial makes many large temporaries (a year of 1m candles: columns of
4 MB, parse buffers of 1 MB a block). glibc's malloc gives each freed one back to the kernel and
the next allocation faults its pages in again, a page at a time — about a third of a first
``gobot backtest`` of a year of 1m in page faults. ``keep_freed_memory`` asks malloc to keep up to
``pad`` bytes at the top of the heap (``M_TOP_PAD``), so the pages are reused. Elsewhere than glibc it
does nothing. Only for research processes: a long-running bot keeps malloc's defaults.

``short_command`` wraps a command that allocates much and frees no reference cycles (``gobot
backtest``): malloc keeps freed memory and the collector is off while it runs (its passes over the
imported modules' objects were ~5 % of a first backtest), restored after (a test process goes on
collecting).
"""

from __future__ import annotations

import functools
import gc
import sys
from typing import Any, Callable

M_TOP_PAD = -2  # glibc's mallopt parameter (malloc.h)
DEFAULT_PAD = 256 << 20


def keep_freed_memory(pad: int = DEFAULT_PAD) -> bool:
    """Keep up to ``pad`` bytes of freed memory for reuse; True when glibc took the setting."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL(None).mallopt(M_TOP_PAD, pad))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


def short_command(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` run with ``keep_freed_memory`` and without the cyclic collector (restored after)."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        keep_freed_memory()
        collecting = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if collecting:
                gc.enable()

    return run
