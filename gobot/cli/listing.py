"""The plugin commands `gobot --help` and shell completion list, kept between runs: finding them
loads the config (pydantic) and the enabled plugins, several times what the help itself costs.

The listing (each plugin command's name and short help) is kept in the user's cache folder under a
key made of everything that decides it: the interpreter and ``sys.path`` (with each entry's
modification time: installing or removing a distribution changes its folder), the config file
(``$GOBOT_CONFIG`` or ``./config.toml``: path, size and modification time), every ``GOBOT_*``
variable, and the files that define the listed commands and the default plugin set. Anything else
changed, or no cache: the plugins are loaded as before and the listing written again. Running a
plugin command always loads it for real; only the listing is kept. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import gobot


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gobot" / f"commands-{_key()}.json"


def cached() -> dict[str, str] | None:
    """The kept listing (name -> short help), or None when there is none or it may be stale."""
    try:
        document = json.loads(cache_file().read_text(encoding="utf-8"))
        if any(_stamp(path) != stamp for path, stamp in document["files"].items()):
            return None
        return {str(name): str(text) for name, text in document["commands"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def store(commands: dict) -> None:
    """Keep ``commands`` (name -> click command) for the next listing; a cache that cannot be written is skipped."""
    files = {str(Path(gobot.__file__).parent / "host" / "plugin_manager.py")}  # the default plugin set
    for command in commands.values():
        module = sys.modules.get(getattr(getattr(command, "callback", None), "__module__", "") or "")
        if getattr(module, "__file__", None):
            files.add(module.__file__)
    document = {"commands": {name: command.get_short_help_str(60) for name, command in commands.items()},
                "files": {path: _stamp(path) for path in sorted(files)}}
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(document), encoding="utf-8")
        temporary.replace(path)
    except OSError:
        pass


def _stamp(path: str) -> str:
    try:
        status = os.stat(path)
    except OSError:
        return "missing"
    return f"{status.st_size}:{status.st_mtime_ns}"


def _key() -> str:
    config = os.path.abspath(os.environ.get("GOBOT_CONFIG") or "config.toml")
    parts = [sys.executable, config, _stamp(config)]
    parts += [f"{entry}={_stamp(entry) if entry else ''}" for entry in sys.path]  # '' (the current folder) changes
    parts += sorted(f"{name}={value}" for name, value in os.environ.items() if name.startswith("GOBOT_"))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
