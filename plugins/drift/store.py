"""The drift plugin's own archive: ``<state_dir>/drift.sqlite`` (standard-library ``sqlite3``, WAL).

One row per trade measured against its twin (``drift_trades``) and one per breach or reset
(``drift_events``). Its own file, created on first use, so the plugin needs nobody's migration; a
newer plugin adds columns with ``ALTER TABLE`` when it finds them missing (``_COLUMNS``).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from gobot_hookspecs.files import use_wal

from .attribution import PARTS

FILE = "drift.sqlite"
_COLUMNS = {
    "coid": "TEXT PRIMARY KEY", "run_id": "TEXT", "mode": "TEXT", "symbol": "TEXT", "strategy": "TEXT",
    "version": "INTEGER", "side": "INTEGER", "opened_at": "TEXT", "closed_at": "TEXT", "currency": "TEXT",
    "live_pnl": "REAL", "twin_pnl": "REAL", "gap": "REAL", "live_r": "REAL", "twin_r": "REAL",
    "risk": "REAL", "kind": "TEXT", "commissions": "TEXT", "exit_reason": "TEXT", "twin_exit_reason": "TEXT",
    **{part: "REAL" for part in PARTS},
}
KINDS = ("matched", "missed", "paper_only")


def path_in(state_dir: Path) -> Path:
    return Path(state_dir) / FILE


def connect(state_dir: Path) -> sqlite3.Connection:
    """Open (and create or extend) the store."""
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path_in(state_dir), timeout=10)
    connection.row_factory = sqlite3.Row
    use_wal(connection)
    columns = ", ".join(f"{name} {kind}" for name, kind in _COLUMNS.items())
    connection.execute(f"CREATE TABLE IF NOT EXISTS drift_trades ({columns})")
    have = {row["name"] for row in connection.execute("PRAGMA table_info(drift_trades)")}
    for name, kind in _COLUMNS.items():
        if name not in have:
            connection.execute(f"ALTER TABLE drift_trades ADD COLUMN {name} {kind.replace('PRIMARY KEY', '')}")
    connection.execute("CREATE TABLE IF NOT EXISTS drift_events (time TEXT, run_id TEXT, kind TEXT, text TEXT, "
                       "data TEXT)")
    connection.commit()
    return connection


def add_trade(state_dir: Path, row: dict[str, Any]) -> None:
    """Insert or replace one trade's row (a replayed cycle writes the same row again)."""
    row = {**row, "commissions": json.dumps(row.get("commissions") or {})}
    names = [name for name in _COLUMNS if name in row]
    with connect(state_dir) as connection:
        connection.execute(f"INSERT OR REPLACE INTO drift_trades ({', '.join(names)}) "
                           f"VALUES ({', '.join('?' for _ in names)})", [row[name] for name in names])
    connection.close()


def add_event(state_dir: Path, time: str, run_id: str, kind: str, text: str, data: dict | None = None) -> None:
    with connect(state_dir) as connection:
        connection.execute("INSERT INTO drift_events VALUES (?, ?, ?, ?, ?)",
                           (time, run_id, kind, text, json.dumps(data or {}, default=str)))
    connection.close()


def trades(state_dir: Path, mode: str | None = None) -> list[dict[str, Any]]:
    """Every stored trade row, oldest close first (``mode``: only ``testnet`` or ``live`` ones)."""
    if not path_in(state_dir).exists():
        return []
    connection = connect(state_dir)
    try:
        query = "SELECT * FROM drift_trades" + (" WHERE mode = ?" if mode else "") + " ORDER BY closed_at, coid"
        rows = [dict(row) for row in connection.execute(query, (mode,) if mode else ())]
    finally:
        connection.close()
    for row in rows:
        row["commissions"] = json.loads(row["commissions"] or "{}")
    return rows


def events(state_dir: Path) -> list[dict[str, Any]]:
    if not path_in(state_dir).exists():
        return []
    connection = connect(state_dir)
    try:
        return [dict(row) for row in connection.execute("SELECT * FROM drift_events ORDER BY time")]
    finally:
        connection.close()
