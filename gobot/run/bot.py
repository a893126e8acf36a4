"""The orchestrator: one cycle = scan -> ideas -> adjust -> validate -> execute -> report.

Every phase is supplied by plugins through hooks; the core only sequences them, times them,
keeps the portfolio and the state, and writes the audit log. ``runner.py`` decides when cycles
run (simulated clock or APScheduler); this module decides what one cycle does.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Callable, Collection, Iterator

from gobot.config import Settings, load_plugin_configs
from gobot.errors import PluginError
from gobot.host.entry import LIVE_ID_PREFIX, NO_POSITION, EntryDecision, decide_entry, order_intent
from gobot.host.hook_caller import HookCaller, HookFailure
from gobot.host.plugin_manager import PluginSet
from gobot.host.rate_limit import NoWaitPolicy
from gobot.run import alerting, summary
from gobot.run.audit import FILL_ID_FIELDS, TRADE_ID_FIELDS, AuditLog, event_id
from gobot.run.clock import WallClock
from gobot.run.confirm import confirm_first
from gobot.run.context import Context
from gobot.run.counters import CoreCounters
from gobot.run.disk import DiskGuard
from gobot.run.portfolio import Portfolio
from gobot.run.requests import OperatorRequests
from gobot.run.resume import carry_over_account, load_run
from gobot.run.state import StateStore, ensure_private_dir
from gobot.run.versions import StrategyVersions
from gobot.testing.kill_point import kill_point
from gobot_hookspecs import (
    Action,
    Alert,
    CycleReport,
    ExecutionError,
    ExecutionFailed,
    Fill,
    Funding,
    MarketSnapshot,
    Order,
    OrderIntent,
    PhaseRecord,
    Priority,
    RiskVerdict,
    Sentiment,
    Severity,
    Side,
    Signal,
    Strategy,
    Trade,
)
from gobot_hookspecs.money import money, quote_of

#: what ``ctx.backtest`` imports (numpy with them): a validator's first backtest would pay ~0.15 s in a cycle
BACKTESTER_MODULES = ("gobot.research.backtest.engine", "gobot.research.backtest.setup", "gobot.research.market_data")


def load_in_background(modules: tuple[str, ...]) -> threading.Thread:
    """Import ``modules`` in a daemon thread while the plugins start, so that no cycle waits for them (an
    import the loop needs meanwhile waits on the module's import lock, then finds it loaded)."""
    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # the import in the cycle raises it again, where it is handled
                log.debug("background import of %s failed", name, exc_info=True)

    thread = threading.Thread(target=load, name="gobot-preload", daemon=True)
    thread.start()
    return thread

log = logging.getLogger(__name__)

PHASES = ("scan", "ideas", "adjust", "validate", "execute", "report")
LEARNINGS_HANDED_OVER = 20
#: Simulated clock: least wall time between two ``progress.json`` rewrites after cycles. A replay runs
#: hundreds of cycles a second; the file is for watching a run from outside (the run's end writes it too).
REPLAY_PROGRESS_SECONDS = 1.0


class CycleAbandoned(Exception):
    """A stop was requested before the execute phase: nothing of this cycle is persisted."""


class Bot:
    """A configured bot: plugins loaded, config validated, state loaded or created."""

    def __init__(
        self, settings: Settings, plugin_set: PluginSet, *, live: bool = False, fresh: bool = False,
        reopen: bool = False,
    ):
        """``reopen``: load the last run's state even if it finished, never archive or start a new
        run (operator commands on a stopped bot: ``gobot kill --close-positions``, ``gobot risk``)."""
        plugin_set.raise_for_failures()
        self.settings = settings
        self.plugin_set = plugin_set
        self.live = live
        self.failures: list[HookFailure] = []
        self.counters = CoreCounters()  # for /metrics and /health (gobot start --serve)
        self.statuses_asked: tuple[float, int, dict] | None = None  # (when, cycle, answers): see plugin_statuses
        self.hooks = HookCaller(plugin_set.pm, on_failure=self._on_failure)
        self.plugin_configs = load_plugin_configs(settings, self.hooks)
        self.strategies: dict[str, Strategy] = {}
        self.versions = StrategyVersions(self)  # adjust and validate, and every version made
        self.hooks.collect_sync("gobot_register_strategies", register=self.versions.register)

        ensure_private_dir(settings.state_path)
        self.store = StateStore(settings.state_path)
        self.audit_log = AuditLog(settings.state_path / "audit.jsonl")
        start = load_run(self.store, settings.trading.initial_capital_usd, fresh, reopen)
        self.state, self.resumed_from = start.state, start.resumed_from
        self.disk = DiskGuard(self)  # the loop's writes; a full disk degrades the bot (no new positions)
        self.requests = OperatorRequests(self)  # CLOSE_POSITIONS, RISK_RESET, OPTIMIZED.json
        trading = settings.trading
        self.portfolio = Portfolio(self.state, trading.portfolio_currency, trading.symbols)
        self.ctx = Context(self)
        self.clock = self.hooks.first_sync("gobot_clock", ctx=self.ctx) or WallClock()
        self.ctx.rate_limiter = self.hooks.first_sync("gobot_rate_limit_policy", ctx=self.ctx) or NoWaitPolicy()
        if self.clock.simulated and self.state.clock is not None:
            self.clock.advance((self.state.clock - self.clock.now()).total_seconds())
        if start.previous_run is not None and not self.clock.simulated:  # a replay is a new simulation, no carry-over
            carry_over_account(start)
            self.carried, self.previous_run = start.carried, start.previous_run
        else:
            self.carried, self.previous_run = {}, None
        #: where orders go: what the exchange plugin names (gobot_environment: "testnet", "live"), else "live"
        #: with --live and "paper" without; without --live a run is never called "live"
        named = self.hooks.first_sync("gobot_environment", ctx=self.ctx)
        self.environment = (named or "live") if live else (named if named and named != "live" else "paper")
        self.stop_requested = False
        self._progress_at = float("-inf")  # time.monotonic() of the last progress.json
        self.progress_behind = False  # a cycle ended without rewriting progress.json (simulated clock)
        self.close_requests: list[tuple[str, list[str] | None]] = []  # (reason, symbols or None = all)
        self.cycle_approved: list[OrderIntent] = []  # open intents approved in this cycle (ctx.pending_intents)
        self.cycle_number = self.state.iteration + 1
        self.session_plugins: set[str] | None = None  # the plugins an operator session started (None: all)
        for name in self.strategies:
            self.state.strategies.setdefault(name, self.versions.initial(name))

    # -- set-up -------------------------------------------------------------------------------

    def _on_failure(self, failure: HookFailure) -> None:
        # A start-up failure is raised as one PluginError that the CLI prints: not a second line on the terminal.
        log.log(logging.INFO if failure.hook == "gobot_startup" else logging.ERROR, "%s", failure)
        self.failures.append(failure)

    # -- services used by Context ---------------------------------------------------------------

    def audit(self, event: str, **data: Any) -> None:
        self.audit_log.write(event, sim_time=self.clock.now(), run_id=self.state.run_id, iteration=self.ctx.iteration,
                             **data)
        if self.audit_log.error is not None:  # the line waits in memory until a save succeeds (gobot.run.disk)
            self.disk.failed(self.audit_log.path, self.audit_log.error)

    async def drain(self) -> None:
        """Deliver the queued execution errors, then the alerts: at the points ``alerting.drain`` lists."""
        await alerting.drain(self)

    # -- lifecycle ----------------------------------------------------------------------------

    async def startup(self, on_started: Callable[[], None] | None = None) -> None:
        """Start every plugin; ``on_started()`` (the CLI's start line) runs once they all did, before the alerts."""
        self.ctx.paused = self.store.paused
        if self.plugin_set.pm.hook.gobot_validate_strategy.get_hookimpls():
            load_in_background(BACKTESTER_MODULES)
        for impl_failure in await self.hooks.notify("gobot_startup", ctx=self.ctx):
            raise PluginError(impl_failure.plugin, f"start-up failed: {impl_failure.error}", hook="gobot_startup")
        if on_started is not None:
            on_started()
        mode = self.environment
        what = f"run {self.state.run_id} started" if self.resumed_from is None else \
            f"resuming run {self.state.run_id} after cycle {self.resumed_from}"
        if self.previous_run is not None and self.state.positions:
            what += f", carrying over {len(self.state.positions)} open position(s) from run {self.previous_run.run_id}"
        self.audit("run_started", mode=mode, resumed_from=self.resumed_from, plugins=self.plugin_set.enabled,
                   carried_over=sorted(self.carried),
                   positions_carried=sorted(self.state.positions) if self.previous_run else [],
                   previous_run=self.previous_run.run_id if self.previous_run else None)
        self.ctx.alert(Alert(kind="run_started", title=f"gobot {mode}: {what}",
                             data={"plugins": self.plugin_set.enabled}))
        await self.drain()  # drain point 1 (the points: gobot.run.alerting.drain)
        if self.resumed_from is None and self.state.iteration == 0 and not self.store.state_file.exists():
            # Persist the new run's id now: client order ids derive from it, so a crash inside the
            # first cycle must re-run that cycle with the same ids (look-before-you-send finds them).
            self.persist_cycle()

    async def shutdown(self, reason: str) -> None:
        severity = Severity.CRITICAL if reason.startswith("crashed") else \
            Severity.WARNING if "kill" in reason else Severity.INFO
        self.ctx.alert(Alert(kind="run_stopped", title=f"gobot stopped: {reason}", severity=severity))
        await self.drain()  # point 6
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

    def persist_cycle(self) -> bool:
        """Save the state from the loop; False if the disk took no write (see ``gobot.run.disk``)."""
        return self.disk.save_state()

    async def write_progress(self) -> None:
        """``progress.json`` (``summary.write_progress``), now."""
        self._progress_at, self.progress_behind = time.monotonic(), False
        await summary.write_progress(self)

    def beat(self, stopped: str | None = None) -> None:
        """The heartbeat; a disk error makes the bot degrade (see ``gobot.run.disk``), never crash."""
        self.disk.write(self.store.heartbeat_file, lambda: self.store.beat(self.state, stopped))

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
        await self.requests.take()

        with self._phase(report, "scan") as phase:
            snapshots = await self._scan(phase)
            new_day = day not in state.day_start_equity
            state.day_start_equity.setdefault(day, self.portfolio.equity())
            await self._sync_executions(report, phase, snapshots)
            if new_day:  # after the sync: trades that closed before midnight are counted in their day
                await self._daily_summary(day)
            await self.drain()  # point 2: failures seen in the sync reach the breaker before it ticks
            await self.hooks.notify("gobot_on_scan_end", ctx=ctx, snapshots=snapshots)

        with self._phase(report, "ideas") as phase:
            signals = await self._ideas(phase, snapshots)
            report.signals = signals

        with self._phase(report, "adjust") as phase:
            proposals = await self.versions.adjust(phase)

        with self._phase(report, "validate") as phase:
            await self.versions.validate(phase, proposals)
            approved = await self._risk(report, phase, signals, snapshots)
            closes = self._requested_closes(phase, snapshots)
            approved = closes + [i for i in approved if i.symbol not in {c.symbol for c in closes}]

        with self._phase(report, "execute") as phase:
            await self.drain()  # point 3
            await self._execute(report, phase, approved)
            await self.drain()  # point 4

        with self._phase(report, "report") as phase:
            report.learnings = list(ctx.new_learnings)
            report.errors = [str(f) for f in self.failures]
            report.equity = self.portfolio.equity()
            report.cash = state.cash
            report.realised_pnl = sum(t.pnl for t in state.trades)
            report.open_positions = len(state.positions)
            await self.hooks.notify("gobot_report", ctx=ctx, report=report)
            phase.records.append(
                f"equity {money(report.equity, ctx.currency)}, {report.open_positions} open, "
                f"{len(state.trades)} closed trades, {len(report.errors)} plugin errors"
            )

        next_clock = self.clock.now() + timedelta(seconds=self.settings.orchestrator.loop_interval)
        summary.remember_cycle(state, report, (time.perf_counter() - cycle_started) * 1000,
                               next_clock if self.clock.simulated else None)  # the clock moves after on_cycle_end
        self.audit("cycle_completed", equity=report.equity, open_positions=report.open_positions,
                   closed_trades=len(state.trades), vetoes=len(report.vetoes), orders=len(report.orders))
        kill_point(f"before_persist:{report.iteration}")
        if self.persist_cycle():
            self.requests.cycle_persisted()
        kill_point(f"after_cycle:{report.iteration}")
        if not self.clock.simulated or time.monotonic() - self._progress_at >= REPLAY_PROGRESS_SECONDS:
            await self.write_progress()
        else:
            self.progress_behind = True  # a later cycle, or the run's end (Runner), writes it
        self.counters.cycle_done(report, state.cycles[-1].duration_ms)
        await self.hooks.notify("gobot_on_cycle_end", ctx=ctx, report=report)
        await self.drain()  # point 5
        self.clock.advance(self.settings.orchestrator.loop_interval)
        return report

    async def _scan(self, phase: PhaseRecord) -> list[MarketSnapshot]:
        by_symbol: dict[str, MarketSnapshot] = {}
        for plugin, answer in await self.hooks.collect("gobot_scan_market", ctx=self.ctx):
            for snap in answer:
                if not (math.isfinite(snap.price) and snap.price > 0):  # bad data from the exchange: never trade on it
                    phase.records.append(f"{snap.symbol}: price {snap.price!r} from {plugin} is not a positive "
                                         "number — ignored")
                    continue
                if snap.symbol not in by_symbol:
                    by_symbol[snap.symbol] = snap.model_copy(
                        update={"source": plugin, "sentiment": dict(snap.sentiment)})
        snapshots = [by_symbol[s] for s in self.settings.trading.symbols if s in by_symbol]
        for snap in snapshots:
            phase.records.append(f"{snap.symbol} {snap.price:.6g} ({snap.source}, {len(snap.candles)} candles)")
        missing = [s for s in self.settings.trading.symbols if s not in by_symbol]
        if missing:
            phase.records.append(f"no market data for {', '.join(missing)}")
        self.ctx.snapshots = snapshots
        self.portfolio.mark({snap.symbol: snap.price for snap in snapshots})
        if snapshots:
            await self._sentiment(phase, snapshots)
        return snapshots

    async def _sentiment(self, phase: PhaseRecord, snapshots: list[MarketSnapshot]) -> None:
        """``gobot_scan_sentiment``: every plugin's readings, attached to the snapshots they concern."""
        readings = []
        for plugin, answer in await self.hooks.collect("gobot_scan_sentiment", ctx=self.ctx, snapshots=snapshots):
            readings.extend(r.model_copy(update={"source": r.source or plugin}) for r in answer
                            if isinstance(r, Sentiment))
        if readings:
            from gobot_hookspecs.sentiment import attach

            phase.records.extend(attach(snapshots, readings, self.ctx.now()))

    async def _daily_summary(self, day: str) -> None:
        """The ``daily_summary`` alert of the day before ``day``, with the plugins' lines (``gobot_daily_summary``)."""
        daily = summary.daily_summary(self.state, day, self.ctx.currency)
        if daily is None:
            return
        answers = await self.hooks.collect("gobot_daily_summary", ctx=self.ctx, day=daily.data["day"])
        lines = [(plugin, str(line)) for plugin, line in answers if line]
        if lines:
            daily = daily.model_copy(update={
                "text": daily.text + "".join(f"\n{line}" for _, line in lines),
                "data": {**daily.data, "lines": [{"plugin": plugin, "text": line} for plugin, line in lines]}})
        self.ctx.alert(daily)

    async def _sync_executions(self, report: CycleReport, phase: PhaseRecord, snapshots: list[MarketSnapshot]) -> None:
        booked: list[Fill | Funding] = []
        for plugin, answer in await self.hooks.collect("gobot_sync_executions", ctx=self.ctx, snapshots=snapshots):
            booked.extend(item for item in answer if isinstance(item, (Fill, Funding)))
            for order in (item for item in answer if isinstance(item, Order)):
                await self._order_ended(phase, order.model_copy(update={"executor": plugin}))
        for item in sorted(booked, key=lambda f: f.time):  # a payment before a close goes into its trade
            if isinstance(item, Funding):
                self._book_funding(phase, item)
                continue
            await self.apply_fill(report, item)
            phase.records.append(f"fill {item.side.value} {item.amount:.6g} {item.symbol} @ {item.price:.6g} "
                                 f"({item.reason})")
        if not any(isinstance(item, Fill) for item in booked):
            phase.records.append("no fills since the last cycle")

    def _book_funding(self, phase: PhaseRecord, funding: Funding) -> None:
        """A funding payment, booked once by its id (see ``gobot_sync_executions``)."""
        new, position = self.portfolio.apply_funding(funding)
        if not new:
            return
        held = "no open position: booked to cash alone" if position is None else \
            f"position funding now {position.funding:+.8g}"
        self.audit("funding", funding=funding, position=None if position is None else position.client_order_id,
                   note=held)
        phase.records.append(f"funding {funding.amount:+.8g} {quote_of(funding.symbol)} on {funding.symbol} "
                             f"({held})")

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
        self.audit("fill", fill=fill, event_id=event_id("fill", fill, FILL_ID_FIELDS))  # once, also when re-run
        kill_point(f"before_archive_fill:{self.ctx.iteration}")  # a fill known, its archive write not yet made
        await self.hooks.notify("gobot_on_fill", ctx=self.ctx, fill=fill)
        if fill.purpose == "open" and trade is None:
            self.ctx.alert(
                Alert(
                    kind="trade_opened",
                    title=f"Opened {'long' if fill.side is Side.BUY else 'short'} {fill.symbol} @ {fill.price:.6g}",
                    text=f"amount {fill.amount:.6g}, fee {money(fill.fee, quote_of(fill.symbol))}",  # as charged
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
                    title=f"Closed {trade.direction.value.lower()} {trade.symbol}: "
                          f"P&L {money(trade.pnl, self.ctx.currency, True)}",
                    text=f"{trade.entry_price:.6g} -> {trade.exit_price:.6g} ({trade.exit_reason})",
                    data={"symbol": trade.symbol, "pnl": trade.pnl, "exit_reason": trade.exit_reason},
                )
            )
        return trade

    async def _ideas(self, phase: PhaseRecord, snapshots: list[MarketSnapshot]) -> list[Signal]:
        iteration = self.ctx.iteration
        earlier = [item for item in self.state.learnings if item.iteration < iteration]
        learnings = earlier[-LEARNINGS_HANDED_OVER:]
        handed = ", ".join(item.id for item in learnings) or "-"
        phase.records.append(f"{len(learnings)} learnings handed over: {handed}")
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

    def _intent(self, symbol: str, side: Side, purpose: str, notional: float, price: float,
                signal: Signal | None) -> OrderIntent:
        """An exit's intent: ``notional`` in the symbol's quote (the position's), shown in the portfolio
        currency when a rate is known; the amount is the position's either way, so an exit never waits."""
        trading = self.settings.trading
        try:
            quote_rate = self.portfolio.rate(symbol)
        except LookupError:
            quote_rate = 1.0
        return order_intent(self.ctx, symbol, side, purpose, notional * quote_rate, price, signal,
                            id_prefix=LIVE_ID_PREFIX, created_at=self.clock.now(), quote_rate=quote_rate,
                            stop_loss_percent=trading.stop_loss_percent,
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
            if (blocked := self.versions.entry_block(signal)) is not None:  # [strategy_versions] on_active_failure
                phase.records.append(f"{signal.symbol}: no new position — {blocked}")
                continue
            try:
                quote_rate = self.portfolio.rate(signal.symbol)
            except LookupError as exc:  # a size in the portfolio currency needs the rate: never a guessed one
                phase.records.append(f"{signal.symbol}: no trade, {exc}")
                continue
            decision = await self._decide_entry(signal, price, quote_rate)
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
            phase.records.append(f"{intent.symbol} {intent.side.value} {money(decision.notional, self.ctx.currency)} "
                                 f"approved by {len(decision.verdicts)} risk checks")
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

    async def _decide_entry(self, signal: Signal, price: float, quote_rate: float = 1.0) -> EntryDecision:
        """The entry decision (``gobot.host.entry``): sized, an intent, judged by every risk plugin, audited."""
        trading = self.settings.trading
        return await decide_entry(self.hooks, self.ctx, signal, price, id_prefix=LIVE_ID_PREFIX,
                                  created_at=self.clock.now(), stop_loss_percent=trading.stop_loss_percent,
                                  take_profit_percent=trading.take_profit_percent, quote_rate=quote_rate)

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
            intents = await confirm_first(self, report, phase, [i for i in intents if self._may_send(phase, i)])
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
        if intent.purpose == "open" and self.disk.trouble is not None:
            phase.records.append(f"{intent.symbol}: disk full ({self.disk.trouble['error']}), no new positions")
            return False
        return True

    async def _send(self, report: CycleReport, phase: PhaseRecord, intent: OrderIntent) -> None:
        self.state.intents[intent.client_order_id] = intent
        try:
            answer = await self.hooks.first("gobot_execute_order", ctx=self.ctx, intent=intent)
            if answer is None:
                raise PluginError("core", "no enabled executor answered", hook="gobot_execute_order")
        except PluginError as exc:
            error = ExecutionError(message=str(exc), kind="error", symbol=intent.symbol, intent_id=intent.id,
                                   plugin=exc.plugin)
            if isinstance(exc.__cause__, ExecutionFailed):  # the executor said what kind of failure it was
                error = exc.__cause__.error.model_copy(update={"plugin": exc.plugin})
                error = error.model_copy(update={"symbol": error.symbol or intent.symbol,
                                                 "intent_id": error.intent_id or intent.id})
            unknown = error.kind in ("network", "timeout")  # it may have been placed: wait for its fill or its end
            if not unknown:
                self.state.intents.pop(intent.client_order_id, None)
            await alerting.execution_error(self, error)
            phase.records.append(f"{intent.symbol}: execution error ({error.kind}) — {exc}"
                                 + (" — outcome unknown: waiting for the executor to report it" if unknown else ""))
            return
        plugin, order = answer
        order = order.model_copy(update={"executor": plugin})
        report.orders.append(order)
        self.audit("order", order=order, intent_id=intent.id)
        await self.hooks.notify("gobot_on_order", ctx=self.ctx, order=order)
        phase.records.append(f"{order.symbol}: {order.purpose} {order.side.value} {order.amount:.6g} sent to {plugin} "
                             f"({order.status})")
        if order.status not in ("filled", "rejected", "canceled"):
            self.state.open_orders[order.client_order_id] = order
        if order.status in ("rejected", "canceled"):  # ended as it was placed (e.g. expired unfilled): not waited for
            self.state.intents.pop(intent.client_order_id, None)

    def kill_switch_on(self) -> bool:
        return self.settings.orchestrator.kill_switch_enabled and self.settings.kill_switch_path.exists()

    # -- operator commands on a stopped bot (gobot kill --close-positions, gobot risk reset|status) --

    async def risk_reset(self, reason: str, source: str = "gobot risk reset") -> list[tuple[str, str]]:
        """``gobot_risk_reset`` on every plugin, audited and alerted (``gobot.run.requests``)."""
        return await self.requests.risk_reset(reason, source)

    async def open_session(self, needs: Collection[str] | None = None) -> None:
        """For operator commands on a stopped bot: start the plugins (alert channels, connections) without a run.

        ``needs`` (hook names): start only the plugins implementing one of them; an offline command
        that sends no order must open no exchange session (a live one refuses without ``--live``)."""
        self.session_plugins = None if needs is None else self.hooks.implementers(*needs)
        for impl_failure in await self.hooks.notify_plugins(self.session_plugins, "gobot_startup", ctx=self.ctx):
            raise PluginError(impl_failure.plugin, f"start-up failed: {impl_failure.error}", hook="gobot_startup")

    async def close_session(self) -> None:
        """The end of an operator session (or of a run that never started): shut down what ``open_session`` started."""
        await self.drain()  # point 6
        await self.hooks.notify_plugins(self.session_plugins, "gobot_shutdown", ctx=self.ctx)
        self.audit_log.close()

    def daily_pnl(self) -> float:
        """Equity change since the start of the day of the last cycle (UTC)."""
        return summary.daily_pnl(self.state, self.portfolio.equity(), self.clock.now())
