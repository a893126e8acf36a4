"""Memory the research commands keep: freed numpy buffers stay in the process for the next ones.

A backtest or an optimizer trial makes many large temporaries (a year of 1m candles: columns of
4 MB, parse buffers of 1 MB a block). glibc's malloc gives each freed one back to the kernel and
the next allocation faults its pages in again, a page at a time — about a third of a first
``gobot backtest`` of a year of 1m in page faults. ``keep_freed_memory`` asks malloc to keep up to
``pad`` bytes at the top of the heap (``M_TOP_PAD``), so the pages are reused. Only for short research
processes: a long-running bot keeps malloc's defaults. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import sys

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
