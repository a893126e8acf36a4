"""The orchestrator: one cycle = scan -> ideas -> adjust -> validate -> execute -> report.

Every phase is supplied by plugins through hooks; the core only sequences them, times them,
keeps the portfolio and the state, and writes the audit log. ``runner.py`` decides when cycles
run (simulated clock or APScheduler); this module decides what one cycle does.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import os
import signal as signal_module
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import BaseModel

from gobot_hookspecs import (
    Action,
    AdjustmentDecision,
    Alert,
    CycleReport,
    ExecutionError,
    ExecutionFailed,
    Fill,
    MarketSnapshot,
    Order,
    OrderIntent,
    PhaseRecord,
    Priority,
    RiskStatus,
    RiskVerdict,
    Severity,
    Side,
    Signal,
    Strategy,
    StrategyVersion,
    Trade,
    ValidationResult,
)

from gobot.run.alerting import deliver
from gobot.run.audit import FILL_ID_FIELDS, TRADE_ID_FIELDS, AuditLog, event_id
from gobot.run.clock import WallClock
from gobot.config import Settings, load_plugin_configs
from gobot.run.context import Context
from gobot.errors import ConfigError, PluginError
from gobot.host.entry import LIVE_ID_PREFIX, NO_POSITION, EntryDecision, decide_entry, order_intent
from gobot.host.hook_caller import HookCaller, HookFailure
from gobot.ops.status import CoreCounters
from gobot.host.plugin_manager import PluginSet
from gobot.run.portfolio import Portfolio
from gobot.host.rate_limit import NoWaitPolicy
from gobot.run.state import (
    MAX_CYCLE_ROWS,
    MAX_LEARNINGS,
    BotState,
    CycleRow,
    StateStore,
    disk_error_text,
    ensure_private_dir,
    is_disk_error,
)

log = logging.getLogger(__name__)

PHASES = ("scan", "ideas", "adjust", "validate", "execute", "report")
LEARNINGS_HANDED_OVER = 20
# e.g. "after_cycle:3": SIGKILL self there (crash tests). Points: before_persist:N, after_cycle:N,
# before_archive_fill:N (here) and mid_state_write:N (gobot.run.state.atomic_write).
KILL_POINT_ENV = "GOBOT_TEST_KILL_POINT"


class CycleAbandoned(Exception):
    """A stop was requested before the execute phase: nothing of this cycle is persisted."""


def kill_point(name: str) -> None:
    """Crash the process here if a test asked for it (deterministic kill points for crash tests)."""
    if os.environ.get(KILL_POINT_ENV) == name:
        os.kill(os.getpid(), signal_module.SIGKILL)


def _request_text(path, default: str) -> str:
    """The reason written in an operator's request file (its first line), or ``default``."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return default
    if text.startswith("{"):
        try:
            return str(json.loads(text).get("reason") or default)
        except ValueError:
            return default
    return text.splitlines()[0] if text else default


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("r%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


class Bot:
    """A configured bot: plugins loaded, config validated, state loaded or created."""

    def __init__(
        self, settings: Settings, plugin_set: PluginSet, *, live: bool = False, fresh: bool = False, reopen: bool = False
    ):
        """``reopen``: load the last run's state even if it finished, never archive or start a new
        run (operator commands on a stopped bot: ``gobot kill --close-positions``, ``gobot risk``)."""
        plugin_set.raise_for_failures()
        self.settings = settings
        self.plugin_set = plugin_set
        self.live = live
        self.failures: list[HookFailure] = []
        self.counters = CoreCounters()  # for /metrics and /health (gobot start --serve)
        self.hooks = HookCaller(plugin_set.pm, on_failure=self._on_failure)
        self.plugin_configs = load_plugin_configs(settings, self.hooks)
        self.strategies: dict[str, Strategy] = {}
        self.hooks.collect_sync("gobot_register_strategies", register=self._register_strategy)

        ensure_private_dir(settings.state_path)
        self.store = StateStore(settings.state_path)
        self.audit_log = AuditLog(settings.state_path / "audit.jsonl")
        self.resumed_from: int | None = None
        self.carried: dict[str, dict[str, Any]] = {}  # plugin states a new run may inherit (carry_over)
        self.previous_run: BotState | None = None  # the finished run a new one follows (its account carries over)
        self.state = self._load_state(fresh, reopen)
        self.portfolio = Portfolio(self.state)
        self.ctx = Context(self)
        self.clock = self.hooks.first_sync("gobot_clock", ctx=self.ctx) or WallClock()
        self.ctx.rate_limiter = self.hooks.first_sync("gobot_rate_limit_policy", ctx=self.ctx) or NoWaitPolicy()
        if self.clock.simulated and self.state.clock is not None:
            self.clock.advance((self.state.clock - self.clock.now()).total_seconds())
        if self.previous_run is not None and not self.clock.simulated:  # a replay is a new simulation: nothing carries over
            self._carry_over_account(self.previous_run)
        else:
            self.carried, self.previous_run = {}, None
        #: where orders go: what the exchange plugin names (gobot_environment: "testnet", "live"), else "live"
        #: with --live and "paper" without; without --live a run is never called "live"
        named = self.hooks.first_sync("gobot_environment", ctx=self.ctx)
        self.environment = (named or "live") if live else (named if named and named != "live" else "paper")
        self.stop_requested = False
        self.close_requests: list[tuple[str, list[str] | None]] = []  # (reason, symbols or None = all)
        self.cycle_approved: list[OrderIntent] = []  # open intents approved in this cycle (ctx.pending_intents)
        self._reset_request_done = False
        #: while the state folder's disk takes no writes (full, quota, I/O error): what failed, since when
        self.disk_trouble: dict[str, Any] | None = None
        self._saved_iteration = self.state.iteration  # the last cycle whose state is on disk
        self.cycle_number = self.state.iteration + 1
        for name in self.strategies:
            self.state.strategies.setdefault(name, self._initial_version(name))

    # -- set-up -------------------------------------------------------------------------------

    def _register_strategy(self, strategy: Strategy) -> None:
        if strategy.name in self.strategies:
            raise ValueError(f"strategy '{strategy.name}' is registered twice")
        self.strategies[strategy.name] = strategy

    def _initial_version(self, name: str) -> StrategyVersion:
        from gobot.host.strategy_params import configured_params  # declared defaults, then [strategies.<name>]

        params = configured_params(self.settings, self.strategies[name])
        version = StrategyVersion(name=name, version=1, params=params, created_at=None)
        self.state.strategy_history.append(version)
        return version

    def _load_state(self, fresh: bool, reopen: bool = False) -> BotState:
        previous = self.store.load()
        if reopen and previous is not None:
            self.resumed_from = previous.iteration
            return previous
        if previous is not None and (fresh or previous.finished):
            self.carried = {n: d for n, d in previous.plugin_state.items() if isinstance(d, dict) and d.get("carry_over")}
            self.store.archive(previous)
            self.previous_run, previous = previous, None
        if previous is not None:
            self.resumed_from = previous.iteration
            return previous
        capital = self.settings.trading.initial_capital_usd
        return BotState(run_id=new_run_id(), cash=capital, initial_capital=capital, equity_peak=capital)

    def _carry_over_account(self, previous: BotState) -> None:
        """A new run on the wall clock trades the same account as the run before it: positions still
        open, orders still working and their intents, and every plugin state marked ``carry_over``
        (an executor's order book, a breaker's hard stop) continue; the run's own figures start afresh."""
        state = self.state
        state.positions = copy.deepcopy(previous.positions)
        state.open_orders = copy.deepcopy(previous.open_orders)
        state.intents = copy.deepcopy(previous.intents)
        state.last_prices = {s: p for s, p in previous.last_prices.items() if s in state.positions}
        for name, data in self.carried.items():
            state.plugin_state.setdefault(name, copy.deepcopy(data))

    def _on_failure(self, failure: HookFailure) -> None:
        # A start-up failure is raised as one PluginError that the CLI prints: not a second line on the terminal.
        log.log(logging.INFO if failure.hook == "gobot_startup" else logging.ERROR, "%s", failure)
        self.failures.append(failure)

    # -- services used by Context ---------------------------------------------------------------

    def audit(self, event: str, **data: Any) -> None:
        self.audit_log.write(event, sim_time=self.clock.now(), run_id=self.state.run_id, iteration=self.ctx.iteration, **data)
        if self.audit_log.error is not None:  # the line waits in memory: see persist_cycle
            self._disk_failed(self.audit_log.path, self.audit_log.error)

    async def flush_alerts(self) -> None:
        """Deliver queued alerts to every channel, each channel in isolation."""
        while self.ctx.pending_execution_errors:  # ctx.report_execution_error: failures outside execute_order
            await self._execution_error(self.ctx.pending_execution_errors.pop(0))
        while self.ctx.pending_alerts:
            alert = self.ctx.pending_alerts.pop(0)
            self.audit("alert", alert=alert)
            failed = await deliver(self.hooks, self.ctx, alert)  # redacted; the same code as `gobot alerts test`
            self.counters.alert_delivered(self.plugin_set.implementers("gobot_send_alert"), [f.plugin for f in failed])
            if len(failed) >= len(self.plugin_set.implementers("gobot_send_alert")):  # no channel delivered it
                self.audit("alert_undelivered", kind=alert.kind, title=alert.title, failed=[f.plugin for f in failed])

    # -- lifecycle ----------------------------------------------------------------------------

    async def startup(self, on_started: Callable[[], None] | None = None) -> None:
        """Start every plugin; ``on_started()`` (the CLI's start line) runs once they all did, before the alerts."""
        self.ctx.paused = self.store.paused
        for impl_failure in await self.hooks.notify("gobot_startup", ctx=self.ctx):
            raise PluginError(impl_failure.plugin, f"start-up failed: {impl_failure.error}", hook="gobot_startup")
        if on_started is not None:
            on_started()
        mode = self.environment
        what = f"resuming run {self.state.run_id} after cycle {self.resumed_from}" if self.resumed_from is not None else f"run {self.state.run_id} started"
        if self.previous_run is not None and self.state.positions:
            what += f", carrying over {len(self.state.positions)} open position(s) from run {self.previous_run.run_id}"
        self.audit("run_started", mode=mode, resumed_from=self.resumed_from, plugins=self.plugin_set.enabled,
                   carried_over=sorted(self.carried), positions_carried=sorted(self.state.positions) if self.previous_run else [],
                   previous_run=self.previous_run.run_id if self.previous_run else None)
        self.ctx.alert(Alert(kind="run_started", title=f"gobot {mode}: {what}", data={"plugins": self.plugin_set.enabled}))
        await self.flush_alerts()
        if self.resumed_from is None and self.state.iteration == 0 and not self.store.state_file.exists():
            # Persist the new run's id now: client order ids derive from it, so a crash inside the
            # first cycle must re-run that cycle with the same ids (look-before-you-send finds them).
            self.persist_cycle()

    async def shutdown(self, reason: str) -> None:
        severity = Severity.CRITICAL if reason.startswith("crashed") else Severity.WARNING if "kill" in reason else Severity.INFO
        self.ctx.alert(Alert(kind="run_stopped", title=f"gobot stopped: {reason}", severity=severity))
        await self.flush_alerts()
        await self.hooks.notify("gobot_shutdown", ctx=self.ctx)
        self.audit("run_stopped", reason=reason)
        self.audit_log.close()

    def finish(self, reason: str) -> None:
        self.state.finished = True
        self.state.finish_reason = reason
        self.persist_cycle()

    def persist(self) -> None:
        """Save the state (operator commands); a disk error is raised. The loop uses ``persist_cycle``."""
        self.store.save(self.state)

    # -- a full disk: degrade, never crash ------------------------------------------------------

    def persist_cycle(self) -> bool:
        """Save the state from the loop; False if the disk took no write.

        On a disk error (``is_disk_error``: ENOSPC, EDQUOT, EFBIG, EIO, EROFS) the bot keeps going on
        the state in memory: it opens no new position (exits, stops and CRITICAL closes go on), raises
        one CRITICAL ``disk_full`` alert (the console, Telegram and webhooks need no disk), keeps
        audit lines in memory, and tries again at every cycle's end. The first save that succeeds
        with every waiting audit line written ends it: ``disk_recovered``, new positions again."""
        try:
            self.store.save(self.state)
        except OSError as exc:
            if not is_disk_error(exc):
                raise
            self._disk_failed(self.store.state_file, exc)
            return False
        self._saved_iteration = self.state.iteration
        if self.disk_trouble is not None and self.audit_log.flush():
            self._disk_recovered()
        return True

    def beat(self, stopped: str | None = None) -> None:
        """The heartbeat; a disk error makes the bot degrade (see ``persist_cycle``), never crash."""
        self._disk_write(self.store.heartbeat_file, lambda: self.store.beat(self.state, stopped))

    def _disk_write(self, path, write: Callable[[], None]) -> bool:
        try:
            write()
        except OSError as exc:
            if not is_disk_error(exc):
                raise
            self._disk_failed(path, exc)
            return False
        return True

    def _disk_failed(self, path, exc: OSError) -> None:
        trouble = self.disk_trouble
        if trouble is not None:
            trouble["failed_writes"] += 1
            return
        error = disk_error_text(exc)
        self.disk_trouble = {"since_cycle": self._saved_iteration + 1, "file": str(path), "error": error, "failed_writes": 1,
                             "started": time.monotonic()}
        log.critical("cannot write %s: %s — no new positions until the state can be saved again (retried every cycle)", path, error)
        self.ctx.alert(Alert(
            kind="disk_full", severity=Severity.CRITICAL,
            title=f"Disk full: cannot write {Path(path).name} — no new positions",
            text=f"{error} in {self.store.dir}. Open positions stay protected (exits and stops go on); the state is kept "
                 "in memory and saved again at every cycle's end; new positions resume once a save succeeds. Free space there.",
            data={"file": str(path), "error": error, "since_cycle": self._saved_iteration + 1}))
        self.audit("disk_full", file=str(path), error=error, since_cycle=self._saved_iteration + 1)

    def _disk_recovered(self) -> None:
        trouble, self.disk_trouble = self.disk_trouble, None
        cycles = max(0, self.state.iteration - trouble["since_cycle"])  # cycles that ended without a save (this one did)
        seconds = time.monotonic() - trouble["started"]
        self.audit("disk_recovered", since_cycle=trouble["since_cycle"], cycles=cycles, failed_writes=trouble["failed_writes"],
                   seconds=round(seconds, 3), error=trouble["error"])
        self.ctx.alert(Alert(
            kind="disk_recovered", severity=Severity.WARNING,
            title="Disk writable again: state saved, new positions allowed",
            text=f"{cycles} cycle(s) ended without a save, from cycle {trouble['since_cycle']} on ({trouble['error']} on "
                 f"{trouble['file']}); cycle {self.state.iteration} is saved and every waiting audit line written",
            data={"since_cycle": trouble["since_cycle"], "cycles": cycles, "failed_writes": trouble["failed_writes"]}))

    # -- one cycle ----------------------------------------------------------------------------

    @contextmanager
    def _phase(self, report: CycleReport, name: str) -> Iterator[PhaseRecord]:
        if self.stop_requested and name in ("scan", "ideas", "adjust", "validate", "execute"):
            raise CycleAbandoned(name)
        record = PhaseRecord(name=name)
        started = time.perf_counter()
        try:
            yield record
        finally:
            record.duration_ms = (time.perf_counter() - started) * 1000
            report.phases.append(record)

    async def run_cycle(self) -> CycleReport:
        """Run one full cycle and persist the state at its end."""
        ctx, state = self.ctx, self.state
        self.cycle_number = state.iteration + 1
        ctx.paused = self.store.paused
        ctx.new_learnings = []
        self.failures = []
        now = self.clock.now()
        report = CycleReport(run_id=state.run_id, iteration=ctx.iteration, time=now, paused=ctx.paused)
        cycle_started = time.perf_counter()
        day = now.date().isoformat()
        self.cycle_approved = []
        await self._take_control_requests()

        with self._phase(report, "scan") as phase:
            snapshots = await self._scan(phase)
            new_day = day not in state.day_start_equity
            state.day_start_equity.setdefault(day, self.portfolio.equity())
            await self._sync_executions(report, phase, snapshots)
            if new_day:  # after the sync: trades that closed before midnight are counted in their day
                self._daily_summary(day)
            await self.flush_alerts()  # execution failures reported during the scan reach the breaker before risk checks
            await self.hooks.notify("gobot_on_scan_end", ctx=ctx, snapshots=snapshots)

        with self._phase(report, "ideas") as phase:
            signals = await self._ideas(phase, snapshots)
            report.signals = signals

        with self._phase(report, "adjust") as phase:
            adjusted = await self._adjust(phase)

        with self._phase(report, "validate") as phase:
            await self._validate(phase, adjusted)
            approved = await self._risk(report, phase, signals, snapshots)
            closes = self._requested_closes(phase, snapshots)
            approved = closes + [i for i in approved if i.symbol not in {c.symbol for c in closes}]

        with self._phase(report, "execute") as phase:
            await self.flush_alerts()  # failures reported during the scan (a 418 ban) reach the breaker first
            await self._execute(report, phase, approved)
            await self.flush_alerts()

        with self._phase(report, "report") as phase:
            report.learnings = list(ctx.new_learnings)
            report.errors = [str(f) for f in self.failures]
            report.equity = self.portfolio.equity()
            report.cash = state.cash
            report.realised_pnl = sum(t.pnl for t in state.trades)
            report.open_positions = len(state.positions)
            await self.hooks.notify("gobot_report", ctx=ctx, report=report)
            phase.records.append(
                f"equity {report.equity:.2f}, {report.open_positions} open, "
                f"{len(state.trades)} closed trades, {len(report.errors)} plugin errors"
            )

        self._remember(report, day, (time.perf_counter() - cycle_started) * 1000)
        self.audit("cycle_completed", equity=report.equity, open_positions=report.open_positions,
                   closed_trades=len(state.trades), vetoes=len(report.vetoes), orders=len(report.orders))
        kill_point(f"before_persist:{report.iteration}")
        saved = self.persist_cycle()
        if saved and self._reset_request_done:  # removed only once the reset is persisted: a crash re-applies it
            self.store.reset_request_file.unlink(missing_ok=True)
            self._reset_request_done = False
        kill_point(f"after_cycle:{report.iteration}")
        self._disk_write(self.store.progress_file, lambda: self.store.save_progress(self.progress()))
        self.counters.cycle_done(report, state.cycles[-1].duration_ms)
        await self.hooks.notify("gobot_on_cycle_end", ctx=ctx, report=report)
        await self.flush_alerts()
        self.clock.advance(self.settings.orchestrator.loop_interval)
        return report

    async def _scan(self, phase: PhaseRecord) -> list[MarketSnapshot]:
        by_symbol: dict[str, MarketSnapshot] = {}
        for plugin, answer in await self.hooks.collect("gobot_scan_market", ctx=self.ctx):
            for snap in answer:
                if not (math.isfinite(snap.price) and snap.price > 0):  # bad data from the exchange: never trade on it
                    phase.records.append(f"{snap.symbol}: price {snap.price!r} from {plugin} is not a positive number — ignored")
                    continue
                if snap.symbol not in by_symbol:
                    by_symbol[snap.symbol] = snap.model_copy(update={"source": plugin})
        snapshots = [by_symbol[s] for s in self.settings.trading.symbols if s in by_symbol]
        for snap in snapshots:
            phase.records.append(f"{snap.symbol} {snap.price:.6g} ({snap.source}, {len(snap.candles)} candles)")
        missing = [s for s in self.settings.trading.symbols if s not in by_symbol]
        if missing:
            phase.records.append(f"no market data for {', '.join(missing)}")
        self.ctx.snapshots = snapshots
        self.portfolio.mark({snap.symbol: snap.price for snap in snapshots})
        return snapshots

    async def _sync_executions(self, report: CycleReport, phase: PhaseRecord, snapshots: list[MarketSnapshot]) -> None:
        fills: list[Fill] = []
        for plugin, answer in await self.hooks.collect("gobot_sync_executions", ctx=self.ctx, snapshots=snapshots):
            fills.extend(item for item in answer if isinstance(item, Fill))
            for order in (item for item in answer if isinstance(item, Order)):
                await self._order_ended(phase, order.model_copy(update={"executor": plugin}))
        for fill in sorted(fills, key=lambda f: f.time):
            await self.apply_fill(report, fill)
            phase.records.append(f"fill {fill.side.value} {fill.amount:.6g} {fill.symbol} @ {fill.price:.6g} ({fill.reason})")
        if not fills:
            phase.records.append("no fills since the last cycle")

    async def _order_ended(self, phase: PhaseRecord, order: Order) -> None:
        """An order the core waited for ended without a fill (see ``gobot_sync_executions``)."""
        if order.status not in ("canceled", "rejected"):
            return
        intent = self.state.intents.pop(order.client_order_id, None)
        self.state.open_orders.pop(order.client_order_id, None)
        if intent is None:
            return  # not one the core waited for (a protective order, or already settled)
        self.audit("order_ended", order=order, intent_id=intent.id)
        await self.hooks.notify("gobot_on_order", ctx=self.ctx, order=order)
        phase.records.append(f"{order.symbol}: {order.purpose} {order.side.value} {order.client_order_id} ended "
                             f"{order.status} without a fill ({order.reason or 'no reason given'})")

    async def apply_fill(self, report: CycleReport, fill: Fill) -> Trade | None:
        intent = self.state.intents.pop(fill.client_order_id, None)
        self.state.open_orders.pop(fill.client_order_id, None)
        trade = self.portfolio.apply_fill(fill, intent)
        report.fills.append(fill)
        self.audit("fill", fill=fill, event_id=event_id("fill", fill, FILL_ID_FIELDS))  # once, also when a cycle re-runs
        kill_point(f"before_archive_fill:{self.ctx.iteration}")  # a fill known, its archive write not yet made
        await self.hooks.notify("gobot_on_fill", ctx=self.ctx, fill=fill)
        if fill.purpose == "open" and trade is None:
            self.ctx.alert(
                Alert(
                    kind="trade_opened",
                    title=f"Opened {'long' if fill.side is Side.BUY else 'short'} {fill.symbol} @ {fill.price:.6g}",
                    text=f"amount {fill.amount:.6g}, fee {fill.fee:.4f}",
                    data={"symbol": fill.symbol, "price": fill.price, "amount": fill.amount},
                )
            )
        if trade is not None:
            report.trades_closed.append(trade)
            self.audit("trade_closed", trade=trade, event_id=event_id("trade", trade, TRADE_ID_FIELDS))
            await self.hooks.notify("gobot_on_trade_closed", ctx=self.ctx, trade=trade)
            self.ctx.alert(
                Alert(
                    kind="trade_closed",
                    title=f"Closed {trade.direction.value.lower()} {trade.symbol}: P&L {trade.pnl:+.2f}",
                    text=f"{trade.entry_price:.6g} -> {trade.exit_price:.6g} ({trade.exit_reason})",
                    data={"symbol": trade.symbol, "pnl": trade.pnl, "exit_reason": trade.exit_reason},
                )
            )
        return trade

    async def _ideas(self, phase: PhaseRecord, snapshots: list[MarketSnapshot]) -> list[Signal]:
        learnings = [item for item in self.state.learnings if item.iteration < self.ctx.iteration][-LEARNINGS_HANDED_OVER:]
        phase.records.append(f"{len(learnings)} learnings handed over: {', '.join(item.id for item in learnings) or '-'}")
        self.audit("ideas_input", learnings=[item.id for item in learnings], symbols=[s.symbol for s in snapshots])
        signals: list[Signal] = []
        for plugin, answer in await self.hooks.collect(
            "gobot_generate_ideas", ctx=self.ctx, snapshots=snapshots, learnings=learnings
        ):
            for item in answer:
                item = item.model_copy(update={"source": plugin})
                signals.append(item)
                self.audit("signal", signal=item)
                phase.records.append(
                    f"{item.symbol} {item.action.value} conf {item.confidence:.2f} by {plugin}: {item.rationale}"
                )
        if not signals:
            phase.records.append("no signals")
        return signals

    async def _adjust(self, phase: PhaseRecord) -> dict[str, StrategyVersion]:
        """Apply adjustment decisions; return the previous version of each adjusted strategy."""
        previous: dict[str, StrategyVersion] = {}
        self._apply_optimizer_request(phase, previous)
        for name, current in self._current_strategies():
            decisions = await self.hooks.collect("gobot_adjust_strategy", ctx=self.ctx, strategy=current)
            if not decisions:
                phase.records.append(f"{name} v{current.version}: no adjuster answered")
            for plugin, decision in decisions:
                decision: AdjustmentDecision = decision.model_copy(update={"plugin": plugin})
                self.audit("adjustment", decision=decision)
                changes = self._in_range(name, decision.changes, phase)
                if not changes or name in previous:
                    phase.records.append(f"{name} v{current.version}: keep ({plugin}: {decision.reason})")
                    continue
                new = StrategyVersion(
                    name=name,
                    version=max(v.version for v in self.state.strategy_history if v.name == name) + 1,
                    params={**current.params, **changes},
                    created_at=self.clock.now(),
                    reason=f"{plugin}: {decision.reason}",
                )
                previous[name] = current
                self.state.strategies[name] = new
                self.state.strategy_history.append(new)
                phase.records.append(f"{name} v{current.version} -> v{new.version}: {changes} ({decision.reason})")
        return previous

    def _apply_optimizer_request(self, phase: PhaseRecord, previous: dict[str, StrategyVersion]) -> None:
        """Parameters ``gobot optimize`` accepted (``<state_dir>/OPTIMIZED.json``) become a new version.

        Which request was applied is kept in the persisted state (``plugin_state["optimizer"]``), so a
        cycle abandoned before it is persisted applies it again; the validate phase judges the version.
        """
        from gobot.host.strategy_params import REQUEST_FILE

        path = self.settings.state_path / REQUEST_FILE
        if not path.exists():
            return
        marker = self.state.plugin_state.setdefault("optimizer", {})
        try:
            request = json.loads(path.read_text(encoding="utf-8"))
            name, params, stamp = request["strategy"], dict(request["params"]), request["created_at"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            phase.records.append(f"optimizer: {path.name} unreadable ({exc}), ignored")
            return
        if marker.get("applied") == stamp:
            return
        marker["applied"] = stamp
        if name not in self.strategies:
            phase.records.append(f"optimizer: no strategy '{name}' registered, request ignored")
            return
        current = self.state.strategies[name]
        changes = self._in_range(name, {k: v for k, v in params.items() if current.params.get(k) != v}, phase)
        if not changes:
            phase.records.append(f"optimizer: {name} v{current.version} already has the accepted parameters")
            return
        new = StrategyVersion(
            name=name,
            version=max(v.version for v in self.state.strategy_history if v.name == name) + 1,
            params={**current.params, **changes},
            created_at=self.clock.now(),
            reason=str(request.get("reason", "optimizer")),
        )
        previous[name] = current
        self.state.strategies[name] = new
        self.state.strategy_history.append(new)
        self.audit("optimizer_applied", strategy=name, version=new.version, params=new.params,
                   study=request.get("study"), trial=request.get("trial"))
        phase.records.append(f"{name} v{current.version} -> v{new.version}: {changes} (optimizer: study "
                             f"'{request.get('study')}' trial #{request.get('trial')})")

    def _current_strategies(self) -> list[tuple[str, StrategyVersion]]:
        """Registered strategies with their current version (a disabled plugin's are left alone)."""
        return [(name, self.state.strategies[name]) for name in sorted(self.strategies)]

    def _in_range(self, name: str, changes: dict[str, float], phase: PhaseRecord) -> dict[str, float]:
        specs = self.strategies[name].parameters if name in self.strategies else {}
        accepted = {}
        for key, value in changes.items():
            spec = specs.get(key)
            if spec is None or not spec.low <= value <= spec.high:
                phase.records.append(f"{name}: change {key}={value} refused (outside the declared range)")
                continue
            accepted[key] = value
        return accepted

    async def _validate(self, phase: PhaseRecord, adjusted: dict[str, StrategyVersion]) -> None:
        for name, current in self._current_strategies():
            results = await self.hooks.collect("gobot_validate_strategy", ctx=self.ctx, strategy=current)
            failed = []
            for plugin, result in results:
                result: ValidationResult = result.model_copy(update={"plugin": plugin})
                self.audit("validation", result=result)
                phase.records.append(
                    f"{name} v{result.version}: {'pass' if result.passed else 'FAIL'} ({plugin}: {result.reason})"
                )
                if not result.passed:
                    failed.append(result)
            if name in adjusted and failed:
                old = adjusted[name]
                self.state.strategies[name] = old
                phase.records.append(f"{name}: adjustment to v{current.version} rejected, back to v{old.version}")
                self.audit("adjustment_rejected", strategy=name, version=current.version, reasons=[f.reason for f in failed])

    def _intent(self, symbol: str, side: Side, purpose: str, notional: float, price: float, signal: Signal | None) -> OrderIntent:
        trading = self.settings.trading
        return order_intent(self.ctx, symbol, side, purpose, notional, price, signal, id_prefix=LIVE_ID_PREFIX,
                            created_at=self.clock.now(), stop_loss_percent=trading.stop_loss_percent,
                            take_profit_percent=trading.take_profit_percent)

    async def _risk(
        self, report: CycleReport, phase: PhaseRecord, signals: list[Signal], snapshots: list[MarketSnapshot]
    ) -> list[OrderIntent]:
        """Turn signals into intents; exits pass, new exposure must pass every risk plugin."""
        prices = {snap.symbol: snap.price for snap in snapshots}
        approved: list[OrderIntent] = []
        seen: set[str] = set()
        # Several plugins may propose for one symbol: the most confident proposal is the one considered
        # (ties keep plugin call order), so no plugin wins merely by its name's place in the alphabet.
        for signal in sorted(signals, key=lambda s: -s.confidence):
            if signal.action is Action.HOLD or signal.symbol in seen or signal.symbol not in prices:
                continue
            seen.add(signal.symbol)
            price = prices[signal.symbol]
            if any(i.symbol == signal.symbol for i in self.state.intents.values()):
                phase.records.append(f"{signal.symbol}: an order is still pending, no new intent")
                continue
            position = self.state.positions.get(signal.symbol)
            if position is not None and position.direction is signal.action:
                phase.records.append(f"{signal.symbol}: already {position.direction.value.lower()}, holding")
                continue
            if position is not None:
                side = Side.SELL if position.direction is Action.LONG else Side.BUY
                approved.append(self._intent(signal.symbol, side, "close", position.notional(price), price, signal))
                phase.records.append(f"{signal.symbol}: exit {position.direction.value.lower()} on opposite signal")
                continue
            decision = await self._decide_entry(signal, price)
            if decision.sizing_error is not None:  # fail closed: no size, no trade
                self.failures.append(decision.sizing_failure())
                phase.records.append(f"{signal.symbol}: no trade, sizing failed — {decision.sizing_error}")
                continue
            if decision.intent is None:  # risk is always asked here: no intent = no size
                phase.records.append(f"{signal.symbol}: {NO_POSITION}")
                continue
            intent = decision.intent
            report.verdicts.extend(decision.verdicts)
            if decision.vetoes:
                self._veto(report, phase, intent, decision.vetoes)
                continue
            phase.records.append(f"{intent.symbol} {intent.side.value} {decision.notional:.2f} USD approved by "
                                 f"{len(decision.verdicts)} risk checks")
            approved.append(intent)
            self.cycle_approved.append(intent)
        if not signals or all(s.action is Action.HOLD for s in signals):
            phase.records.append("no order intents (all HOLD)")
        return approved

    def _requested_closes(self, phase: PhaseRecord, snapshots: list[MarketSnapshot]) -> list[OrderIntent]:
        """CRITICAL close intents for positions that ``ctx.close_positions`` asked to close."""
        prices = {snap.symbol: snap.price for snap in snapshots}
        closes: list[OrderIntent] = []
        requests, self.close_requests = self.close_requests, []
        for reason, symbols in requests:
            for symbol, position in self.state.positions.items():
                if symbols is not None and symbol not in symbols:
                    continue
                if any(i.symbol == symbol and i.purpose == "close" for i in [*closes, *self.state.intents.values()]):
                    continue
                price = prices.get(symbol, self.state.last_prices.get(symbol, position.entry_price))
                side = Side.SELL if position.direction is Action.LONG else Side.BUY
                intent = self._intent(symbol, side, "close", position.notional(price), price, None)
                intent = intent.model_copy(update={"priority": Priority.CRITICAL, "reason": reason})
                closes.append(intent)
                phase.records.append(f"{symbol}: close requested ({reason}), CRITICAL")
        return closes

    async def _decide_entry(self, signal: Signal, price: float) -> EntryDecision:
        """The entry decision (``gobot.host.entry``): sized, an intent, judged by every risk plugin, audited."""
        trading = self.settings.trading
        return await decide_entry(self.hooks, self.ctx, signal, price, id_prefix=LIVE_ID_PREFIX,
                                  created_at=self.clock.now(), stop_loss_percent=trading.stop_loss_percent,
                                  take_profit_percent=trading.take_profit_percent)

    def _veto(self, report: CycleReport, phase: PhaseRecord, intent: OrderIntent, vetoes: list[RiskVerdict]) -> None:
        report.vetoes.extend(vetoes)
        reasons = "; ".join(f"{v.plugin}: {v.reason}" for v in vetoes)
        phase.records.append(f"{intent.symbol} {intent.side.value} VETOED — {reasons}")
        self.state.vetoes.append({"iteration": self.ctx.iteration, "symbol": intent.symbol, "reasons": reasons})
        self.ctx.alert(
            Alert(
                kind="risk_veto",
                title=f"Risk veto: {intent.side.value} {intent.symbol}",
                text=reasons,
                severity=Severity.WARNING,
                data={"symbol": intent.symbol, "reasons": [v.model_dump() for v in vetoes]},
            )
        )

    async def _execute(self, report: CycleReport, phase: PhaseRecord, intents: list[OrderIntent]) -> None:
        if not intents:
            phase.records.append("nothing to execute")
        if not self.settings.trading.auto_execute:
            intents = await self._confirm_first(report, phase, [i for i in intents if self._may_send(phase, i)])
        for intent in intents:
            if self._may_send(phase, intent):  # re-checked per order: a kill switch halts at once
                await self._send(report, phase, intent)

    def _may_send(self, phase: PhaseRecord, intent: OrderIntent) -> bool:
        if intent.priority is not Priority.CRITICAL and self.kill_switch_on():
            phase.records.append(f"{intent.symbol}: kill switch on, not sent")
            return False
        if intent.purpose == "open" and self.ctx.paused:
            phase.records.append(f"{intent.symbol}: paused, no new positions")
            return False
        if intent.purpose == "open" and self.disk_trouble is not None:
            phase.records.append(f"{intent.symbol}: disk full ({self.disk_trouble['error']}), no new positions")
            return False
        return True

    async def _confirm_first(self, report: CycleReport, phase: PhaseRecord, intents: list[OrderIntent]) -> list[OrderIntent]:
        """``auto_execute = false``: ask ``gobot_confirm_order`` about every intent at once (a human may
        answer them in any order); the confirmed ones are returned, the others only proposed."""
        answers = await asyncio.gather(*(self._confirmation(intent) for intent in intents))
        confirmed = []
        for intent, (plugin, answer) in zip(intents, answers):
            if answer is True:
                self.audit("order_confirmed", intent=intent, plugin=plugin)
                phase.records.append(f"{intent.symbol}: confirmed by {plugin}")
                confirmed.append(intent)
                continue
            why = "auto_execute = false" + ("" if answer is None else f"; rejected by {plugin}")
            order = self._proposed(intent)
            report.orders.append(order)
            self.audit("order_proposed", order=order, intent=intent, confirmation=plugin or None, confirmed=answer)
            await self.hooks.notify("gobot_on_order", ctx=self.ctx, order=order)
            self.ctx.alert(Alert(kind="order_proposed", title=f"Proposed {intent.side.value} {intent.symbol}", text=f"{intent.notional_usd:.2f} USD ({why})"))
            phase.records.append(f"{intent.symbol}: proposed only ({why})")
        return confirmed

    async def _confirmation(self, intent: OrderIntent) -> tuple[str, bool | None]:
        """(plugin, True/False), or ("", None) when nobody answered; a raising confirmer rejects (fails closed)."""
        try:
            answer = await self.hooks.first("gobot_confirm_order", ctx=self.ctx, intent=intent)
        except PluginError as exc:
            self.failures.append(HookFailure(exc.plugin, "gobot_confirm_order", exc))
            return exc.plugin, False
        if answer is None:
            return "", None
        plugin, value = answer
        return plugin, value is True

    def _proposed(self, intent: OrderIntent) -> Order:
        return Order(
            id=intent.client_order_id, client_order_id=intent.client_order_id, intent_id=intent.id,
            symbol=intent.symbol, side=intent.side, purpose=intent.purpose, amount=intent.amount,
            stop_loss=intent.stop_loss, take_profit=intent.take_profit, status="proposed",
            created_at=intent.created_at, executor="core",
        )

    async def _send(self, report: CycleReport, phase: PhaseRecord, intent: OrderIntent) -> None:
        self.state.intents[intent.client_order_id] = intent
        try:
            answer = await self.hooks.first("gobot_execute_order", ctx=self.ctx, intent=intent)
            if answer is None:
                raise PluginError("core", "no enabled executor answered", hook="gobot_execute_order")
        except PluginError as exc:
            error = ExecutionError(message=str(exc), kind="error", symbol=intent.symbol, intent_id=intent.id, plugin=exc.plugin)
            if isinstance(exc.__cause__, ExecutionFailed):  # the executor said what kind of failure it was
                error = exc.__cause__.error.model_copy(update={"plugin": exc.plugin})
                error = error.model_copy(update={"symbol": error.symbol or intent.symbol, "intent_id": error.intent_id or intent.id})
            unknown = error.kind in ("network", "timeout")  # it may have been placed: wait for its fill or its end
            if not unknown:
                self.state.intents.pop(intent.client_order_id, None)
            await self._execution_error(error)
            phase.records.append(f"{intent.symbol}: execution error ({error.kind}) — {exc}"
                                 + (" — outcome unknown: waiting for the executor to report it" if unknown else ""))
            return
        plugin, order = answer
        order = order.model_copy(update={"executor": plugin})
        report.orders.append(order)
        self.audit("order", order=order, intent_id=intent.id)
        await self.hooks.notify("gobot_on_order", ctx=self.ctx, order=order)
        phase.records.append(f"{order.symbol}: {order.purpose} {order.side.value} {order.amount:.6g} sent to {plugin} ({order.status})")
        if order.status not in ("filled", "rejected", "canceled"):
            self.state.open_orders[order.client_order_id] = order
        if order.status == "rejected":
            self.state.intents.pop(intent.client_order_id, None)

    async def _execution_error(self, error: ExecutionError) -> None:
        """Audit it, tell every plugin (the circuit breaker counts these) and raise a CRITICAL alert."""
        self.audit("execution_error", error=error)
        await self.hooks.notify("gobot_on_execution_error", ctx=self.ctx, error=error)
        title = f"Order failed: {error.symbol}" if error.symbol else f"Execution error ({error.kind})"
        text = error.message if not error.plugin or f"'{error.plugin}'" in error.message else f"plugin '{error.plugin}': {error.message}"
        self.ctx.alert(Alert(kind="execution_error", title=title, text=text, severity=Severity.CRITICAL,
                             data={"kind": error.kind, "retryable": error.retryable}))

    def kill_switch_on(self) -> bool:
        return self.settings.orchestrator.kill_switch_enabled and self.settings.kill_switch_path.exists()

    # -- operator requests (gobot kill --close-positions, gobot risk reset) ---------------------

    def close_out_pending(self) -> bool:
        """A close-out was asked for (``<state_dir>/CLOSE_POSITIONS``) and a position or its close is still open.

        Once flat, the request is removed, audited and alerted, and this returns False.
        """
        request = self.store.close_request_file
        if not request.exists():
            return False
        if self.state.positions or any(i.purpose == "close" for i in self.state.intents.values()):
            return True
        request.unlink(missing_ok=True)
        self.audit("close_out_complete", reason=_request_text(request, "close-out"))
        self.ctx.alert(Alert(kind="close_out_complete", title="Close-out complete: no open positions", severity=Severity.WARNING))
        return False

    async def _take_control_requests(self) -> None:
        """At the start of a cycle: turn request files left by operator commands into actions."""
        request = self.store.close_request_file
        if request.exists() and self.close_out_pending() and self.state.positions:  # removed once flat
            self.ctx.close_positions(_request_text(request, "gobot kill --close-positions"))
        reset = self.store.reset_request_file
        if reset.exists() and not self._reset_request_done:
            await self.risk_reset(_request_text(reset, "gobot risk reset"), source="request file")
            self._reset_request_done = True

    async def risk_reset(self, reason: str, source: str = "gobot risk reset") -> list[tuple[str, str]]:
        """Call ``gobot_risk_reset`` on every plugin; audit and alert what was reset."""
        answers = [(plugin, str(line)) for plugin, line in await self.hooks.collect("gobot_risk_reset", ctx=self.ctx, reason=reason)]
        self.audit("risk_reset", reason=reason, source=source, reset={plugin: line for plugin, line in answers})
        text = "; ".join(f"{plugin}: {line}" for plugin, line in answers) or "nothing was latched"
        self.ctx.alert(Alert(kind="risk_reset", title=f"Risk state reset: {reason}", text=text, severity=Severity.WARNING))
        return answers

    async def risk_statuses(self) -> list[RiskStatus]:
        """Every plugin's ``gobot_risk_status`` (a raising one is reported as unknown, not allowing trades)."""
        self.failures = []
        statuses = [status.model_copy(update={"plugin": plugin}) for plugin, status in await self.hooks.collect("gobot_risk_status", ctx=self.ctx)]
        for failure in self.failures:
            reason = f"status unknown: {type(failure.error).__name__}: {failure.error}"
            statuses.append(RiskStatus(plugin=failure.plugin, allows_trading=False, reason=reason))
        return statuses

    async def open_session(self) -> None:
        """For operator commands on a stopped bot: start the plugins (alert channels, connections) without a run."""
        for impl_failure in await self.hooks.notify("gobot_startup", ctx=self.ctx):
            raise PluginError(impl_failure.plugin, f"start-up failed: {impl_failure.error}", hook="gobot_startup")

    async def close_session(self) -> None:
        await self.flush_alerts()
        await self.hooks.notify("gobot_shutdown", ctx=self.ctx)
        self.audit_log.close()

    # -- bookkeeping ----------------------------------------------------------------------------

    def _remember(self, report: CycleReport, day: str, duration_ms: float) -> None:
        state = self.state
        state.learnings = (state.learnings + report.learnings)[-MAX_LEARNINGS:]
        counts = {a: sum(1 for s in report.signals if s.action is a) for a in Action}
        state.cycles.append(
            CycleRow(
                iteration=report.iteration,
                time=report.time,
                signals=f"{counts[Action.LONG]}L {counts[Action.SHORT]}S {counts[Action.HOLD]}H",
                vetoes=len(report.vetoes),
                orders=len(report.orders),
                fills=len(report.fills),
                closed=len(report.trades_closed),
                equity=report.equity,
                pnl=report.equity - state.initial_capital,
                duration_ms=duration_ms,
                phase_ms={p.name: round(p.duration_ms, 3) for p in report.phases},
                note="paused" if report.paused else "",
            )
        )
        state.cycles = state.cycles[-MAX_CYCLE_ROWS:]
        state.iteration = report.iteration
        if self.clock.simulated:  # where the next cycle starts (the clock itself moves after on_cycle_end)
            state.clock = self.clock.now() + timedelta(seconds=self.settings.orchestrator.loop_interval)

    def _daily_summary(self, new_day: str) -> None:
        """A ``daily_summary`` alert for the last day before ``new_day`` that had cycles (UTC, bot clock)."""
        state = self.state
        rows = [row for row in state.cycles if row.time.date().isoformat() < new_day]
        if not rows:
            return
        day = rows[-1].time.date().isoformat()
        rows = [row for row in rows if row.time.date().isoformat() == day]
        start = state.day_start_equity.get(day, state.initial_capital)
        end = rows[-1].equity
        trades = [t for t in state.trades if t.closed_at.date().isoformat() == day]
        wins = sum(1 for t in trades if t.pnl > 0)
        vetoes = sum(row.vetoes for row in rows)
        realised = sum(t.pnl for t in trades)
        pnl = end - start
        win_rate = f", {wins / len(trades):.0%}" if trades else ""
        self.ctx.alert(
            Alert(
                kind="daily_summary",
                title=f"Daily summary {day}: P&L {pnl:+.2f} ({pnl / start * 100 if start else 0.0:+.1f} %)",
                text=f"{len(trades)} trades closed ({wins} won{win_rate}), realised {realised:+.2f}; equity {end:.2f}; "
                f"{len(state.positions)} open positions; {vetoes} risk vetoes; {len(rows)} cycles",
                data={"day": day, "pnl": round(pnl, 4), "trades": len(trades), "wins": wins, "equity": round(end, 4),
                      "equity_curve": [[row.time.isoformat(), round(row.equity, 4)] for row in rows]},
            )
        )

    def daily_pnl(self) -> float:
        """Equity change since the start of the day of the last cycle (UTC)."""
        day = (self.state.cycles[-1].time if self.state.cycles else self.clock.now()).date().isoformat()
        start = self.state.day_start_equity.get(day, self.state.initial_capital)
        return self.portfolio.equity() - start

    def progress(self) -> dict[str, Any]:
        state = self.state
        last = state.cycles[-1] if state.cycles else None
        return {
            "run_id": state.run_id,
            "iteration": state.iteration,
            "max_iterations": self.settings.orchestrator.max_iterations,
            "time": last.time if last else None,
            "phase_ms": last.phase_ms if last else {},
            "equity": round(self.portfolio.equity(), 4),
            "pnl": round(self.portfolio.equity() - state.initial_capital, 4),
            "daily_pnl": round(self.daily_pnl(), 4),
            "closed_trades": len(state.trades),
            "open_positions": {s: p.model_dump(mode="json") for s, p in state.positions.items()},
            "breaker": state.plugin_state.get("circuit_breaker", {}).get("state", "not installed"),
            "paused": self.store.paused,
            "learnings": [item.model_dump(mode="json") for item in state.learnings[-5:]],
            "finished": state.finished,
            "finish_reason": state.finish_reason,
        }
