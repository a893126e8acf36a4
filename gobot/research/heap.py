"""Memory in the research commands: freed numpy buffers stay in the process for the next ones, and a
short command runs without the cyclic garbage collector.

A backtest or an optimizer trial makes many large temporaries (a year of 1m candles: columns of
4 MB, parse buffers of 1 MB a block). glibc's malloc gives each freed one back to the kernel and
the next allocation faults its pages in again, zeroed, a page at a time — about a third of a first
``gobot backtest`` of a year of 1m, 15-20 % of an optimizer run. ``keep_freed_memory`` asks malloc to
keep such blocks in the heap and the heap's freed top (``M_MMAP_THRESHOLD``, ``M_TRIM_THRESHOLD``,
``M_TOP_PAD``), so their pages are reused; the peak memory does not change. Elsewhere than glibc it
does nothing. Only for research processes (and the optimizer's forked workers): a long-running bot
keeps malloc's defaults.

``short_command`` wraps a command that allocates much and frees no reference cycles (``gobot
backtest``): malloc keeps freed memory and the collector is off while it runs (its passes over the
imported modules' objects were ~5 % of a first backtest), restored after (a test process goes on
collecting).

A research command that finished asks (``end_without_teardown``) that its process end without the
interpreter's tear-down of every module and object (30-90 ms, the last serial part of a backtest or an
optimization): the ``gobot`` program (``gobot.cli.run``) then ends with ``end_process``. Run inside another
program (a test's CliRunner, ``gobot.cli.main``) nothing ends.
"""

from __future__ import annotations

import functools
import gc
import sys
from typing import Any, Callable

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters (malloc.h)
DEFAULT_PAD = 256 << 20


def keep_freed_memory(pad: int = DEFAULT_PAD) -> bool:
    """Keep freed memory for reuse: blocks up to 32 MB (the mmap threshold's maximum) come from the heap,
    which is trimmed only above 512 MB and keeps ``pad`` bytes when it is; True when glibc took it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    settings = ((M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 512 << 20), (M_TOP_PAD, pad))
    return all([bool(mallopt(parameter, value)) for parameter, value in settings])


def one_blas_thread() -> bool:
    """Ask OpenBLAS for no threads of its own, before numpy is first imported (True when in time). Its start on
    import otherwise runs a thread per core that spins for ~0.1 s of CPU, taking the core the rest of the start or
    a second optimizer worker needs; the research code never calls BLAS, so nothing else changes. A thread count
    set in the environment (``OPENBLAS_NUM_THREADS``, ``GOTO_NUM_THREADS``, ``OMP_NUM_THREADS``) is kept."""
    import os

    if "numpy" in sys.modules:
        return False
    if not any(os.environ.get(name) for name in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
    return True


def short_command(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` run with ``keep_freed_memory`` and without the cyclic collector (restored after); when
    it returns, its process may end without tear-down (``end_without_teardown``)."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        keep_freed_memory()
        collecting = gc.isenabled()
        gc.disable()
        try:
            value = function(*args, **kwargs)
        finally:
            if collecting:
                gc.enable()
        end_without_teardown()
        return value

    return run


_teardown = {"skip": False}


def end_without_teardown() -> None:
    """Ask the ``gobot`` program (``gobot.cli.run``) to end with ``end_process`` once the command returns."""
    _teardown["skip"] = True


def end_process(status: int | str | None) -> None:
    """``sys.exit(status)``; after a research command that asked (``end_without_teardown``) and succeeded,
    the same exit without the tear-down: every other thread is waited for (a candle cache being written),
    the exit handlers run (logging's, multiprocessing's) and the output is flushed as at any exit, and the
    kernel takes the memory back at once. A failed flush (a closed pipe) exits the ordinary way, which
    reports it."""
    if status not in (0, None) or not _teardown["skip"]:
        sys.exit(status)
    import atexit
    import os
    import threading

    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        sys.exit(status)
    os._exit(0)
