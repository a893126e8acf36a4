"""Shared parts of the reliability ("chaos") suite: counts, the figures file, and the crash harness.

``make test`` runs every chaos test at small counts; ``make chaos`` sets ``GOBOT_CHAOS_FULL=1`` (full
counts) and ``GOBOT_CHAOS_FIGURES=<file>``: each test appends its figures there as one JSON line,
and ``bench/chaos.py`` prints them as a table.

The crash harness runs ``gobot start`` as a real subprocess on USD-M futures in testnet mode
against the loopback Binance server (``servers.binance``), with the archiver on SQLite, and a
strategy that alternates LONG and SHORT so every cycle trades. It SIGKILLs the process at
deterministic kill points and at random times, and after every kill restarts it for one clean
cycle and checks: no client order id twice on the exchange, every fill on the exchange in the
archive database, positions in state = positions on the exchange, state, audit log and database
readable, every fill and closed trade in the audit log once. Every ``NEW_RUN_EVERY`` rounds it lets
the run finish and starts a new one on the same account, with the same checks.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FULL = os.environ.get("GOBOT_CHAOS_FULL") == "1"
GOBOT = str(Path(sys.executable).parent / "gobot")


def count(small: int, full: int) -> int:
    """``small`` under ``make test``, ``full`` under ``make chaos``."""
    return full if FULL else small


def record_figures(name: str, **figures: Any) -> None:
    """Append one row of figures for ``make chaos``'s table (nothing happens without GOBOT_CHAOS_FIGURES)."""
    target = os.environ.get("GOBOT_CHAOS_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"suite": name, **figures}) + "\n")


# -- the crash harness ---------------------------------------------------------------------------

FLIP_PLUGIN = '''
import os

from gobot_hookspecs import Action, Signal, hookimpl

@hookimpl
def gobot_generate_ideas(ctx, snapshots):
    """LONG on odd cycles, SHORT on even ones: every cycle sends an order (an entry or an exit).
    After cycle CHAOS_FLIP_HOLD_AFTER: HOLD (check cycles that only collect the fills of earlier orders)."""
    action = Action.LONG if ctx.iteration % 2 else Action.SHORT
    if ctx.iteration > int(os.environ.get("CHAOS_FLIP_HOLD_AFTER") or 10**9):
        action = Action.HOLD
    return [Signal(symbol=s.symbol, action=action, confidence=0.9, rationale="chaos flip") for s in snapshots]
'''

DETERMINISTIC = ("order_sent", "before_persist", "after_cycle", "mid_state_write", "before_archive_fill")
NEW_RUN_EVERY = 3  # after every third kill round the run finishes and a new run starts


def install_flip_plugin(folder: Path) -> Path:
    """A pip-installed-looking plugin distribution ``chaos_flip`` in ``folder`` (put it on PYTHONPATH)."""
    from servers.bots import install_plugin_dist

    return install_plugin_dist(folder, "chaos_flip", FLIP_PLUGIN)


def write_crash_config(folder: Path, server_url: str) -> Path:
    from servers.bots import write_start_config

    return write_start_config(folder, server_url, market="futures", ideas="chaos_flip", archiver=True)


@dataclass
class CrashReport:
    kills: int = 0  # SIGKILLs that landed
    restarts: int = 0  # clean restarts that followed them
    by_point: dict[str, int] = field(default_factory=dict)
    discrepancies: list[str] = field(default_factory=list)
    unreached: list[str] = field(default_factory=list)  # kill points the run never passed (stopped by SIGTERM)
    new_runs: int = 0  # runs that finished and were followed by a new run on the same account
    carried_over: int = 0  # of those, the ones that ended holding a position or a working order
    orders_on_exchange: int = 0
    fills_on_exchange: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        points = ", ".join(f"{k} {v}" for k, v in sorted(self.by_point.items()))
        return (f"kills survived: {self.kills} ({points}); restarts: {self.restarts}; orders on the exchange: "
                f"{self.orders_on_exchange}; fills: {self.fills_on_exchange}; new runs: {self.new_runs} "
                f"({self.carried_over} carrying a position or order); discrepancies: {len(self.discrepancies)}")


class CrashHarness:
    """Kill-and-restart rounds against one ``BinanceTestServer`` (see the module docstring)."""

    def __init__(self, folder: Path, server: Any, env: dict[str, str], seed: int = 7):
        self.folder, self.server = folder, server
        self.config = write_crash_config(folder, server.url)
        site = install_flip_plugin(folder / "site")
        self.env = {k: v for k, v in env.items() if k != "GOBOT_TEST_KILL_POINT"}
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
        self.random = random.Random(seed)
        self.report = CrashReport()
        self.state_dir = folder / "state"

    # -- running the bot -------------------------------------------------------------------------

    def persisted_iteration(self) -> int:
        """The last persisted cycle of the run (one run throughout: every process is killed or stopped by SIGTERM)."""
        file = self.state_dir / "state.json"
        return json.loads(file.read_text())["iteration"] if file.exists() else 0

    def _command(self, max_iterations: int = 0) -> list[str]:
        # No iteration limit, except in new_run_round: a run that reached its limit is finished.
        return [GOBOT, "start", "--config", str(self.config), "--max-iterations", str(max_iterations), "--quiet"]

    def _run_until(self, iteration: int, hold_after: int, timeout: float = 90,
                   max_iterations: int = 0) -> subprocess.CompletedProcess:
        """Run until cycle ``iteration`` is done, then stop with SIGTERM (a clean stop: the archive is flushed)."""
        env = dict(self.env) | {"CHAOS_FLIP_HOLD_AFTER": str(hold_after)}
        process = subprocess.Popen(self._command(max_iterations), env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            for line in process.stdout:
                if line.startswith(f"#{iteration} "):
                    process.send_signal(signal.SIGTERM)
                    break
            out, err = process.communicate(timeout=timeout)
        finally:
            timer.cancel()
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def crash_round(self, point: str) -> bool:
        """Run until ``point`` kills the process; True if a SIGKILL landed."""
        from servers.binance import Fault

        done = self.persisted_iteration()
        target = done + 1 + self.random.randrange(2)
        kill_point, kill_after = None, None
        process_box: dict[str, Any] = {}
        if point == "order_sent":  # the exchange executes the order, then the client dies before reading the answer
            def kill() -> None:
                os.kill(process_box["pid"], signal.SIGKILL)

            fault = Fault(path="/fapi/v1/order", method="POST", action="callback", when="after", callback=kill,
                          skip=self.random.randrange(2))
        elif point == "random":
            kill_after = self.random.uniform(0.5, 3.0)
        else:
            kill_point = f"{point}:{done + 2 + self.random.randrange(2) if point == 'before_archive_fill' else target}"
        env = dict(self.env)
        if kill_point:
            env["GOBOT_TEST_KILL_POINT"] = kill_point
        process = subprocess.Popen(self._command(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        process_box["pid"] = process.pid
        if point == "order_sent":
            self.server.inject(fault)
        try:
            process.wait(kill_after if kill_after is not None else 20)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL if kill_after is not None else signal.SIGTERM)
            if kill_after is None:
                self.report.unreached.append(kill_point or point)  # e.g. no fill in that cycle: not a loss
        out, err = process.communicate(timeout=120)
        if point == "order_sent":
            with self.server.lock:
                if fault in self.server.faults:
                    self.server.faults.remove(fault)
        if process.returncode == -signal.SIGKILL:
            self.report.kills += 1
            self.report.by_point[point] = self.report.by_point.get(point, 0) + 1
            return True
        if process.returncode not in (0, -signal.SIGKILL):
            self.report.discrepancies.append(f"{point}: exit {process.returncode}: {err.strip()[-400:]}")
        return False

    def restart_and_check(self) -> None:
        """After a crash: re-run the cycle that was cut short (the same decision, so the same client
        order id), then one HOLD cycle that collects its fills; a clean stop flushes the archive. Then the checks."""
        done = self.persisted_iteration()
        result = self._run_until(done + 2, hold_after=done + 1)
        if result.returncode != 0:
            self.report.discrepancies.append(f"restart after cycle {done}: exit {result.returncode}: "
                                             f"{result.stderr.strip()[-400:]}")
            return
        self.report.restarts += 1
        self.report.discrepancies.extend(self.check())

    def new_run_round(self, order_in_flight: bool) -> None:
        """Let the run finish (``--max-iterations``) and start a new one: the account carries over.

        ``order_in_flight``: the run ends with the cycle that sent an order, so the new run must
        collect that order's fill; otherwise it ends one HOLD cycle later, holding what it holds."""
        done = self.persisted_iteration()
        last = done + (1 if order_in_flight else 2)
        finishing = self._run_until(last, hold_after=done + 1, max_iterations=last)
        state = json.loads((self.state_dir / "state.json").read_text())
        if finishing.returncode != 0 or not state.get("finished"):
            self.report.discrepancies.append(f"run did not finish at cycle {last}: exit {finishing.returncode}: "
                                             f"{finishing.stderr.strip()[-400:]}")
            return
        carried = bool(state["positions"] or state["open_orders"])
        result = self._run_until(2, hold_after=1)  # the new run: one flip, one HOLD that collects its fill
        if result.returncode != 0:
            self.report.discrepancies.append(f"new run after cycle {last}: exit {result.returncode}: "
                                             f"{result.stderr.strip()[-400:]}")
            return
        if json.loads((self.state_dir / "state.json").read_text())["run_id"] == state["run_id"]:
            self.report.discrepancies.append(f"no new run started after run {state['run_id']} finished")
        self.report.new_runs += 1
        self.report.carried_over += carried
        self.report.discrepancies.extend(self.check())

    # -- the checks ------------------------------------------------------------------------------

    def check(self) -> list[str]:
        problems: list[str] = []
        try:
            state = json.loads((self.state_dir / "state.json").read_text())
        except (OSError, ValueError) as exc:
            return [f"state.json unreadable: {exc}"]
        facts: list[str] = []  # every fill and closed trade in the audit log: each must be there once
        try:
            lines = (self.state_dir / "audit.jsonl").read_text().splitlines()
            for number, line in enumerate(lines, 1):  # noqa: B007 - number names the bad line in the except below
                if line.strip():
                    event = json.loads(line)
                    if event.get("event") in ("fill", "trade_closed"):
                        facts.append(json.dumps(event.get("fill") or event.get("trade"), sort_keys=True))
        except ValueError as exc:
            problems.append(f"audit.jsonl line {number} unreadable: {exc}")
        if len(facts) != len(set(facts)):
            problems.append(f"audit.jsonl holds {len(facts) - len(set(facts))} fills or closed trades twice")
        try:
            with sqlite3.connect(self.state_dir / "archive.db") as db:
                if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    problems.append("archive.db fails its integrity check")
                archived = {row[0] for row in db.execute("SELECT client_order_id FROM fills")}
        except sqlite3.Error as exc:
            return problems + [f"archive.db unreadable: {exc}"]
        with self.server.lock:
            orders = [dict(o) for o in self.server.state.orders.values()]
            algos = [dict(a) for a in self.server.state.algo_orders.values()]
        seen: dict[str, int] = {}
        for order in orders:
            seen[order["clientOrderId"]] = seen.get(order["clientOrderId"], 0) + 1
        for algo in algos:
            key = "algo:" + algo.get("clientAlgoId", "")
            seen[key] = seen.get(key, 0) + 1
        problems += [f"order {coid} is on the exchange {n} times" for coid, n in seen.items() if n > 1]
        filled = [o for o in orders if o["status"] == "FILLED"]
        self.report.orders_on_exchange, self.report.fills_on_exchange = len(orders) + len(algos), len(filled)
        problems += [f"fill of {o['clientOrderId']} missing from the archive" for o in filled
                     if o["clientOrderId"] not in archived]
        on_exchange = float(self.server.position("BTCUSDT"))
        position = state["positions"].get("BTC/USDT")
        in_state = 0.0 if position is None else position["amount"] * (1 if position["direction"] == "LONG" else -1)
        if abs(in_state - on_exchange) > 1e-9:
            problems.append(f"position in state {in_state} != on the exchange {on_exchange} "
                            f"(after cycle {state['iteration']})")
        return problems

    def run(self, kills: int) -> CrashReport:
        started = time.perf_counter()
        points = list(DETERMINISTIC) + ["random"]
        attempts = 0
        while self.report.kills < kills and attempts < kills * 3:
            missing = [p for p in points if p not in self.report.by_point]  # every point lands at least once
            point = missing[0] if missing else self.random.choice(points)
            attempts += 1
            self.crash_round(point)
            self.restart_and_check()
            if attempts % NEW_RUN_EVERY == 0:
                self.new_run_round(order_in_flight=bool(attempts // NEW_RUN_EVERY % 2))
        self.report.seconds = time.perf_counter() - started
        return self.report
