"""Writing a plugin's own files in ``state_dir`` safely (stdlib only): ``write_private(path, data)``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_private(path: Path, data: str | bytes) -> None:
    """Write atomically and owner-only: temporary file, fsync, rename; a crash leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
