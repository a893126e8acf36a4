"""``Context``: the core's implementation of ``gobot_hookspecs.BotContext``, handed to every hook as ``ctx``."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Callable

from pydantic import BaseModel

from gobot.errors import PluginError
from gobot.run import RunningBot
from gobot_hookspecs import (
    Alert,
    BacktestResult,
    Candles,
    ChartImage,
    DriftMeasurement,
    ExecutionError,
    Learning,
    MarketSnapshot,
    OrderIntent,
    Position,
    RateLimitPolicy,
    Severity,
    Strategy,
    StrategyProposal,
    StrategyVersion,
    Trade,
)


def _off_the_loop(work: Callable[[], Any]) -> Any:
    """``work()``, with the cycle's event loop set aside while it runs: the backtest's gate drives async risk
    plugins with a loop of its own, which asyncio refuses to run while this thread's loop counts as running.
    The cycle waits for it either way; a thread per backtest cost ~0.3 ms a cycle in the replay loop."""
    outer = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        return work()
    finally:
        asyncio._set_running_loop(outer)


class Context:
    """A plugin's window on the running bot. Plugins import nothing else of the core."""

    def __init__(self, bot: RunningBot):
        self._bot = bot
        self.live = bot.live
        self.paused = False
        self.snapshots: list[MarketSnapshot] = []
        # Queued here, delivered by the bot's one drain (gobot.run.alerting.drain): errors, drift measurements, alerts.
        self.pending_alerts: list[Alert] = []
        self.pending_execution_errors: list[ExecutionError] = []  # ctx.report_execution_error
        self.pending_drift: list[DriftMeasurement] = []  # ctx.record_drift: gobot_on_drift, with the alerts
        self.new_learnings: list[Learning] = []
        self.rate_limiter: RateLimitPolicy | None = None  # set by the bot once plugins are loaded
        self._backtests: Any = None  # the BacktestSetup of ctx.backtest, made by its first call

    @property
    def config(self) -> Any:
        return self._bot.settings

    @property
    def currency(self) -> str:
        """The portfolio currency (``[trading] currency``, else the symbols' one quote)."""
        return self._bot.settings.trading.portfolio_currency

    @property
    def simulated(self) -> bool:
        return bool(getattr(self._bot.clock, "simulated", False))

    @property
    def run_id(self) -> str:
        return self._bot.state.run_id

    @property
    def iteration(self) -> int:
        """The number of the cycle running now (1-based); during ``gobot_on_cycle_end``, the one that ended."""
        return self._bot.cycle_number

    def now(self) -> datetime:
        return self._bot.clock.now()

    async def candles(self, symbol: str, timeframe: str, limit: int) -> Candles:
        answer = await self._bot.hooks.first("gobot_fetch_candles", ctx=self, symbol=symbol, timeframe=timeframe,
                                             limit=limit)
        if answer is None:
            raise LookupError(f"no market-data plugin has {timeframe} candles for {symbol}")
        return answer[1]

    async def chart(self, symbol: str, timeframe: str, limit: int) -> ChartImage:
        answer = await self._bot.hooks.first("gobot_render_chart", ctx=self, symbol=symbol, timeframe=timeframe,
                                             limit=limit)
        if answer is None:
            raise LookupError(f"no {timeframe} chart of {symbol}: no chart plugin answered "
                              f"(is `charts` enabled, with {timeframe} candles?)")
        plugin, image = answer
        if not isinstance(image, ChartImage):
            raise PluginError(plugin, f"returned {type(image).__name__}, expected ChartImage or None",
                              hook="gobot_render_chart")
        return image.model_copy(update={"source": plugin})

    def pause(self, reason: str) -> None:
        self._bot.store.set_paused(True)
        self.paused = True
        self.audit("paused", reason=reason)
        self.alert(Alert(kind="paused", title="Paused: no new positions", text=reason, severity=Severity.WARNING))

    def unpause(self, reason: str) -> None:
        self._bot.store.set_paused(False)
        self.paused = False
        self.audit("unpaused", reason=reason)
        self.alert(Alert(kind="unpaused", title="Unpaused: new positions allowed", text=reason))

    def kill(self, reason: str) -> None:
        from gobot.run.state import write_control_file

        write_control_file(self._bot.settings.kill_switch_path, f"{reason}\n")  # owner-only, like the rest of the state
        self.audit("kill_switch", reason=reason)

    def close_positions(self, reason: str, symbols: list[str] | None = None) -> None:
        self._bot.close_requests.append((reason, list(symbols) if symbols is not None else None))
        self.audit("close_requested", reason=reason, symbols=symbols)

    def plugin_config(self, name: str) -> BaseModel | None:
        return self._bot.plugin_configs.get(name)

    def history(self, symbol: str, timeframe: str, start: datetime | None = None,
                end: datetime | None = None) -> Candles:
        """``ConfigView.history``: past candles as ``gobot backtest`` finds them (for charts and reports)."""
        from gobot.research.backtest.history import history

        return history(self.config, symbol, timeframe, start, end, replay_config=self.plugin_config("replay"))

    def plugin_state(self, name: str) -> dict[str, Any]:
        return self._bot.state.plugin_state.setdefault(name, {})

    def positions(self) -> dict[str, Position]:
        return dict(self._bot.state.positions)

    def closed_trades(self) -> list[Trade]:
        return list(self._bot.state.trades)

    async def trade_history(self, limit: int) -> list[Trade]:
        answer = await self._bot.hooks.first("gobot_trade_history", ctx=self, limit=limit)
        if answer is None:
            raise LookupError("no plugin keeps a trade archive (gobot_trade_history)")
        return list(answer[1])[-limit:]

    def pending_intents(self) -> list[OrderIntent]:
        sent = list(self._bot.state.intents.values())
        return sent + [i for i in self._bot.cycle_approved if i.client_order_id not in self._bot.state.intents]

    def equity(self) -> float:
        return self._bot.portfolio.equity()

    def exposure(self) -> float:
        """Total notional of open positions at the latest prices."""
        return self._bot.portfolio.exposure()

    def strategy(self, name: str) -> StrategyVersion:
        return self._bot.state.strategies[name]

    def strategy_history(self, name: str) -> list[StrategyVersion]:
        return [v for v in self._bot.state.strategy_history if v.name == name]

    def strategies(self) -> dict[str, Strategy]:
        return dict(self._bot.strategies)

    def strategy_proposals(self, name: str) -> list[StrategyProposal]:
        return [p for p in self._bot.state.proposals if p.strategy == name]

    def backtest(self, strategy: str, params: dict[str, float], candles: Candles, symbol: str,
                 start: datetime | None = None) -> BacktestResult:
        """A backtest as the bot would trade it: the fills of ``gobot backtest`` (``[backtest]``, else the
        paper executor's fee and slippage) and every entry sized and judged by the bot's own sizing and risk
        plugins (``PluginGate``: the entry decision of live), from ``[trading] initial_capital_usd``.
        ``start``: trade from there; the candles before it are the plugins' history only."""
        # numpy is imported by the first backtest, not at start-up
        from gobot.host.hook_caller import HookCaller
        from gobot.research.backtest.engine import Sizing, run
        from gobot.research.backtest.setup import BacktestSetup
        from gobot.research.market_data import series_from_candles

        bot = self._bot
        if self._backtests is None:  # its own caller: a plugin failing inside a backtest is not the cycle's failure
            self._backtests = BacktestSetup(bot.settings, bot.plugin_set, HookCaller(bot.plugin_set.pm),
                                            bot.plugin_configs, bot.strategies)
        setup, component = self._backtests, bot.strategies[strategy]
        execution = setup.execution(sizing=Sizing("plugins"), risk="plugins",
                                    start_equity=bot.settings.trading.initial_capital_usd)
        series = series_from_candles(symbol, candles)
        if len(series) == 0:
            return BacktestResult(trades=[], start_equity=execution.start_equity, end_equity=execution.start_equity,
                                  candles=0)
        start_ms = None if start is None else int(start.timestamp() * 1000)
        tested = len(series) if start_ms is None else int((series.timestamp >= start_ms).sum())
        gate = setup.gate(execution, component, StrategyVersion(name=strategy, params=dict(params)))
        try:
            result = _off_the_loop(lambda: run(component, params, [series], execution, gate=gate, start_ms=start_ms))
        finally:
            gate.close()
        return BacktestResult(trades=[t.to_trade() for t in result.trades], start_equity=execution.start_equity,
                              end_equity=result.end_equity, candles=tested)

    def add_learning(self, learning: Learning) -> Learning:
        number = len(self.new_learnings) + 1
        learning = learning.model_copy(
            update={
                "id": learning.id or f"L{self.iteration}-{number}",
                "iteration": self.iteration,
                "created_at": learning.created_at or self.now(),
            }
        )
        self.new_learnings.append(learning)
        self.audit("learning", learning=learning)
        return learning

    def alert(self, alert: Alert) -> None:
        if alert.time is None:
            alert = alert.model_copy(update={"time": self.now()})
        self.pending_alerts.append(alert)

    def report_execution_error(self, error: ExecutionError) -> None:
        self.pending_execution_errors.append(error)

    def record_drift(self, measurement: DriftMeasurement) -> None:
        self.pending_drift.append(measurement)

    def audit(self, event: str, **data: Any) -> None:
        self._bot.audit(event, **data)


class CommandContext:
    """A reduced ``ctx`` for hooks called by CLI commands outside a run (``gobot_download_candles``).

    ``config``, ``plugin_config``, ``rate_limiter``, ``now`` (the wall clock), ``live`` (False) and
    ``plugin_state`` (a dict that is not persisted) work; alerts and execution errors are handed to
    ``report`` (the command prints them) and the audit log is not written.
    """

    live = False
    paused = False
    iteration = 0
    run_id = "command"

    def __init__(self, settings: Any, plugin_configs: dict[str, BaseModel], report: Any = print):
        self.config = settings
        self.currency = settings.trading.portfolio_currency
        self._plugin_configs = plugin_configs
        self._state: dict[str, dict[str, Any]] = {}
        self._report = report
        self.snapshots: list[MarketSnapshot] = []
        self.rate_limiter: RateLimitPolicy | None = None

    def now(self) -> datetime:
        from datetime import timezone

        return datetime.now(timezone.utc)

    def plugin_config(self, name: str) -> BaseModel | None:
        return self._plugin_configs.get(name)

    def plugin_state(self, name: str) -> dict[str, Any]:
        return self._state.setdefault(name, {})

    def alert(self, alert: Alert) -> None:
        self._report(f"{alert.severity.value}: {alert.title}" + (f" — {alert.text}" if alert.text else ""))

    def report_execution_error(self, error: ExecutionError) -> None:
        self._report(f"CRITICAL: {error.kind}: {error.message}")

    def audit(self, event: str, **data: Any) -> None:
        return None
