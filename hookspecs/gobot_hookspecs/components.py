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
    Learning,
    MarketSnapshot,
    ParamSpec,
    Position,
    Priority,
    Signal,
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


class RateLimitPolicy(Protocol):
    """Decides when an outgoing exchange request may go (returned by ``gobot_rate_limit_policy``)."""

    async def acquire(self, weight: float, priority: Priority) -> None:
        """Wait until a request of this weight and priority may be sent."""

    def on_response(self, status: int, headers: dict[str, str]) -> None:
        """Learn from the exchange's answer (used-weight headers, 429, 418)."""


class BotContext(Protocol):
    """The core, as a plugin sees it: passed to every runtime hook as ``ctx``."""

    run_id: str
    iteration: int
    live: bool
    paused: bool
    config: Any  # the validated core configuration (``gobot.config.Settings``)
    snapshots: list[MarketSnapshot]  # this cycle's market scan, once it ran
    rate_limiter: RateLimitPolicy  # ask it before every exchange request (gobot_rate_limit_policy)

    def now(self) -> datetime:
        """The bot clock's time (simulated in replay)."""

    async def candles(self, symbol: str, timeframe: str, limit: int) -> Candles:
        """Closed candles up to now from the market-data plugin (``gobot_fetch_candles``).

        Raises ``LookupError`` when no plugin has them.
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
        """A JSON-serialisable dict persisted with the bot's state; survives restarts."""

    def positions(self) -> dict[str, Position]:
        """Open positions by symbol."""

    def closed_trades(self) -> list[Trade]:
        """Closed trades of this run, oldest first."""

    def equity(self) -> float:
        """Cash plus open positions marked to the latest prices."""

    def exposure(self) -> float:
        """Total notional of open positions at the latest prices."""

    def strategy(self, name: str) -> StrategyVersion:
        """The current version of a registered strategy."""

    def strategy_history(self, name: str) -> list[StrategyVersion]:
        """Every version of a strategy, oldest first, rejected candidates included (see ``strategy``)."""

    def strategies(self) -> dict[str, Strategy]:
        """Registered strategy components by name."""

    def backtest(self, strategy: str, params: dict[str, float], candles: Candles, symbol: str) -> BacktestResult:
        """Run the core's backtester on one symbol's candles with the given parameters."""

    def add_learning(self, learning: Learning) -> Learning:
        """Record a learning; it is persisted and handed to later cycles' idea generation."""

    def alert(self, alert: Alert) -> None:
        """Send an alert through every enabled alert channel (and the audit log)."""

    def audit(self, event: str, **data: Any) -> None:
        """Append an event to the audit log (JSON lines); secrets are redacted."""
