"""The go-live readiness report (``gobot validate``): the design's testnet checklist, each line
judged from the audit log and the trade history in the state folder, with its evidence.

A run counts as a testnet run when its ``run_started`` audit event has ``mode == "testnet"``:
the exchange plugin names the environment through ``gobot_environment`` and the core records it
there. Days are the distinct UTC dates of the bot clock on which a testnet run completed a cycle.
Events a re-run cycle wrote twice (after a crash) are counted once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TESTNET = "testnet"
TARGET_DAYS = 7
TARGET_TRADES = 100
TARGET_WIN_RATE = 0.60
#: Alert kinds an operator must have seen arrive before trusting the bot with money.
REQUIRED_ALERT_KINDS = (
    "run_started", "run_stopped", "trade_opened", "trade_closed", "risk_veto", "execution_error", "circuit_breaker",
    "kill_switch",
)


@dataclass
class ReadinessLine:
    name: str
    target: str
    passed: bool
    evidence: str


@dataclass
class ReadinessReport:
    state_dir: str
    lines: list[ReadinessLine] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.lines) and all(line.passed for line in self.lines)

    @property
    def failing(self) -> list[ReadinessLine]:
        return [line for line in self.lines if not line.passed]

    def as_dict(self) -> dict[str, Any]:
        return {"state_dir": self.state_dir, "ready": self.passed, "lines": [asdict(line) for line in self.lines]}


def _read(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Audit events, and how many lines could not be read (a torn last line after a crash is allowed)."""
    if not path.exists():
        return [], 0
    events, bad = [], 0
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            bad += 0 if number == len(lines) else 1
    return events, bad


def _state_trades(state_dir: Path) -> dict[str, int]:
    """Closed trades per run id, from ``state.json`` and the archived runs."""
    counts = {}
    for path in [state_dir / "state.json", *sorted((state_dir / "runs").glob("*.json"))]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and "run_id" in data:
            counts[data["run_id"]] = len(data.get("trades", []))
    return counts


def readiness_report(state_dir: Path) -> ReadinessReport:
    """Judge every line of the checklist from ``<state_dir>/audit.jsonl`` and the state files."""
    audit_path = state_dir / "audit.jsonl"
    events, bad_lines = _read(audit_path)
    report = ReadinessReport(str(state_dir))
    runs = sorted({e["run_id"] for e in events if e.get("event") == "run_started" and e.get("mode") == TESTNET})
    mine = [e for e in events if e.get("run_id") in runs]
    where = f"{len(runs)} testnet run(s) in {audit_path}" if runs else f"no testnet run in {audit_path}"

    days = sorted({e["sim_time"][:10] for e in mine if e.get("event") == "cycle_completed" and e.get("sim_time")})
    span = f" ({days[0]} .. {days[-1]})" if days else ""
    report.lines.append(ReadinessLine("days run on testnet", f">= {TARGET_DAYS}", len(days) >= TARGET_DAYS,
                                      f"{len(days)} days with completed cycles{span}; {where}"))

    trades = {}
    for e in mine:
        if e.get("event") == "trade_closed":
            t = e.get("trade", {})
            trades[(e["run_id"], t.get("symbol"), t.get("opened_at"), t.get("closed_at"))] = t
    wins = sum(1 for t in trades.values() if t.get("pnl", 0) > 0)
    report.lines.append(ReadinessLine("trades on testnet", f">= {TARGET_TRADES}", len(trades) >= TARGET_TRADES,
                                      f"{len(trades)} closed trades"))
    rate = wins / len(trades) if trades else 0.0
    report.lines.append(ReadinessLine("win rate", f"> {TARGET_WIN_RATE:.0%}", bool(trades) and rate > TARGET_WIN_RATE,
                                      f"{rate:.1%} ({wins} of {len(trades)} trades won)" if trades
                                      else "no closed trades"))

    sent: dict[str, int] = {}
    undelivered: dict[str, int] = {}
    for e in mine:
        if e.get("event") == "alert":
            kind = e.get("alert", {}).get("kind", "")
            sent[kind] = sent.get(kind, 0) + 1
        elif e.get("event") == "alert_undelivered":
            undelivered[e.get("kind", "")] = undelivered.get(e.get("kind", ""), 0) + 1
    delivered = [k for k in REQUIRED_ALERT_KINDS if sent.get(k, 0) > undelivered.get(k, 0)]
    missing = [k for k in REQUIRED_ALERT_KINDS if k not in delivered]
    report.lines.append(ReadinessLine("every alert kind delivered", ", ".join(REQUIRED_ALERT_KINDS), not missing,
                                      f"delivered {len(delivered)} of {len(REQUIRED_ALERT_KINDS)}"
                                      + (f"; never delivered: {', '.join(missing)}" if missing else "")))

    kills = [e for e in mine if e.get("event") == "kill_switch"
             or (e.get("event") == "alert" and e.get("alert", {}).get("kind") == "kill_switch")]
    report.lines.append(ReadinessLine("kill switch exercised", "at least once", bool(kills),
                                      f"{len(kills)} kill-switch events, "
                                      f"first at {kills[0].get('sim_time') or kills[0].get('time')}"
                                      if kills else "no kill-switch event (run `gobot kill` during a testnet run)"))

    recovered = []
    for e in mine:
        if e.get("event") == "run_started" and e.get("resumed_from") is not None:
            after = [c for c in mine if c.get("event") == "cycle_completed" and c["run_id"] == e["run_id"]
                     and c.get("iteration", 0) > e["resumed_from"] and c.get("time", "") >= e.get("time", "")]
            if after:
                recovered.append(f"run {e['run_id']} resumed after cycle {e['resumed_from']} "
                                 f"and completed cycle {after[0]['iteration']}")
    report.lines.append(ReadinessLine("a restart recovered", "at least once", bool(recovered),
                                      recovered[0] if recovered else "no resumed testnet run completed a cycle"))

    report.lines.append(_completeness(mine, runs, bad_lines, _state_trades(state_dir), trades))
    return report


def _completeness(mine: list[dict], runs: list[str], bad_lines: int, state_trades: dict[str, int],
                  trades: dict) -> ReadinessLine:
    """Every cycle recorded, every order explained by risk verdicts, the trade history agrees, nothing unreadable."""
    problems = []
    if not runs:
        problems.append("no testnet run to check")
    if bad_lines:
        problems.append(f"{bad_lines} unreadable lines")
    cycles = 0
    for run in runs:
        seen = {e["iteration"] for e in mine if e.get("event") == "cycle_completed" and e["run_id"] == run}
        cycles += len(seen)
        gaps = sorted(set(range(1, max(seen) + 1)) - seen) if seen else []
        if gaps:
            problems.append(f"run {run}: cycles {gaps[:5]}{'...' if len(gaps) > 5 else ''} missing")
        judged = {e.get("intent", {}).get("id") for e in mine
                  if e.get("event") == "risk_verdicts" and e["run_id"] == run}
        unexplained = [e for e in mine if e.get("event") == "order" and e["run_id"] == run
                       and e.get("order", {}).get("purpose") == "open" and e.get("intent_id") not in judged]
        if unexplained:
            problems.append(f"run {run}: {len(unexplained)} opening orders without risk verdicts")
        logged = sum(1 for key in trades if key[0] == run)
        if run in state_trades and state_trades[run] != logged:
            problems.append(f"run {run}: {state_trades[run]} trades in the state, {logged} in the audit log")
    evidence = ("; ".join(problems) if problems
                else f"{cycles} cycles, every opening order with its risk verdicts, trade history agrees")
    return ReadinessLine("audit log complete", "no gaps", not problems, evidence)
