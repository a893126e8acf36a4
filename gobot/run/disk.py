"""A full disk: the bot degrades, never crashes.

On a disk error (``is_disk_error``: ENOSPC, EDQUOT, EFBIG, EIO, EROFS) while the loop writes the state
folder, the bot keeps going on the state in memory: it opens no new position (exits, stops and
CRITICAL closes go on), raises one CRITICAL ``disk_full`` alert (the console, Telegram and webhooks
need no disk), keeps audit lines in memory, and tries again at every cycle's end. The first save
that succeeds with every waiting audit line written ends it: ``disk_recovered``, new positions again.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from gobot.run import RunningBot
from gobot.run.state import disk_error_text, is_disk_error
from gobot_hookspecs import Alert, Severity

log = logging.getLogger(__name__)


class DiskGuard:
    """The loop's writes to the state folder, and the trouble while its disk takes none."""

    def __init__(self, bot: RunningBot):
        self.bot = bot
        #: while the disk takes no writes: what failed, since when (None = all well)
        self.trouble: dict[str, Any] | None = None
        self.saved_iteration = bot.state.iteration  # the last cycle whose state is on disk

    def save_state(self) -> bool:
        """Save the state from the loop; False if the disk took no write (see the module's docstring)."""
        bot = self.bot
        try:
            bot.store.save(bot.state)
        except OSError as exc:
            if not is_disk_error(exc):
                raise
            self.failed(bot.store.state_file, exc)
            return False
        self.saved_iteration = bot.state.iteration
        if self.trouble is not None and bot.audit_log.flush():
            self._recovered()
        return True

    def write(self, path: Path, write: Callable[[], None]) -> bool:
        """Run ``write()``; a disk error makes the bot degrade and returns False, any other error is raised."""
        try:
            write()
        except OSError as exc:
            if not is_disk_error(exc):
                raise
            self.failed(path, exc)
            return False
        return True

    def failed(self, path: Path, exc: OSError) -> None:
        """A write failed on a disk error: the first one alerts, the others are counted."""
        if self.trouble is not None:
            self.trouble["failed_writes"] += 1
            return
        bot, error, since = self.bot, disk_error_text(exc), self.saved_iteration + 1
        self.trouble = {"since_cycle": since, "file": str(path), "error": error, "failed_writes": 1,
                        "started": time.monotonic()}
        log.critical("cannot write %s: %s — no new positions until the state can be saved again (retried every cycle)",
                     path, error)
        bot.ctx.alert(Alert(
            kind="disk_full", severity=Severity.CRITICAL,
            title=f"Disk full: cannot write {Path(path).name} — no new positions",
            text=f"{error} in {bot.store.dir}. Open positions stay protected (exits and stops go on); the state is "
                 "kept in memory and saved again at every cycle's end; new positions resume once a save succeeds. "
                 "Free space there.",
            data={"file": str(path), "error": error, "since_cycle": since}))
        bot.audit("disk_full", file=str(path), error=error, since_cycle=since)

    def _recovered(self) -> None:
        bot, trouble, self.trouble = self.bot, self.trouble, None
        cycles = max(0, bot.state.iteration - trouble["since_cycle"])  # cycles that ended without a save (this one did)
        seconds = time.monotonic() - trouble["started"]
        bot.audit("disk_recovered", since_cycle=trouble["since_cycle"], cycles=cycles,
                  failed_writes=trouble["failed_writes"], seconds=round(seconds, 3), error=trouble["error"])
        bot.ctx.alert(Alert(
            kind="disk_recovered", severity=Severity.WARNING,
            title="Disk writable again: state saved, new positions allowed",
            text=f"{cycles} cycle(s) ended without a save, from cycle {trouble['since_cycle']} on "
                 f"({trouble['error']} on {trouble['file']}); cycle {bot.state.iteration} is saved and every waiting "
                 "audit line written",
            data={"since_cycle": trouble["since_cycle"], "cycles": cycles, "failed_writes": trouble["failed_writes"]}))
