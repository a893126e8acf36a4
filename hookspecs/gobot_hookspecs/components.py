"""What a plugin gets from the core (``BotContext``) and the components a plugin may hand over.

These are ``typing.Protocol`` classes: implement them by shape, no base class needed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from .models import (
    Alert,
    BacktestResult,
    Candles,
    ChartImage,
    DriftMeasurement,
    ExecutionError,
    Learning,
    MarketSnapshot,
    OrderIntent,
    ParamSpec,
    Position,
    Priority,
    Signal,
    StrategyProposal,
    StrategyVersion,
    Trade,
)


@runtime_checkable
class Clock(Protocol):
    """The bot's notion of time. Replay supplies a simulated clock; live uses the wall clock."""

    simulated: bool
    end: datetime | None  # a simulated clock's last time with data; None = no end

    def now(self) -> datetime:
        """The current time (timezone-aware UTC)."""

    def advance(self, seconds: float) -> None:
        """Move a simulated clock forward; a wall clock ignores this."""


@runtime_checkable
class Strategy(Protocol):
    """A backtestable signal component, registered with ``gobot_register_strategies``.

    The same object answers in replay, paper, live and the backtester, which calls it directly
    (never through a pluggy call per candle).
    """

    name: str
    parameters: dict[str, ParamSpec]

    def signal(self, symbol: str, candles: Candles, params: dict[str, float]) -> Signal:
        """The idea for the newest candle of ``candles``, seeing nothing after it."""

    # Optional, for the backtester (see ``VectorizedStrategy``):
    #   ``vectorized(symbol, candles, params) -> dict`` — every candle's answer at once;
    #   ``long_only: bool`` — True: a SHORT only closes a long, never opens a short.


@runtime_checkable
class VectorizedStrategy(Strategy, Protocol):
    """A ``Strategy`` that can also answer for every candle at once (the backtester's fast path).

    The backtester calls ``vectorized()`` when a strategy has it, and ``signal()`` per candle
    otherwise; the two must give the same trades (``gobot.research.backtest.engine.compare_paths`` checks it).
    """

    def vectorized(self, symbol: str, candles: Candles, params: dict[str, float]) -> dict[str, Any]:
        """``signal()`` for every candle: ``candles`` holds numpy arrays (``timestamp`` int64 epoch ms,
        the prices and volume float64); return ``{"action": a, "confidence": c}`` (optionally
        ``"stop_loss"``, ``"take_profit"`` price arrays, NaN = none), arrays of ``len(candles)``, where
        ``a[i]`` is 1 (LONG), -1 (SHORT) or 0 (HOLD) as ``signal()`` would answer with the candles up
        to and including ``i`` — never looking at a later one (``gobot.research.backtest.engine.lookahead_check``)."""


class ConfigView(Protocol):
    """The validated configuration outside a running bot (``load_config`` of ``gobot_register_commands``)."""

    config: Any  # the validated core configuration, as ``ctx.config``

    def plugin_config(self, name: str) -> BaseModel | None:
        """The validated ``[plugins.<name>]`` section of an enabled plugin (None if it declares no model)."""

    def history(self, symbol: str, timeframe: str, start: datetime | None = None,
                end: datetime | None = None) -> Candles:
        """Past candles of ``symbol`` between ``start`` and ``end`` (None: all there are), oldest first,
        from the same place ``gobot backtest`` takes them (the bundled or replay data, or the
        downloaded cache). Empty ``Candles`` when there are none. For charts and reports, not trading."""


class RateLimitPolicy(Protocol):
    """Decides when an outgoing exchange request may go (returned by ``gobot_rate_limit_policy``)."""

    async def acquire(self, weight: float, priority: Priority, orders: int = 0) -> None:
        """Wait until a request of this weight and priority may be sent.

        ``orders`` is the number of new orders the request places (charged to the exchange's
        order budgets); callers pass it by keyword. May raise ``ExecutionFailed`` (kind
        ``banned`` or ``rate_limited``) instead of waiting longer than makes sense.
        """

    def on_response(self, status: int, headers: dict[str, str]) -> None:
        """Learn from the exchange's answer (used-weight headers, 429, 418)."""

    # Optional: ``set_limits(limits: list[RateLimit], scope: str) -> None``. Exchange plugins call
    # it, when the policy has it, with the budgets the exchange advertises; ``scope`` names the
    # exchange and market ("binance:spot") so bots sharing a budget store share the right ones.


class BotContext(Protocol):
    """The core, as a plugin sees it: passed to every runtime hook as ``ctx``."""

    run_id: str
    iteration: int
    live: bool
    simulated: bool  # True on a simulated (replay) clock: history from other runs replays the same market
    paused: bool
    config: Any  # the validated core configuration (``gobot.config.Settings``)
    currency: str  # the portfolio currency: capital, limits, equity and P&L are in it (``gobot_hookspecs.money``)
    snapshots: list[MarketSnapshot]  # this cycle's market scan, once it ran
    rate_limiter: RateLimitPolicy  # ask it before every exchange request (gobot_rate_limit_policy)

    def now(self) -> datetime:
        """The bot clock's time (simulated in replay)."""

    async def candles(self, symbol: str, timeframe: str, limit: int) -> Candles:
        """Closed candles up to now from the market-data plugin (``gobot_fetch_candles``).

        Raises ``LookupError`` when no plugin has them.
        """

    async def chart(self, symbol: str, timeframe: str, limit: int) -> ChartImage:
        """A PNG chart of the latest ``limit`` closed candles from a chart plugin (``gobot_render_chart``).

        Raises ``LookupError`` when no plugin drew it (none enabled, or no candles of that timeframe).
        """

    def pause(self, reason: str) -> None:
        """Stop opening positions (the loop keeps scanning and reporting) until ``unpause``."""

    def unpause(self, reason: str) -> None:
        """Allow new positions again."""

    def kill(self, reason: str) -> None:
        """Engage the kill switch: no new orders; the run ends after this cycle is persisted."""

    def close_positions(self, reason: str, symbols: list[str] | None = None) -> None:
        """Ask for open positions (all, or ``symbols``) to be closed with CRITICAL priority.

        The closes are sent in the execute phase of the current cycle (or the next one, when
        asked between cycles), even while paused or killed; they are never risk-checked.
        """

    def plugin_config(self, name: str) -> BaseModel | None:
        """The validated ``[plugins.<name>]`` section of a plugin (None if it declares no model)."""

    def plugin_state(self, name: str) -> dict[str, Any]:
        """A JSON-serialisable dict persisted with the bot's state; survives restarts.

        A dict holding ``"carry_over": True`` is also carried into the next run (after a finished
        run or ``--fresh``) when the bot runs on the wall clock: account-level state such as a
        circuit breaker's hard stop, an executor's order book must not be cleared by starting a new
        run (the core carries the open positions and working orders over too). Replays (simulated
        clock) always start empty.
        """

    def positions(self) -> dict[str, Position]:
        """Open positions by symbol."""

    def closed_trades(self) -> list[Trade]:
        """Closed trades of this run, oldest first."""

    async def trade_history(self, limit: int) -> list[Trade]:
        """Up to ``limit`` closed trades of every run, oldest first, from a trade archive (``gobot_trade_history``).

        Raises ``LookupError`` when no plugin keeps one (``closed_trades()`` has this run's).
        """

    def pending_intents(self) -> list[OrderIntent]:
        """Intents approved earlier in this cycle or sent and not yet filled, oldest first.

        A risk check counts their notional with ``exposure()``, so two orders in one cycle (or an
        order still waiting for its fill) cannot together exceed a cap that each passes alone.
        """

    def equity(self) -> float:
        """Cash plus open positions marked to the latest prices."""

    def exposure(self) -> float:
        """Total notional of open positions at the latest prices."""

    def strategy(self, name: str) -> StrategyVersion:
        """The current version of a registered strategy."""

    def strategy_history(self, name: str) -> list[StrategyVersion]:
        """Every version of a strategy, oldest first: the accepted ones (a rejected proposal gets no number)."""

    def strategy_proposals(self, name: str) -> list[StrategyProposal]:
        """The latest proposals for a strategy, oldest first, each with its verdict (accepted or rejected)."""

    def strategies(self) -> dict[str, Strategy]:
        """Registered strategy components by name."""

    def backtest(self, strategy: str, params: dict[str, float], candles: Candles, symbol: str,
                 start: datetime | None = None) -> BacktestResult:
        """Run the core's backtester on one symbol's candles with the given parameters, sized and risk-checked
        by the bot's own plugins. ``start`` (since 1.3): trade only from the candle opening at or after it;
        the candles before are history the plugins may read (a risk check's volatility), never traded."""

    def add_learning(self, learning: Learning) -> Learning:
        """Record a learning; it is persisted and handed to later cycles' idea generation."""

    def alert(self, alert: Alert) -> None:
        """Send an alert through every enabled alert channel (and the audit log)."""

    def report_execution_error(self, error: ExecutionError) -> None:
        """Emit ``gobot_on_execution_error`` for a failure seen outside ``gobot_execute_order``.

        For example a 418 ban seen while polling orders, or a protective order that could not be
        placed. Queued and delivered (audit log, event, CRITICAL alert) with the next alerts,
        at the latest right before the execute phase.
        """

    def record_drift(self, measurement: DriftMeasurement) -> None:
        """Report a trade measured against its paper twin: every plugin's ``gobot_on_drift`` gets it.

        Queued and delivered with the next alerts, like ``report_execution_error`` (a plugin never
        calls a hook itself); the archiver stores it for ``gobot report``.
        """

    def audit(self, event: str, **data: Any) -> None:
        """Append an event to the audit log (JSON lines); secrets are redacted."""
