"""Sizing and risk plugins inside a backtest: ``PluginGate`` asks the enabled sizer
(``gobot_size_position``) and every risk plugin (``gobot_risk_check``) at each entry decision —
the moments a live cycle would ask them — never per candle, with a ``BacktestContext`` that shows
them the simulated account at that moment.

What plugins see through ``ctx`` in a backtest: the configuration and their own config section;
``ctx.now()`` = the decision candle's close; ``equity()``, ``exposure()``, ``positions()`` and
``closed_trades()`` of the simulated portfolio; ``snapshots`` = each symbol's last 200 candles,
with the recorded sentiment of the candle folders as of ``now()`` (``backtest.sentiment``);
``plugin_state()`` = an in-memory dict that lives for the backtest only. No events are emitted
and nothing is persisted or sent: ``alert()``, ``audit()``, ``add_learning()``, ``pause()``,
``kill()`` and ``close_positions()`` are recorded and otherwise ignored, so a plugin that counts
events (a circuit breaker) sees an empty history.
"""

from __future__ import annotations

import asyncio
import inspect
from bisect import bisect_right
from datetime import datetime, timezone
from typing import Any

from gobot.host.entry import BACKTEST_ID_PREFIX, EntryDecision, decide_entry
from gobot.host.hook_caller import HookCaller, HookFailure
from gobot.host.rate_limit import NoWaitPolicy
from gobot.research.backtest.engine import ALL_IN, Book, EntryRequest, Sizing
from gobot.research.backtest.sentiment import attach_as_of, folders_of, recorded_in
from gobot_hookspecs import (
    Action,
    Candles,
    MarketSnapshot,
    OrderIntent,
    Position,
    Signal,
    Strategy,
    StrategyVersion,
    Trade,
)

SNAPSHOT_CANDLES = 200
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


class BacktestContext:
    """``gobot_hookspecs.BotContext`` for plugins called during a backtest (see the module docstring)."""

    live = False
    paused = False
    simulated = True  # a backtest's clock is the candles'
    iteration = 0

    def __init__(self, settings: Any, plugin_configs: dict, strategies: dict[str, Strategy], version: StrategyVersion):
        self.config = settings
        self.run_id = "backtest"
        self.rate_limiter = NoWaitPolicy()
        self.snapshots: list[MarketSnapshot] = []
        self.alerts: list[Any] = []
        self.requests: list[tuple[str, str]] = []  # pause/kill/close asked by plugins: (what, reason)
        self._configs = plugin_configs
        self._strategies = strategies
        self._version = version
        self._states: dict[str, dict[str, Any]] = {}
        self._book: Book | None = None
        self._at_ms = 0
        self._trades: list[Trade] = []
        self._resampled: dict[tuple[str, str], dict] = {}
        self._windows: dict[tuple[str, str, int], tuple[int, int, Candles]] = {}  # the last ctx.candles answers
        self._lists: dict[int, tuple[Any, dict[str, list]]] = {}  # id(series) -> (it, its columns as lists)
        self._sources: dict[tuple[str, str], tuple[Any, tuple | None]] = {}  # (symbol, timeframe) -> (book, source)
        self._sentiment: tuple[Any, list] = (None, [])  # (book, its folders' recorded sentiment sources)

    def moment(self, book: Book, request: EntryRequest) -> None:
        """Point the context at one decision: the account and the candles at that bar's close."""
        self._book, self._at_ms = book, request.time_ms
        self._now = _utc(request.time_ms + book.series[0].step_ms)  # plugins ask several times a decision
        self.iteration = request.bar
        snapshots = []
        for series in book.series:
            known = self._lists.get(id(series))
            if known is None or known[0] is not series:  # once a backtest: sliced at every decision
                known = self._lists[id(series)] = (series, {name: getattr(series, name).tolist() for name in COLUMNS})
            columns = known[1]
            end = bisect_right(columns["timestamp"], request.time_ms)  # a list's bisect: no numpy call per decision
            if end == 0:
                continue
            start = max(0, end - SNAPSHOT_CANDLES)
            candles = Candles.model_construct(timeframe=series.timeframe, **{
                name: columns[name][start:end] for name in COLUMNS})
            snapshots.append(MarketSnapshot.model_construct(
                symbol=series.symbol, time=_utc(request.close_ms), price=float(series.close[end - 1]), candles=candles,
                bid=None, ask=None, volume_24h=None, source="backtest", missing=[], sentiment={},  # all fields:
                # model_construct calls a default factory through a signature inspection, a cost per decision
                extras={"data": "backtest",
                        **({"min_notional": series.market.min_notional} if series.market.min_notional else {})}))
        self.snapshots = snapshots
        if self._sentiment[0] is not book:  # once a backtest: are there recorded readings beside the candles?
            self._sentiment = (book, recorded_in(folders_of(book.series, self.config, self._configs.get("replay"))))
        if self._sentiment[1]:
            attach_as_of(self._sentiment[1], snapshots, self._now)

    @property
    def currency(self) -> str:
        """The tested symbols' one quote (``BacktestSetup.series`` refuses several)."""
        from gobot_hookspecs.money import quote_of

        return quote_of(self._book.series[0].symbol) if self._book else self.config.trading.portfolio_currency

    def now(self) -> datetime:
        return self._now if self._book else _utc(self._at_ms)

    async def candles(self, symbol: str, timeframe: str, limit: int) -> Candles:
        """Closed candles up to the decision: the series' own, or coarser ones resampled from it."""
        known = self._sources.get((symbol, timeframe))
        if known is None or known[0] is not self._book:  # found once a backtest, asked at every decision
            known = self._sources[(symbol, timeframe)] = (self._book, self._source(symbol, timeframe))
        if known[1] is None:
            raise LookupError(f"no {timeframe} candles for {symbol} in this backtest")
        series, columns, step, times = known[1]
        now = self._at_ms + series.step_ms  # the decision candle's close
        end = bisect_right(times, now - step)  # candles that closed by now
        start = max(0, end - limit)
        window = self._windows.get((symbol, timeframe, limit))
        if window is None or window[:2] != (start, end):  # the decisions within one coarser candle share it
            window = (start, end, Candles.model_construct(  # our own columns: valid, and validating costs
                timeframe=timeframe, **{name: columns[name][start:end].tolist() for name in COLUMNS}))
            self._windows[(symbol, timeframe, limit)] = window
        return window[2]

    def _source(self, symbol: str, timeframe: str) -> tuple[Any, dict, int, list] | None:
        """The series of ``symbol``, its columns in ``timeframe`` (resampled when coarser), their step in ms and
        timestamps as a list; None when the backtest has no such candles."""
        from gobot.research.market_data import TIMEFRAMES, resample
        from gobot_hookspecs.candles import can_resample

        for series in self._book.series if self._book else []:
            if series.symbol != symbol:
                continue
            if timeframe == series.timeframe:
                columns, step = {name: getattr(series, name) for name in COLUMNS}, series.step_ms
            elif can_resample(series.timeframe, timeframe):  # weeks and months do not align with epoch buckets
                step = TIMEFRAMES[timeframe] * 1000
                key = (symbol, timeframe)
                if key not in self._resampled:  # once per backtest; only closed buckets are handed out
                    self._resampled[key] = resample({name: getattr(series, name) for name in COLUMNS}, step)
                columns = self._resampled[key]
            else:
                return None
            return series, columns, step, columns["timestamp"].tolist()
        return None

    async def chart(self, symbol: str, timeframe: str, limit: int):
        raise LookupError("no charts in a backtest")

    def pause(self, reason: str) -> None:
        self.requests.append(("pause", reason))

    def unpause(self, reason: str) -> None:
        self.requests.append(("unpause", reason))

    def kill(self, reason: str) -> None:
        self.requests.append(("kill", reason))

    def close_positions(self, reason: str, symbols: list[str] | None = None) -> None:
        self.requests.append(("close_positions", reason))

    def plugin_config(self, name: str):
        return self._configs.get(name)

    def plugin_state(self, name: str) -> dict[str, Any]:
        return self._states.setdefault(name, {})

    def positions(self) -> dict[str, Position]:
        if self._book is None:
            return {}
        return {pos.symbol: Position(symbol=pos.symbol, direction=Action.LONG if pos.direction > 0 else Action.SHORT,
                                     amount=pos.amount, entry_price=pos.entry_price, entry_fee=pos.entry_fee,
                                     opened_at=_utc(pos.entry_ms), stop_loss=pos.stop_loss, take_profit=pos.take_profit,
                                     confidence=pos.confidence, strategy=self._version.name,
                                     strategy_version=self._version.version)
                for pos in self._book.positions.values()}

    def closed_trades(self) -> list[Trade]:
        if self._book is None:
            return []
        records = self._book.trades
        self._trades.extend(record.to_trade() for record in records[len(self._trades) :])
        return list(self._trades)

    def pending_intents(self) -> list[OrderIntent]:
        return []

    def equity(self) -> float:
        return self._book.equity(self._at_ms) if self._book else 0.0

    def exposure(self) -> float:
        return self._book.exposure(self._at_ms) if self._book else 0.0

    def strategy(self, name: str) -> StrategyVersion:
        if name == self._version.name:
            return self._version
        strategy = self._strategies[name]
        return StrategyVersion(name=name, params={k: spec.default for k, spec in strategy.parameters.items()})

    def strategy_history(self, name: str) -> list[StrategyVersion]:
        return [self.strategy(name)]

    def strategy_proposals(self, name: str) -> list:
        return []

    def strategies(self) -> dict[str, Strategy]:
        return dict(self._strategies)

    def backtest(self, *args: Any, **kwargs: Any):
        raise RuntimeError("ctx.backtest() is not available inside a backtest")

    def add_learning(self, learning):
        return learning

    def alert(self, alert) -> None:
        self.alerts.append(alert)

    def report_execution_error(self, error) -> None:
        return None

    def audit(self, event: str, **data: Any) -> None:
        return None


def _drive(coroutine, loop: asyncio.AbstractEventLoop | None):
    """Run a hook call: without an event loop when every implementation is a plain function. With async ones,
    the call runs here with ``loop`` as the running loop until it first waits (most never do: ``ctx.candles``
    answers at once), and the loop finishes it from there: no loop iterations (two polls) per decision."""
    if loop is None:
        try:
            coroutine.send(None)
        except StopIteration as done:
            return done.value
        coroutine.close()
        raise RuntimeError("a plain-function hook call suspended")
    asyncio._set_running_loop(loop)
    try:
        waiting = coroutine.send(None)
    except StopIteration as done:
        return done.value
    finally:
        asyncio._set_running_loop(None)
    return loop.run_until_complete(_resume(coroutine, waiting))


async def _resume(coroutine, waiting):
    """The rest of a call that waited on ``waiting`` (a future, or None for a bare yield), as a task runs it."""
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)
                waiting = coroutine.send(None)
            elif not asyncio.isfuture(waiting):  # as a task answers a bad yield: an error inside the call
                waiting = coroutine.throw(RuntimeError(f"a hook call yielded {waiting!r}, not a future"))
            else:
                waiting._asyncio_future_blocking = False  # what a task does with a future its coroutine yields
                await asyncio.wait([waiting])
                waiting = coroutine.send(None)
        except StopIteration as done:
            return done.value


class PluginGate:
    """The entry decision of live (``gobot.host.entry.decide_entry``): the sizer plugin, or the
    backtest's own sizing, then every risk plugin (fail closed) unless risk is off."""

    def __init__(self, hooks: HookCaller, ctx: BacktestContext, sizing: Sizing, risk: str, strategy: str,
                 version: int = 1, *, stop_loss_percent: float | None = None, take_profit_percent: float | None = None):
        self.hooks, self.ctx, self.sizing, self.risk = hooks, ctx, sizing, risk
        self.strategy, self.version = strategy, version
        self.stop_loss_percent, self.take_profit_percent = stop_loss_percent, take_profit_percent
        self.failures: list[HookFailure] = []
        self.calls = 0
        # (symbol, decision bar) -> the decision, for trade stories; None: nothing kept (see ``keep_decisions``)
        self.decisions: dict[tuple[str, int], EntryDecision] | None = None
        asynchronous = any(inspect.iscoroutinefunction(impl.function)
                           for hook in ("gobot_size_position", "gobot_risk_check")
                           for impl in getattr(hooks.pm.hook, hook).get_hookimpls())
        self._loop = asyncio.new_event_loop() if asynchronous else None

    def keep_decisions(self) -> PluginGate:
        """Keep every entry decision (its sizing and risk verdicts) for ``stories.trade_stories``."""
        self.decisions = {}
        return self

    def sizers(self) -> list[str]:
        """The plugins that answer ``gobot_size_position``, the first asked first."""
        return [impl.plugin_name for impl in reversed(self.hooks.pm.hook.gobot_size_position.get_hookimpls())]

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()

    def decide(self, request: EntryRequest, book: Book) -> tuple[float | None, list[str]]:
        self.calls += 1
        self.ctx.moment(book, request)
        action = Action.LONG if request.direction > 0 else Action.SHORT
        signal = Signal(symbol=request.symbol, action=action, confidence=min(1.0, max(0.0, request.confidence)),
                        entry=request.price, stop_loss=request.stop_loss, take_profit=request.take_profit,
                        strategy=self.strategy, strategy_version=self.version, source="backtest")
        notional: float | None = None  # the sizer plugins choose
        if self.sizing.kind == "all_in":
            notional = ALL_IN
        elif self.sizing.kind == "fixed":
            notional = self.sizing.value
        elif self.sizing.kind != "plugins":
            notional = book.equity(request.time_ms) * self.sizing.value / 100.0
        # The risk plugins see what all-in means now: the available margin.
        shown = book.available(request.time_ms) if notional == ALL_IN else notional
        decision = _drive(decide_entry(
            self.hooks, self.ctx, signal, request.price, id_prefix=BACKTEST_ID_PREFIX,
            created_at=_utc(request.close_ms), stop_loss_percent=self.stop_loss_percent,
            take_profit_percent=self.take_profit_percent, notional=shown, check_risk=self.risk == "plugins"),
            self._loop)
        if self.decisions is not None:
            self.decisions[(request.symbol, request.bar)] = decision
        if not decision.approved:
            if decision.sizing_error is not None:
                self.failures.append(decision.sizing_failure())
            return None, decision.reasons
        return (ALL_IN if notional == ALL_IN else decision.notional), []
