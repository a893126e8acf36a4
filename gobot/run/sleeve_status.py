"""Where a side-by-side profiles run (``gobot.run.sleeves``) keeps its group, and what ``gobot status`` on
the parent state folder says about it: the group and each sleeve's run. Light: no bot, no plugins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SLEEVES_DIR = "sleeves"
GROUP_FILE = "group.json"


def read_group(folder: Path) -> dict[str, Any] | None:
    """The group file of the last side-by-side run in ``folder``; None if there is none (or it is unreadable)."""
    try:
        data = json.loads((folder / GROUP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("group_id"), str) else None


def sleeves_status(state_path: Path) -> dict[str, Any] | None:
    """For ``gobot status`` on the parent state folder: the group and each sleeve's run (None: no group)."""
    from gobot.run.portfolio import Portfolio
    from gobot.run.state import StateError, StateStore

    group = read_group(state_path / SLEEVES_DIR)
    if group is None:
        return None
    profiles: dict[str, Any] = {}
    for name in group.get("profiles") or []:
        try:
            state = StateStore(state_path / SLEEVES_DIR / name).load()
        except StateError as exc:
            profiles[name] = f"unreadable state: {exc}"
            continue
        if state is None:
            profiles[name] = "no run yet"
            continue
        profiles[name] = {"run": state.run_id, "iteration": state.iteration, "finished": state.finished,
                          "finish_reason": state.finish_reason,
                          "equity": state.cash + Portfolio(state).unrealised(),  # marked to the last prices
                          "closed_trades": len(state.trades)}
    return {"group_id": group["group_id"], "finished": bool(group.get("finished")), "profiles": profiles}
