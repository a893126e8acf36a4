"""Writing a plugin's own files in ``state_dir`` safely (stdlib only): ``write_private(path, data)``,
``is_disk_error(exc)`` (the errors a running bot survives by holding its writes for later) and
``use_wal(connection)`` for an SQLite file that several processes open at once."""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

#: "No room to write": a full disk or quota, a file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored),
#: an I/O error, a file system remounted read-only after errors. A running bot survives these.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})


def is_disk_error(exc: BaseException | None) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


def write_private(path: Path, data: str | bytes, *, durable: bool = True) -> None:
    """Write atomically and owner-only: temporary file, fsync, rename; a crash leaves the old file or the new one.

    ``durable=False`` skips the fsync, for a file derived from others (a summary, a heartbeat): a
    killed process still leaves the old file or the new one, a power cut may leave it empty.

    A disk error (``is_disk_error``) leaves the old file as it was, and is raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            if os.fstat(handle.fileno()).st_mode & 0o7777 != 0o600:  # mkstemp's is; a chmod is a journalled write
                os.fchmod(handle.fileno(), 0o600)
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def use_wal(connection: Any, timeout: float = 10.0) -> None:
    """Put an SQLite connection (``sqlite3`` DB-API) in WAL mode, waiting up to ``timeout`` seconds.

    Switching the journal mode takes the file's exclusive lock, and SQLite may answer "database is
    locked" at once, without its busy handler, when another process opens or switches the same file
    at that moment (seen with three bots starting together): the switch is retried until it holds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)
