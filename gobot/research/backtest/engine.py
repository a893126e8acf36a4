"""The backtester: a strategy component over candles of one or several symbols, as one portfolio.

Two stages. **Signals**: the strategy's ``vectorized()`` method when it has one (whole numpy
columns in, an action per bar out), else its ``signal()`` called directly for every bar with the
candles up to that bar (never a pluggy call per candle). Both give an action, a confidence and
optional stop/target prices per bar; a strategy's two paths must agree (``compare_paths``).
**Simulation**: one event loop over the symbols' bars in time order, sharing one cash balance,
with the paper executor's rules, whose fill prices and fees both take from the contract's
``gobot_hookspecs.fills`` (``docs/backtesting.md`` states them all; ``tests/test_fill_model.py``
holds the two to the same trades):

- a decision at a bar's close fills at the next bar's open (``fill = "next_open"``, the default)
  or at that close (``fill = "close"``); market fills move against you by the slippage, and each
  fill pays the fee on its notional;
- stop-loss and take-profit (from the signal, else ``[trading]``'s percentages of the decision
  close, like a live intent) rest like exchange orders and are checked inside every later candle,
  the entry candle included; when one candle touches both, the stop counts; a candle that opens
  beyond the stop fills at its open; a take-profit fills at its price;
- an opposite signal exits at the next fill (it does not reverse in the same step); a signal in
  the direction already held is ignored; a pending order blocks the symbol's next decision;
- sizing and risk are asked only at entry decisions (``Gate``), never per candle;
- an open position at the end is marked to the last close, with no exit fee.

Idle stretches between events are skipped with numpy searches, so the cost grows with the
number of trades, not of candles. Trades are light records; ``Trade`` models are built on demand.
One series without sizing or risk plugins (``SimpleGate``) needs no event queue: each event
schedules the next, so ``_one_series`` walks the trades as one chain and computes prices, fees and
the equity curve per column, with the same float operations (``tests/test_backtest_chain.py``).
"""

from __future__ import annotations

import bisect
import gc
import heapq
import itertools
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from gobot.errors import GobotError
from gobot.research.market_data import COLUMNS, MarketRules, Series, series_from_candles
from gobot_hookspecs import Action, BacktestResult, Candles, Position, Strategy, Trade
from gobot_hookspecs.fills import Exit, market_price, protective_levels, resting_exit
from gobot_hookspecs.fills import fee as fill_fee

SECONDS_PER_YEAR = 365 * 24 * 3600.0
PROGRESS_EVERY = 1 << 15  # bars between two progress callbacks in the per-bar path
DRAWDOWN_BLOCK = 512  # bars per block of the drawdown scan (``_drawdowns``)

# Within one timestamp events run in this order: exits at the open, entries at the open, stops and
# targets inside the candle, exits at the close, decisions at the close.
_EXIT_OPEN, _ENTRY_OPEN, _STOP, _EXIT_CLOSE, _DECIDE = range(5)

ProgressFn = Callable[[str, int, int], None]


# -- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizing:
    """How big a new position is: ``plugins`` (the sizer hook, as in live), ``all_in`` (the whole
    available margin, net of the entry fee, sized at the fill), ``percent`` of equity, or a
    ``fixed`` notional in the quote currency."""

    kind: str = "plugins"
    value: float = 0.0

    @classmethod
    def parse(cls, text: str | float) -> Sizing:
        raw = str(text).strip().lower().replace("_", "-")
        if raw in ("plugins", "plugin"):
            return cls("plugins")
        if raw in ("all-in", "allin", "all"):
            return cls("all_in")
        try:
            if raw.endswith("%"):
                value = float(raw[:-1])
                if not 0 < value <= 100:
                    raise ValueError
                return cls("percent", value)
            value = float(raw)
            if value <= 0:
                raise ValueError
            return cls("fixed", value)
        except ValueError:
            raise ValueError(f"sizing '{text}': use plugins, all-in, a percent of equity such as 25%, "
                             "or a notional such as 100") from None

    def __str__(self) -> str:
        return {"plugins": "plugins", "all_in": "all-in",
                "percent": f"{self.value:g}%"}.get(self.kind, f"{self.value:g}")


@dataclass(frozen=True)
class ExecutionSettings:
    """The simulated exchange and account (see the module docstring for the rules)."""

    fill: str = "next_open"  # or "close"
    fee_percent: float = 0.1  # per fill, % of notional
    slippage_percent: float = 0.05  # market and stop fills move against you by this, %
    stop_loss_percent: float | None = 2.0  # distance from the decision close when a signal gives none; None = no stop
    take_profit_percent: float | None = 4.0  # likewise; None = no target
    start_equity: float = 1000.0
    sizing: Sizing = field(default_factory=lambda: Sizing("all_in"))
    risk: str = "none"  # "plugins": every risk plugin judges each entry; "none"
    allow_short: bool = True

    def __post_init__(self) -> None:
        if self.fill not in ("next_open", "close"):
            raise ValueError(f"fill '{self.fill}': use next_open or close")
        if self.risk not in ("plugins", "none"):
            raise ValueError(f"risk '{self.risk}': use plugins or none")


# -- signals -------------------------------------------------------------------------------------


@dataclass
class Signals:
    """A strategy's answer for every bar of one series: +1 LONG, -1 SHORT, 0 HOLD."""

    action: np.ndarray  # int8
    confidence: np.ndarray  # float64 (0 where HOLD)
    stop_loss: np.ndarray | None = None  # price, NaN = none
    take_profit: np.ndarray | None = None
    path: str = "vectorized"  # or "per-bar"
    seconds: float = 0.0


def has_vectorized(strategy: Any) -> bool:
    return callable(getattr(strategy, "vectorized", None))


def compute_signals(strategy: Strategy, params: dict[str, float], series: Series, path: str = "auto",
                    progress: ProgressFn | None = None) -> Signals:
    """The strategy's signals over ``series``: ``path`` is ``auto``, ``vectorized`` or ``per-bar``."""
    if path not in ("auto", "vectorized", "per-bar"):
        raise ValueError(f"path '{path}': use auto, vectorized or per-bar")
    started = time.perf_counter()
    if path == "vectorized" or (path == "auto" and has_vectorized(strategy)):
        if not has_vectorized(strategy):
            raise ValueError(f"strategy '{strategy.name}' has no vectorized() method; use the per-bar path")
        signals = _vectorized(strategy, params, series)
    else:
        signals = _per_bar(strategy, params, series, progress)
    signals.seconds = time.perf_counter() - started
    return signals


def _vectorized(strategy: Strategy, params: dict[str, float], series: Series) -> Signals:
    n = len(series)
    try:
        answer = strategy.vectorized(series.symbol, series.candles(), dict(params))
    except Exception as exc:
        raise StrategyFailed(f"strategy '{strategy.name}' vectorized() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(answer, Mapping):
        answer = {"action": answer}
    action = np.asarray(answer.get("action"))
    if action.shape != (n,):
        raise StrategyFailed(f"strategy '{strategy.name}' vectorized() returned {action.shape} actions for {n} candles")
    action = action.astype(np.int8)
    if np.any((action > 1) | (action < -1)):
        raise StrategyFailed(f"strategy '{strategy.name}' vectorized() actions must be "
                             "1 (LONG), -1 (SHORT) or 0 (HOLD)")

    def column(key: str, default: float) -> np.ndarray | None:
        value = answer.get(key)
        if value is None:
            return None if math.isnan(default) else np.where(action != 0, default, 0.0)
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (n,):
            raise StrategyFailed(f"strategy '{strategy.name}' vectorized() '{key}' has shape {value.shape}, "
                                 f"expected ({n},)")
        return value

    confidence = column("confidence", 1.0)
    return Signals(action, confidence, column("stop_loss", math.nan), column("take_profit", math.nan), "vectorized")


class CandleWindow:
    """One symbol's candles up to the current bar, as ``signal()`` sees them in the per-bar path.

    Shaped like ``Candles`` (``timeframe``, the six columns as lists, ``len()``, ``tail()``). Each
    column is one list that grows by appending as the bars advance: ``close``, which nearly every
    strategy reads, is a plain attribute the per-bar loop extends by one candle each bar; the
    others are filled lazily on first read, so a bar costs nothing for the columns a strategy does
    not read. Read-only by contract; a strategy may keep a column between calls only to recognise
    it (it is the same list, longer).
    """

    __slots__ = ("timeframe", "close", "_series", "_timestamp", "_open", "_high", "_low", "_volume",
                 "_src_timestamp", "_src_open", "_src_high", "_src_low", "_src_volume")

    def __init__(self, series: Series):
        self.timeframe = series.timeframe
        self.close: list[float] = []
        self._series = series
        for name in ("timestamp", "open", "high", "low", "volume"):
            setattr(self, "_" + name, [])
            setattr(self, "_src_" + name, None)

    def _sync(self, name: str, values: list) -> list:
        source, n = getattr(self, "_src_" + name), len(self.close)
        if source is None:  # the column's first read: its values become Python objects once
            source = getattr(self._series, name).tolist()
            setattr(self, "_src_" + name, source)
        if len(values) < n:
            values.extend(source[len(values) : n])
        else:
            del values[n:]
        return values

    @property
    def timestamp(self) -> list[int]:
        values = self._timestamp
        return values if len(values) == len(self.close) else self._sync("timestamp", values)

    @property
    def open(self) -> list[float]:
        values = self._open
        return values if len(values) == len(self.close) else self._sync("open", values)

    @property
    def high(self) -> list[float]:
        values = self._high
        return values if len(values) == len(self.close) else self._sync("high", values)

    @property
    def low(self) -> list[float]:
        values = self._low
        return values if len(values) == len(self.close) else self._sync("low", values)

    @property
    def volume(self) -> list[float]:
        values = self._volume
        return values if len(values) == len(self.close) else self._sync("volume", values)

    def __len__(self) -> int:
        return len(self.close)

    def tail(self, n: int) -> Candles:
        return Candles.model_construct(timeframe=self.timeframe, **{name: getattr(self, name)[-n:] for name in COLUMNS})


def _per_bar(strategy: Strategy, params: dict[str, float], series: Series, progress: ProgressFn | None) -> Signals:
    n = len(series)
    window = CandleWindow(series)
    signal, symbol, params = strategy.signal, series.symbol, dict(params)
    closes, grow, hold = series.close.tolist(), window.close.append, Action.HOLD
    quiet: Any = object()  # the last HOLD answer: a strategy usually hands back the same one, known by identity
    ideas: list[tuple[int, Any]] = []
    keep = ideas.append
    i = 0
    try:
        for start in range(0, n, PROGRESS_EVERY):
            for i in range(start, min(n, start + PROGRESS_EVERY)):
                grow(closes[i])
                answer = signal(symbol, window, params)
                if answer is not quiet:
                    if answer.action is hold:
                        quiet = answer
                    else:
                        keep((i, answer))
            if len(window.close) != i + 1:
                raise ValueError("it changed the candles it was given (they are read-only)")
            if progress is not None:
                progress(f"signals {symbol}", min(n, start + PROGRESS_EVERY), n)
    except Exception as exc:
        when = _utc(int(series.timestamp[i])).isoformat()
        raise StrategyFailed(f"strategy '{strategy.name}' signal() raised {type(exc).__name__} "
                             f"at {symbol} {when}: {exc}") from exc
    action = np.zeros(n, dtype=np.int8)
    confidence = np.zeros(n, dtype=np.float64)
    stops = targets = None
    for i, answer in ideas:
        if answer.action is Action.LONG:
            action[i] = 1
        elif answer.action is Action.SHORT:
            action[i] = -1
        else:
            raise StrategyFailed(f"strategy '{strategy.name}' signal() answered {answer.action!r} at bar {i}")
        confidence[i] = answer.confidence
        if answer.stop_loss is not None:
            stops = np.full(n, np.nan) if stops is None else stops
            stops[i] = answer.stop_loss
        if answer.take_profit is not None:
            targets = np.full(n, np.nan) if targets is None else targets
            targets[i] = answer.take_profit
    return Signals(action, confidence, stops, targets, "per-bar")


class StrategyFailed(GobotError, RuntimeError):
    """A strategy raised or answered something the backtester cannot use; the message names it."""


# -- entry decisions: sizing and risk --------------------------------------------------------------


@dataclass(slots=True)
class EntryRequest:
    """A strategy wants to open a position at a bar's close (before sizing and risk)."""

    symbol: str
    time_ms: int  # open time of the decision bar; the decision happens at its close
    close_ms: int  # the decision time: the bar's close
    bar: int
    direction: int  # +1 long, -1 short
    price: float  # the decision close: the reference price of the intent
    confidence: float
    stop_loss: float | None
    take_profit: float | None


ALL_IN = math.inf  # a gate's notional meaning "the whole available margin, sized at the fill"
NO_EQUITY = "no equity left"  # the reason percent sizing gives for no position


class Gate(Protocol):
    """Decides each entry: a notional (``ALL_IN`` for the whole available margin), or a veto."""

    def decide(self, request: EntryRequest, book: Book) -> tuple[float | None, list[str]]:
        """``(notional, [])`` to open, or ``(None, reasons)`` when sizing or a risk check said no."""


class SimpleGate:
    """Sizing without plugins (all-in, percent, fixed) and no risk checks: the fast gate."""

    def __init__(self, sizing: Sizing):
        if sizing.kind == "plugins":
            raise ValueError("plugin sizing needs a bot's plugins: use gobot.research.backtest.gate.PluginGate")
        self.sizing = sizing

    def decide(self, request: EntryRequest, book: Book) -> tuple[float | None, list[str]]:
        if self.sizing.kind == "all_in":
            return ALL_IN, []
        if self.sizing.kind == "fixed":
            return self.sizing.value, []
        equity = book.equity(request.time_ms)
        if equity <= 0:
            return None, [NO_EQUITY]
        return equity * self.sizing.value / 100.0, []


# -- the simulated portfolio -----------------------------------------------------------------------


@dataclass(slots=True)
class OpenPosition:
    """The contract's ``Position`` in the shape the event loop wants: a direction of +1/-1, epoch
    milliseconds, bar indexes. A slots dataclass because building a pydantic ``Position`` per entry
    costs about 7 us against 0.4 us (a year of 1m bars with tight stops opens 9,000 positions: a
    third more simulation time). Both exit through ``gobot_hookspecs.fills.resting_exit``, and
    ``tests/test_fill_model.py`` holds the backtester's trades to the ``paper`` executor's."""

    symbol: str
    index: int  # the series' position in the run
    direction: int
    amount: float
    entry_price: float
    entry_fee: float
    entry_bar: int
    entry_ms: int
    hold_from: int  # first bar whose close marks this position
    stop_loss: float | None
    take_profit: float | None
    confidence: float

    def resting_exit(self, open_: float, high: float, low: float, slippage_percent: float) -> Exit | None:
        """Where the stop-loss or take-profit fills inside one candle, and why (``Position.resting_exit``)."""
        return resting_exit(self.direction, self.stop_loss, self.take_profit, open_, high, low, slippage_percent)

    def to_position(self) -> Position:
        """The contract's model of this position."""
        return Position(symbol=self.symbol, direction=Action.LONG if self.direction > 0 else Action.SHORT,
                        amount=self.amount, entry_price=self.entry_price, entry_fee=self.entry_fee,
                        opened_at=_utc(self.entry_ms), stop_loss=self.stop_loss, take_profit=self.take_profit,
                        confidence=self.confidence)


class TradeRecord:
    """A closed trade: the attributes of ``gobot_hookspecs.Trade`` (the metrics read them), without
    pydantic; ``to_trade()`` builds the model. Times are kept in epoch ms and made datetimes on read."""

    __slots__ = ("symbol", "direction", "amount", "entry_price", "exit_price", "fees", "pnl", "exit_reason",
                 "confidence", "strategy", "strategy_version", "initial_stop_loss", "entry_bar", "exit_bar",
                 "entry_ms", "exit_ms")
    client_order_id = ""
    funding = 0.0  # a backtest pays no funding

    def __init__(self, symbol: str, direction: Action, amount: float, entry_price: float, exit_price: float,
                 fees: float, pnl: float, exit_reason: str, confidence: float | None, strategy: str | None,
                 strategy_version: int | None, initial_stop_loss: float | None, entry_bar: int, exit_bar: int,
                 entry_ms: int, exit_ms: int):
        self.symbol, self.direction, self.amount = symbol, direction, amount
        self.entry_price, self.exit_price, self.fees, self.pnl = entry_price, exit_price, fees, pnl
        self.exit_reason, self.confidence = exit_reason, confidence
        self.strategy, self.strategy_version = strategy, strategy_version
        self.initial_stop_loss, self.entry_bar, self.exit_bar = initial_stop_loss, entry_bar, exit_bar
        self.entry_ms, self.exit_ms = entry_ms, exit_ms

    @property
    def opened_at(self) -> datetime:
        return _utc(self.entry_ms)

    @property
    def closed_at(self) -> datetime:
        return _utc(self.exit_ms)

    @property
    def holding_seconds(self) -> float:
        """``(closed_at - opened_at).total_seconds()`` without the two datetimes (the same float)."""
        return (self.exit_ms - self.entry_ms) / 1000

    def to_trade(self) -> Trade:
        return Trade(**{name: getattr(self, name) for name in Trade.model_fields})

    def as_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in Trade.model_fields}
        data["direction"] = self.direction.value
        data["opened_at"] = self.opened_at.isoformat()
        data["closed_at"] = self.closed_at.isoformat()
        return data


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


class Book:
    """The account during a simulation: one cash balance, the open positions, the closed trades."""

    def __init__(self, series: list[Series], start_equity: float):
        self.series = series
        self.cash = start_equity
        self.start_equity = start_equity
        self.positions: dict[int, OpenPosition] = {}
        self.trades: list[TradeRecord] = []

    def mark_price(self, index: int, at_ms: int, inclusive: bool = True) -> float:
        """The latest close of a series at ``at_ms`` (bars that opened at or before it, if inclusive)."""
        ts = self.series[index].timestamp
        bar = int(np.searchsorted(ts, at_ms, "right" if inclusive else "left")) - 1
        return float(self.series[index].close[max(bar, 0)])

    def equity(self, at_ms: int, inclusive: bool = True) -> float:
        if not self.positions:
            return self.cash
        total = self.cash
        for index, pos in self.positions.items():
            total += pos.direction * (self.mark_price(index, at_ms, inclusive) - pos.entry_price) * pos.amount
        return total

    def exposure(self, at_ms: int, inclusive: bool = True) -> float:
        return sum(abs(pos.amount * self.mark_price(i, at_ms, inclusive)) for i, pos in self.positions.items())

    def available(self, at_ms: int, inclusive: bool = True) -> float:
        """Margin free for a new position (leverage 1): equity minus the open notional."""
        if not self.positions:
            return max(0.0, self.cash)
        return max(0.0, self.equity(at_ms, inclusive) - self.exposure(at_ms, inclusive))


# -- the simulation ----------------------------------------------------------------------------------


@dataclass
class Simulation:
    """What one simulation produced."""

    records: list[TradeRecord] | Callable[[], list[TradeRecord]]  # the closed trades, or what makes them when read
    open_positions: list[OpenPosition]
    timeline: np.ndarray  # int64 ms: every bar time of every symbol in the window
    equity: np.ndarray  # float64: equity at each timeline bar's close (mark to market)
    end_equity: float
    cash: float
    start_equity: float
    vetoes: Counter
    decisions: int
    seconds: float = 0.0
    pnl: np.ndarray | None = None  # each closed trade's P&L, in order (None: read from the trades)
    notional: np.ndarray | None = None  # each closed trade's entry price x amount

    @property
    def trades(self) -> list[TradeRecord]:
        """The closed trades, made on first read: an optimizer's trial reads only their columns."""
        if callable(self.records):
            self.records = self.records()
        return self.records

    def closed_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """Each closed trade's P&L and entry notional (entry price x amount), the same floats as the trades'."""
        if self.pnl is None or self.notional is None:
            self.pnl = np.array([t.pnl for t in self.trades], dtype=np.float64)
            self.notional = np.array([t.entry_price * t.amount for t in self.trades], dtype=np.float64)
        return self.pnl, self.notional


def _first_touch(low: np.ndarray, high: np.ndarray, start: int, end: int, direction: int,
                 stop: float | None, target: float | None) -> int:
    """The first bar in ``[start, end)`` where the stop or the target is touched; -1 if none."""
    if stop is None and target is None:
        return -1
    pos, size = start, 512
    while pos < end:
        stop_at = min(end, pos + size)
        if direction > 0:
            hit = low[pos:stop_at] <= stop if stop is not None else np.zeros(stop_at - pos, dtype=bool)
            if target is not None:
                hit = hit | (high[pos:stop_at] >= target)
        else:
            hit = high[pos:stop_at] >= stop if stop is not None else np.zeros(stop_at - pos, dtype=bool)
            if target is not None:
                hit = hit | (low[pos:stop_at] <= target)
        found = int(hit.argmax())
        if hit[found]:
            return pos + found
        pos, size = stop_at, size * 4
    return -1


def simulate(series: list[Series], signals: list[Signals], settings: ExecutionSettings, gate: Gate, *,
             strategy: str = "", strategy_version: int | None = None, start_ms: int | None = None,
             end_ms: int | None = None) -> Simulation:
    """Trade ``signals`` over ``series`` (bars opening in ``[start_ms, end_ms)``) as one portfolio."""
    started = time.perf_counter()
    simulation = None
    if len(series) == 1 and type(gate) is SimpleGate:
        simulation = _one_series(series[0], signals[0], settings, gate.sizing, strategy, strategy_version,
                                 start_ms, end_ms)
    if simulation is None:
        simulation = _Simulator(series, signals, settings, gate, strategy, strategy_version, start_ms, end_ms).run()
    simulation.seconds = time.perf_counter() - started
    return simulation


# -- one series without plugins: the same trades as one chain, no event queue ------------------------


def _one_series(s: Series, sig: Signals, settings: ExecutionSettings, sizing: Sizing, strategy: str,
                strategy_version: int | None, start_ms: int | None, end_ms: int | None) -> Simulation | None:
    """The event loop's simulation of one series with ``SimpleGate``, walked as one chain: with one
    series each event schedules the next (decision, entry, exit, decision, ...), so no queue is
    needed, and prices, fees and the curve are computed per column with the same float operations
    (``gobot_hookspecs.fills`` on arrays), vetoes included (``_sized_chain``); None when an entry of
    percent or fixed sizing is below a market minimum: the event loop then runs, with its rules for
    what follows such a veto.
    ``tests/test_backtest_chain.py`` holds the two to identical trades and curves."""
    at_close = settings.fill == "close"
    lo = 0 if start_ms is None else int(np.searchsorted(s.timestamp, start_ms, "left"))
    hi = len(s) if end_ms is None else int(np.searchsorted(s.timestamp, end_ms, "left"))
    chain = _sized_chain(s, sig, settings, sizing, lo, hi)
    if chain is None:
        return None
    decisions, exits, levels, touches, fills, amount, cash, vetoes = chain
    d, x, direction, entry_bar, entry_price, exit_price, reasons = fills
    m, closed = len(decisions), len(exits)
    entry_fee = fill_fee(amount, entry_price, settings.fee_percent)
    exit_fee = fill_fee(amount[:closed], exit_price, settings.fee_percent)
    gross = direction[:closed] * (exit_price - entry_price[:closed]) * amount[:closed]
    ts, step = s.timestamp, s.step_ms
    entry_ms = ts[d] + step if at_close else ts[entry_bar]
    exit_ms = ts[x] + step if at_close else ts[x]  # a stop or target fills inside the candle: at its open time
    if at_close and touches:
        exit_ms[list(touches)] -= step
    held = direction * amount
    move_bars = np.concatenate((np.column_stack((entry_bar[:closed], x)).ravel(), entry_bar[closed:])) - lo
    move_amounts = np.concatenate((np.column_stack((-entry_fee[:closed], gross - exit_fee)).ravel(),
                                   -entry_fee[closed:]))
    spans = (entry_bar, np.concatenate((x, np.full(m - closed, hi, dtype=np.int64))), held, held * entry_price)
    timeline, equity = _equity_curve([s], [lo], [hi], settings.start_equity, move_bars, move_amounts, [spans],
                                     at_bars=True)
    pnl = gross - entry_fee[:closed] - exit_fee

    def records() -> list[TradeRecord]:
        side = list(map({1: Action.LONG, -1: Action.SHORT}.__getitem__, direction[:closed].tolist()))
        stops = [stop for stop, _ in levels]
        return list(map(TradeRecord, itertools.repeat(s.symbol, closed), side, amount.tolist(),
                        entry_price.tolist(), exit_price.tolist(), (entry_fee[:closed] + exit_fee).tolist(),
                        pnl.tolist(), reasons, sig.confidence[d[:closed]].tolist(), itertools.repeat(strategy or None),
                        itertools.repeat(strategy_version), stops, entry_bar.tolist(), exits, entry_ms.tolist(),
                        exit_ms.tolist()))

    still_open, end_equity = [], cash
    if m > closed:
        i = closed
        pos = OpenPosition(s.symbol, 0, int(direction[i]), float(amount[i]), float(entry_price[i]),
                           float(entry_fee[i]), int(entry_bar[i]), int(entry_ms[i]), int(entry_bar[i]),
                           levels[i][0], levels[i][1], float(sig.confidence[d[i]]))
        still_open.append(pos)
        end_equity += pos.direction * (float(s.close[max(hi - 1, 0)]) - pos.entry_price) * pos.amount
    return Simulation(records, still_open, timeline, equity, end_equity, cash, settings.start_equity, vetoes,
                      m + sum(vetoes.values()), pnl=pnl, notional=entry_price[:closed] * amount[:closed])


def _sized_chain(s: Series, sig: Signals, settings: ExecutionSettings, sizing: Sizing, lo: int, hi: int):
    """The chain's trades with their amounts: decisions, exits, levels, touches, their ``_fills``, amounts,
    the cash at the end and the vetoes; None when the event loop must decide (an entry percent or fixed sizing
    makes too small for the market). An entry the cash cannot pay for is vetoed with the event loop's reason,
    and so is every later decision while the book is flat: then the cash no longer changes, so each later
    decision's amount is known at once. With all-in sizing the chain goes on from the first one whose price
    lets the cash buy an amount the market takes (an account worn down to dust by fees buys a step again where
    the price is lower)."""
    last = hi - (0 if settings.fill == "close" else 1)  # a decision needs a bar to fill on
    walk, candidates = _chain_walker(s, sig, settings, hi), None
    cash, start, limit, vetoes = settings.start_equity, lo, None, Counter()
    decisions: list[int] = []
    exits: list[int] = []
    levels: list[tuple[float | None, float | None]] = []
    touches: dict[int, Exit] = {}
    amounts: list[np.ndarray] = []
    while True:
        found, closes, marks, hits, resume = walk(start, limit)
        fills = _fills(s, sig, settings, found, closes, hits)
        d, _, direction, _, entry_price, exit_price, _ = fills
        sized = _amounts(entry_price, exit_price, direction, s.close[d], settings, sizing, s.market, cash)
        if sized is None:
            return None
        amount, cash, spent = sized
        kept = len(found) if spent is None else spent
        touches.update((len(exits) + i, hit) for i, hit in hits.items() if i < kept)
        decisions += found[:kept]
        exits += closes[:kept]
        levels += marks[:kept]
        amounts.append(amount[:kept])
        if spent is None:
            if resume is None:
                if len(decisions) == len(found):  # one stretch, whole (the usual run): its fills are the chain's
                    return decisions, exits, levels, touches, fills, amount, cash, vetoes
                break
            start, limit = resume, limit * 4  # walked in growing stretches after a veto: the next may come soon
            continue
        if candidates is None:
            candidates = np.flatnonzero(sig.action != 0 if settings.allow_short else sig.action > 0)
        later = candidates[np.searchsorted(candidates, found[spent]):np.searchsorted(candidates, last)]
        if sizing.kind != "all_in":  # no equity left for percent sizing: the cash cannot change again
            if len(later):
                vetoes[NO_EQUITY] += len(later)
            break
        start, limit = _next_affordable(s, sig, settings, later, cash, vetoes), 8
        if start is None:
            break
    fills = _fills(s, sig, settings, decisions, exits, touches)
    return decisions, exits, levels, touches, fills, np.concatenate(amounts), cash, vetoes


def _next_affordable(s: Series, sig: Signals, settings: ExecutionSettings, later: np.ndarray, cash: float,
                     vetoes: Counter) -> int | None:
    """The first of ``later`` (decision bars, the book flat) whose all-in entry the market takes with ``cash``
    (the float steps of ``_all_in``), counting the vetoes of those before it (all of them: None)."""
    for size in (256, 4096):  # the first stretches: one that buys comes soon after a veto where any does
        if len(later) > 2 * size:
            start = _next_affordable(s, sig, settings, later[:size], cash, vetoes)
            if start is not None:
                return start
            later = later[size:]
    market = s.market
    direction = sig.action[later].astype(np.int64)
    price = market_price(s.close[later] if settings.fill == "close" else s.open[later + 1], direction,
                         settings.slippage_percent)
    amount = cash / (price * (1.0 + settings.fee_percent / 100.0))
    if market.amount_step > 0:
        amount = np.floor(amount / market.amount_step) * market.amount_step
    broke = amount <= 0
    vetoed = broke | (amount < (market.min_amount or 0.0)) | (amount * price < (market.min_notional or 0.0))
    takes = np.flatnonzero(~vetoed)
    first = int(takes[0]) if len(takes) else len(later)
    if broke[:first].any():
        vetoes[_market_veto(market, 0.0, 1.0)] += int(np.count_nonzero(broke[:first]))
    for i in np.flatnonzero(vetoed[:first] & ~broke[:first]).tolist():  # below a market minimum
        vetoes[_market_veto(market, float(amount[i]), float(price[i]))] += 1
    return int(later[first]) if len(takes) else None


def _fills(s: Series, sig: Signals, settings: ExecutionSettings, decisions: list[int], exits: list[int],
           touches: dict[int, Exit]):
    """The chain's bars as arrays, each trade's direction, entry bar, entry and exit prices, exit reasons."""
    at_close, closed = settings.fill == "close", len(exits)
    d, x = np.asarray(decisions, dtype=np.int64), np.asarray(exits, dtype=np.int64)
    direction = sig.action[d].astype(np.int64)
    entry_bar = d if at_close else d + 1
    entry_price = market_price(s.close[d] if at_close else s.open[entry_bar], direction, settings.slippage_percent)
    exit_price = market_price((s.close if at_close else s.open)[x], -direction[:closed], settings.slippage_percent)
    reasons = ["signal"] * closed
    for i, hit in touches.items():
        exit_price[i], reasons[i] = hit.price, hit.reason
    return d, x, direction, entry_bar, entry_price, exit_price, reasons


def _chain_walker(s: Series, sig: Signals, settings: ExecutionSettings, hi: int):
    """``walk(lo, limit)``: the chain's bars from the first decision at or after ``lo`` — decisions, exits (one
    per closed trade, in order), each trade's (stop, target), the exits a stop or target made (trade index ->
    ``Exit``), as the event loop schedules them — and, when ``limit`` decisions were walked before the chain
    ended, the bar of the next decision (the chain from there is the rest: it follows only from that bar)."""
    at_close = settings.fill == "close"
    signalled = np.flatnonzero(sig.action != 0)  # 10x faster than on the int8 column itself
    side = sig.action[signalled]
    longs, shorts = signalled[side > 0], signalled[side < 0]
    protect = (settings.stop_loss_percent is not None or settings.take_profit_percent is not None
               or sig.stop_loss is not None or sig.take_profit is not None)
    last = hi - (0 if at_close else 1)  # a decision needs a bar to fill on
    if not protect and not settings.allow_short:
        return lambda lo, limit=None: _long_chain(longs, shorts, lo, last, hi, at_close, limit)
    opens = signalled if settings.allow_short else longs
    sides = side.astype(np.int64) if settings.allow_short else np.ones(len(longs), np.int64)
    # Each candidate's first opposite signal after it, the exit that fills on it, and the candidate
    # after that exit: without stops and targets the chain just follows these.
    opposite = np.append(shorts, -1)[np.searchsorted(shorts, opens + 1)]
    if settings.allow_short and len(shorts):
        short = sides < 0
        opposite[short] = np.append(longs, -1)[np.searchsorted(longs, opens[short] + 1)]
    exit_bar = np.where(opposite >= 0, opposite + (0 if at_close else 1), hi)
    exit_bar[exit_bar >= hi] = -1
    follow = np.searchsorted(opens, opposite + 1).tolist()
    bars, exit_bars, sides = opens.tolist(), exit_bar.tolist(), sides.tolist()

    def walk(lo: int, limit: int | None = None):
        decisions: list[int] = []
        exits: list[int] = []
        levels: list[tuple[float | None, float | None]] = []
        touches: dict[int, Exit] = {}
        j, count = bisect.bisect_left(bars, lo), len(bars)
        while j < count and bars[j] < last:
            if len(decisions) == limit:
                return decisions, exits, levels if protect else [(None, None)] * limit, touches, bars[j]
            d, direction, out = bars[j], sides[j], exit_bars[j]
            decisions.append(d)
            touched = -1
            if protect:
                stop, target = protective_levels(direction, float(s.close[d]), _level(sig.stop_loss, d),
                                                 _level(sig.take_profit, d), settings.stop_loss_percent,
                                                 settings.take_profit_percent)
                levels.append((stop, target))
                if stop is not None or target is not None:
                    scan_to = (out + 1 if at_close else out) if out >= 0 else hi
                    touched = _first_touch(s.low, s.high, d + 1, scan_to, direction, stop, target)
            if touched >= 0:
                touches[len(exits)] = _touch(s, touched, direction, stop, target, settings.slippage_percent)
                exits.append(touched)
                j = bisect.bisect_left(bars, touched, j + 1)
            elif out >= 0:
                exits.append(out)
                j = follow[j]
            else:
                break  # open to the end
        return decisions, exits, levels if protect else [(None, None)] * len(decisions), touches, None

    return walk


def _long_chain(longs: np.ndarray, shorts: np.ndarray, lo: int, last: int, hi: int, at_close: bool,
                limit: int | None = None):
    """The chain long only without stops or targets, per column: the longs between two shorts share their
    exit, so the chain is the first long of each such group, up to the first without an exit."""
    candidates = longs[np.searchsorted(longs, lo):np.searchsorted(longs, last)]
    if limit is not None and len(candidates) > 64 * limit:  # the first groups of a prefix are the chain's first
        prefix = _long_chain(candidates[: 64 * limit], shorts, lo, last, hi, at_close, limit)
        if prefix[-1] is not None:
            return prefix
    group = np.searchsorted(shorts, candidates + 1)  # the short each would exit on
    first = np.ones(len(candidates), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    decisions = candidates[first]
    exits = np.append(shorts, hi)[group[first]] + (0 if at_close else 1)
    beyond = np.flatnonzero(exits >= hi)  # no exit inside the window: open to the end, the chain stops
    closed = int(beyond[0]) if len(beyond) else len(decisions)
    if limit is not None and limit < min(closed + 1, len(decisions)):
        return (decisions[:limit].tolist(), exits[:limit].tolist(), [(None, None)] * limit, {},
                int(decisions[limit]))
    decisions = decisions[: closed + 1].tolist()
    return decisions, exits[:closed].tolist(), [(None, None)] * len(decisions), {}, None


def _touch(s: Series, bar: int, direction: int, stop: float | None, target: float | None, slippage: float) -> Exit:
    hit = resting_exit(direction, stop, target, float(s.open[bar]), float(s.high[bar]), float(s.low[bar]), slippage)
    if hit is None:
        raise AssertionError(f"{s.symbol} bar {bar}: the numpy scan and gobot_hookspecs.fills disagree on a touch")
    return hit


def _level(column: np.ndarray | None, bar: int) -> float | None:
    value = column[bar] if column is not None else math.nan
    return None if math.isnan(value) else float(value)


def _amounts(entry_price: np.ndarray, exit_price: np.ndarray, direction: np.ndarray, decision_close: np.ndarray,
             settings: ExecutionSettings, sizing: Sizing, market: MarketRules,
             cash: float) -> tuple[np.ndarray, float, int | None] | None:
    """Each entry's amount and the cash at the end, from ``cash``, in the book's order of float steps (the amount
    of all-in and percent sizing depends on the cash the trades before left), and the index of the first entry
    the cash left vetoes (None: none; all-in: too little for one amount step or the market's minimums); None if
    an entry of percent or fixed sizing would be vetoed otherwise."""
    fee_percent, kind = settings.fee_percent, sizing.kind
    amounts: list[float] = []
    exits = exit_price.tolist() + [math.nan] * (len(entry_price) - len(exit_price))
    if kind == "all_in":
        cash, spent = _all_in(amounts, entry_price.tolist(), direction.tolist(), exits, cash, fee_percent, market)
    else:
        cash, spent = _sized(amounts, entry_price, direction, decision_close, exits, cash, fee_percent, sizing, market)
    amount = np.asarray(amounts, dtype=np.float64)
    if kind == "all_in":
        return amount, cash, spent
    if market.min_amount or market.min_notional:
        if any(_market_veto(market, a, p) for a, p in zip(amounts, entry_price.tolist())):
            return None
    elif len(amount) and amount.min() <= 0:
        return None  # "no margin available for a position"
    return amount, cash, spent


def _all_in(amounts: list[float], prices: list[float], sides: list[int], exits: list[float], cash: float,
            fee_percent: float, market: MarketRules) -> tuple[float, int | None]:
    """``_sized`` for all-in sizing, the hot loop of an optimizer's trial: the same float steps, with
    ``MarketRules.round_amount`` and ``gobot_hookspecs.fills.fee`` written out (their calls were half
    its time; tests/test_backtest_chain.py holds it to the event loop's trades, which call them)."""
    step, grow, keep, floor = market.amount_step, 1.0 + fee_percent / 100.0, amounts.append, math.floor
    least, smallest = market.min_amount or 0.0, market.min_notional or 0.0
    for price, side, out in zip(prices, sides, exits):
        if cash <= 0:
            return cash, len(amounts)  # no margin: the cash cannot change again
        amount = cash / (price * grow)
        if step > 0 and amount > 0:
            amount = floor(amount / step) * step
        if amount <= 0 or amount < least or amount * price < smallest:
            return cash, len(amounts)  # the cash left buys no amount (step) the market takes at this price
        keep(amount)
        cash -= amount * price * fee_percent / 100.0
        if out == out:  # closed (an open position's exit price is NaN)
            cash += side * (out - price) * amount - amount * out * fee_percent / 100.0
    return cash, None


def _sized(amounts: list[float], entry_price: np.ndarray, direction: np.ndarray, decision_close: np.ndarray,
           exits: list[float], cash: float, fee_percent: float, sizing: Sizing,
           market: MarketRules) -> tuple[float, int | None]:
    """Fixed and percent sizing's amounts (appended to ``amounts``), the cash at the end, and the index
    of the first entry no equity is left for (None: none)."""
    kind, value, rounded, fee = sizing.kind, sizing.value, market.round_amount, fill_fee
    spent = None
    for i, (price, side, close, out) in enumerate(zip(entry_price.tolist(), direction.tolist(),
                                                      decision_close.tolist(), exits)):
        if kind == "fixed":
            amount = rounded(value / close)
        elif cash <= 0:
            spent = i  # percent: no equity. The cash cannot change again.
            break
        else:
            amount = rounded(cash * value / 100.0 / close)
        amounts.append(amount)
        cash -= fee(amount, price, fee_percent)
        if out == out:  # closed (an open position's exit price is NaN)
            cash += side * (out - price) * amount - fee(amount, out, fee_percent)
    return cash, spent


class _Simulator:
    """One simulation: the event queue, the account, and a handler per kind of event.

    An event is ``(time ms, phase, series index, bar)``; a handler acts on it and pushes the
    series' next event (its next decision, or the exit of the position it opened)."""

    def __init__(self, series: list[Series], signals: list[Signals], settings: ExecutionSettings, gate: Gate,
                 strategy: str, strategy_version: int | None, start_ms: int | None, end_ms: int | None):
        self.series, self.signals, self.gate = series, signals, gate
        self.strategy, self.strategy_version = strategy or None, strategy_version
        self.fee_percent, self.slippage_percent = settings.fee_percent, settings.slippage_percent
        self.sl, self.tp = settings.stop_loss_percent, settings.take_profit_percent
        self.at_close = settings.fill == "close"
        self.book = Book(series, settings.start_equity)
        self.vetoes: Counter = Counter()
        self.decisions = 0
        self.events: list[tuple] = []
        self.cash_moves: list[tuple[int, float]] = []
        self.holds: list[list[tuple[int, int, float, float]]] = [[] for _ in series]  # (from, to, amount*dir, value)
        self.pending: dict[int, tuple[EntryRequest, float]] = {}
        self.lo, self.hi, self.opens, self.longs, self.shorts, self.step = [], [], [], [], [], []
        for s, sig in zip(series, signals):
            self.lo.append(0 if start_ms is None else int(np.searchsorted(s.timestamp, start_ms, "left")))
            self.hi.append(len(s) if end_ms is None else int(np.searchsorted(s.timestamp, end_ms, "left")))
            self.longs.append(np.flatnonzero(sig.action == 1).tolist())
            self.shorts.append(np.flatnonzero(sig.action == -1).tolist())
            self.opens.append(np.flatnonzero(sig.action != 0).tolist() if settings.allow_short else self.longs[-1])
            self.step.append(s.step_ms)

    def run(self) -> Simulation:
        for k in range(len(self.series)):
            self.schedule_decision(k, self.lo[k])
        events, pop = self.events, heapq.heappop
        handlers = {_EXIT_OPEN: self.exit_at_open, _ENTRY_OPEN: self.enter_at_open, _STOP: self.stop_or_target,
                    _EXIT_CLOSE: self.exit_at_close, _DECIDE: self.decide}
        handlers = [handlers[phase] for phase in range(len(handlers))]
        while events:
            at_ms, phase, k, bar = pop(events)
            handlers[phase](at_ms, k, bar)
        return self.finish()

    # -- the events ------------------------------------------------------------------------------

    def decide(self, at_ms: int, k: int, bar: int) -> None:
        """A signal at ``bar``'s close: ask the gate, then fill at once (fill = close) or at the next open."""
        self.decisions += 1
        s, sig = self.series[k], self.signals[k]
        direction = int(sig.action[bar])
        stop = sig.stop_loss[bar] if sig.stop_loss is not None else math.nan
        target = sig.take_profit[bar] if sig.take_profit is not None else math.nan
        request = EntryRequest(s.symbol, at_ms, at_ms + self.step[k], bar, direction, float(s.close[bar]),
                               float(sig.confidence[bar]), None if math.isnan(stop) else float(stop),
                               None if math.isnan(target) else float(target))
        notional, reasons = self.gate.decide(request, self.book)
        if notional is None or notional <= 0:
            for reason in reasons or ["the sizer chose no position"]:
                self.vetoes[reason] += 1
            self.schedule_decision(k, bar + 1)
        elif self.at_close:
            price = market_price(request.price, direction, self.slippage_percent)
            if not self.open_position(k, bar, price, request, notional, at_ms + self.step[k]):
                self.schedule_decision(k, bar + 1)
        else:
            self.pending[k] = (request, notional)
            heapq.heappush(self.events, (int(s.timestamp[bar + 1]), _ENTRY_OPEN, k, bar + 1))

    def enter_at_open(self, at_ms: int, k: int, bar: int) -> None:
        request, notional = self.pending.pop(k)
        price = market_price(float(self.series[k].open[bar]), request.direction, self.slippage_percent)
        if not self.open_position(k, bar, price, request, notional, at_ms):
            self.schedule_decision(k, bar)

    def stop_or_target(self, at_ms: int, k: int, bar: int) -> None:
        """The candle ``_first_touch`` found: the contract's rule says at what price and why."""
        s, pos = self.series[k], self.book.positions[k]
        hit = resting_exit(pos.direction, pos.stop_loss, pos.take_profit, float(s.open[bar]), float(s.high[bar]),
                           float(s.low[bar]), self.slippage_percent)
        if hit is None:
            raise AssertionError(f"{s.symbol} bar {bar}: the numpy scan and gobot_hookspecs.fills disagree on a touch")
        self.close_position(k, bar, hit.price, hit.reason, at_ms, bar)
        self.schedule_decision(k, bar)

    def exit_at_open(self, at_ms: int, k: int, bar: int) -> None:
        pos = self.book.positions[k]
        price = market_price(float(self.series[k].open[bar]), -pos.direction, self.slippage_percent)
        self.close_position(k, bar, price, "signal", at_ms, bar)
        self.schedule_decision(k, bar)

    def exit_at_close(self, at_ms: int, k: int, bar: int) -> None:
        pos = self.book.positions[k]
        price = market_price(float(self.series[k].close[bar]), -pos.direction, self.slippage_percent)
        self.close_position(k, bar, price, "signal", at_ms + self.step[k], bar)
        self.schedule_decision(k, bar + 1)

    # -- scheduling and the account ----------------------------------------------------------------

    def schedule_decision(self, k: int, from_bar: int) -> None:
        """Push the series' first entry signal at or after ``from_bar`` (none after the window)."""
        candidates = self.opens[k]
        j = bisect.bisect_left(candidates, max(from_bar, self.lo[k]))
        if j < len(candidates):
            d = candidates[j]
            if d < self.hi[k] - (0 if self.at_close else 1):
                heapq.heappush(self.events, (int(self.series[k].timestamp[d]), _DECIDE, k, d))

    def open_position(self, k: int, bar: int, price: float, request: EntryRequest, notional: float, at_ms: int) -> bool:
        """Fill an entry at ``bar`` (its open, or its close with fill = close) at ``at_ms``."""
        s, book = self.series[k], self.book
        if notional == ALL_IN:  # other symbols marked to their latest close before the fill
            margin = book.available(int(s.timestamp[bar]), inclusive=self.at_close)
            amount = margin / (price * (1.0 + self.fee_percent / 100.0))
        else:
            amount = notional / request.price
        amount = s.market.round_amount(amount)
        reason = _market_veto(s.market, amount, price)
        if reason:
            self.vetoes[reason] += 1
            return False
        entry_fee = fill_fee(amount, price, self.fee_percent)
        book.cash -= entry_fee
        self.cash_moves.append((int(s.timestamp[bar]), -entry_fee))
        direction = request.direction
        stop, target = protective_levels(direction, request.price, request.stop_loss, request.take_profit,
                                         self.sl, self.tp)
        pos = OpenPosition(s.symbol, k, direction, amount, price, entry_fee, bar, at_ms, bar, stop, target,
                           request.confidence)
        book.positions[k] = pos
        self.schedule_exit(k, pos, request.bar)
        return True

    def schedule_exit(self, k: int, pos: OpenPosition, decision_bar: int) -> None:
        """Push the position's exit: the first candle touching its stop or target before the first
        opposite signal's fill, else that fill (none: it stays open to the end)."""
        s, at_close = self.series[k], self.at_close
        opposite = self.shorts[k] if pos.direction > 0 else self.longs[k]
        first_signal_bar = decision_bar + 1 if at_close else pos.entry_bar
        j = bisect.bisect_left(opposite, first_signal_bar)
        exit_bar = -1
        if j < len(opposite):
            candidate = opposite[j] if at_close else opposite[j] + 1
            if candidate < self.hi[k]:
                exit_bar = candidate
        scan_from = decision_bar + 1 if at_close else pos.entry_bar
        scan_to = (exit_bar + 1 if at_close else exit_bar) if exit_bar >= 0 else self.hi[k]
        touched = _first_touch(s.low, s.high, scan_from, scan_to, pos.direction, pos.stop_loss, pos.take_profit)
        if touched >= 0:
            heapq.heappush(self.events, (int(s.timestamp[touched]), _STOP, k, touched))
        elif exit_bar >= 0:
            phase = _EXIT_CLOSE if at_close else _EXIT_OPEN
            heapq.heappush(self.events, (int(s.timestamp[exit_bar]), phase, k, exit_bar))

    def close_position(self, k: int, bar: int, price: float, reason: str, at_ms: int, hold_to: int) -> None:
        book, pos = self.book, self.book.positions.pop(k)
        exit_fee = fill_fee(pos.amount, price, self.fee_percent)
        gross = pos.direction * (price - pos.entry_price) * pos.amount
        book.cash += gross - exit_fee
        self.cash_moves.append((int(self.series[k].timestamp[bar]), gross - exit_fee))
        held = pos.direction * pos.amount
        self.holds[k].append((pos.hold_from, hold_to, held, held * pos.entry_price))
        book.trades.append(TradeRecord(
            pos.symbol, Action.LONG if pos.direction > 0 else Action.SHORT, pos.amount, pos.entry_price, price,
            pos.entry_fee + exit_fee, gross - pos.entry_fee - exit_fee, reason, pos.confidence, self.strategy,
            self.strategy_version, pos.stop_loss, pos.entry_bar, bar, pos.entry_ms, at_ms))

    def finish(self) -> Simulation:
        """Positions still open are marked to their last close (no exit fee); the equity curve is drawn."""
        book, series, hi = self.book, self.series, self.hi
        still_open = list(book.positions.values())
        for pos in still_open:
            self.holds[pos.index].append((pos.hold_from, hi[pos.index], pos.direction * pos.amount,
                                          pos.direction * pos.amount * pos.entry_price))
        end_equity = book.cash
        for pos in still_open:
            last = series[pos.index].close[max(hi[pos.index] - 1, 0)]
            end_equity += pos.direction * (float(last) - pos.entry_price) * pos.amount
        moves = np.array(self.cash_moves, dtype=np.float64).reshape(-1, 2)
        spans = [tuple(np.array(h, dtype=np.float64).reshape(-1, 4).T) for h in self.holds]
        timeline, equity = _equity_curve(series, self.lo, hi, book.start_equity, moves[:, 0].astype(np.int64),
                                         moves[:, 1], [(a.astype(np.int64), b.astype(np.int64), c, v)
                                                       for a, b, c, v in spans])
        return Simulation(book.trades, still_open, timeline, equity, end_equity, book.cash, book.start_equity,
                          self.vetoes, self.decisions)


def _market_veto(market: MarketRules, amount: float, price: float) -> str:
    if amount <= 0:
        return "no margin available for a position"
    if market.min_amount and amount < market.min_amount:
        return f"amount below the market's minimum {market.min_amount:g}"
    if market.min_notional and amount * price < market.min_notional:
        return f"notional below the market's minimum {market.min_notional:g}"
    return ""


def _equity_curve(series: list[Series], lo: list[int], hi: list[int], start_equity: float, move_times: np.ndarray,
                  move_amounts: np.ndarray, holds: list[tuple], at_bars: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mark-to-market equity at every bar close of the window, on the union of the symbols' times:
    cash moves (time ms, or with ``at_bars`` the timeline index; amount), and per series the
    positions held as (first bar, end bar, signed amount, signed cost) columns. Equity = start + the
    running sum of cash moves and costs + the running amount held x the close (a handful of passes
    over the bars, however many trades)."""
    parts = [s.timestamp[a:b] for s, a, b in zip(series, lo, hi)]
    one = len(parts) == 1
    timeline = parts[0] if one else np.unique(np.concatenate(parts))
    n = len(timeline)
    if not n:
        return timeline, np.zeros(0)
    where = move_times if at_bars else np.clip(np.searchsorted(timeline, move_times, "right") - 1, 0, n - 1)
    flows, weights, marks = [where], [move_amounts], []
    for s, a, b, (start, stop, held, cost) in zip(series, lo, hi, holds):
        if not len(start):
            continue
        at = np.column_stack((start - a, stop - a)).ravel()
        unrealised = np.multiply(_running_sum(at, np.column_stack((held, -held)).ravel(), b - a), s.close[a:b],
                                 out=np.empty(b - a))
        if one:
            flows.append(at)
            weights.append(np.column_stack((-cost, cost)).ravel())
        else:
            unrealised -= _running_sum(at, np.column_stack((cost, -cost)).ravel(), b - a)
            inside = np.searchsorted(s.timestamp[a:b], timeline, "right") - 1
            unrealised = np.where(inside >= 0, unrealised[np.clip(inside, 0, None)], 0.0)
        marks.append(unrealised)
    equity = _running_sum(np.concatenate(flows), np.concatenate(weights), n, start_equity)
    for unrealised in marks:
        equity += unrealised
    return timeline, equity


def _running_sum(at: np.ndarray, weights: np.ndarray, n: int, offset: float = 0.0) -> np.ndarray:
    """``offset + np.cumsum(np.bincount(at, weights, minlength=n + 1)[:n])``, the same floats, without
    a cumulative sum over every bar (numpy's is sequential: ~4 ns a bar, the costliest pass of a
    backtest): the sum steps only on the bars something is added to, a few thousand of hundreds of
    thousands, so it is summed there and each level repeated up to the next step (the bars between
    add 0.0, which changes no float)."""
    inside = at < n
    if not inside.all():
        at, weights = at[inside], weights[inside]
    steps, slot = np.unique(at, return_inverse=True)
    levels = np.empty(len(steps) + 1)
    levels[0] = 0.0
    np.cumsum(np.bincount(slot, weights), out=levels[1:])  # each step's additions in order, as bincount adds them
    levels += offset
    return np.repeat(levels, np.diff(steps, prepend=0, append=n))


# -- curve metrics (the contract's definitions, vectorized; tests hold them equal) ---------------------


def curve_metrics(times_ms: np.ndarray, equity: np.ndarray) -> dict[str, float | None]:
    """Max drawdown, Sharpe, Sortino, annual return and Calmar of an equity curve, exactly as
    ``gobot_hookspecs.metrics`` defines them, over numpy arrays (a year of 1m bars in milliseconds).

    Few passes over the curve (it is as long as the candles: ~5 ms for a year of 1m): a curve that
    stays positive — every funded account's — needs no masks, and sums of squares take one pass."""
    out: dict[str, float | None] = {"max_drawdown": 0.0, "max_drawdown_pct": 0.0, "sharpe": None, "sortino": None,
                                    "annual_return": None, "calmar": None}
    if len(equity) == 0:
        return out
    equity = np.asarray(equity, dtype=np.float64)
    fall, fall_pct, lowest = _drawdowns(equity)
    out["max_drawdown"], out["max_drawdown_pct"] = max(fall, 0.0), max(fall_pct, 0.0)
    if len(equity) < 2:
        return out
    span = (int(times_ms[-1]) - int(times_ms[0])) / 1000.0
    before, after = equity[:-1], equity[1:]
    if lowest > 0:
        rs = np.divide(after, before)
        rs -= 1.0
    else:
        ok = before > 0
        rs = after[ok] / before[ok] - 1.0
    if span > 0:
        per_year = (len(equity) - 1) / (span / SECONDS_PER_YEAR)
        if len(rs) >= 2:
            mean = rs.mean()
            centred = rs - mean
            variance = _squares(centred) / (len(rs) - 1)
            out["sharpe"] = float(mean / math.sqrt(variance) * math.sqrt(per_year)) if variance > 0 else None
            losses = np.minimum(rs, 0.0, out=rs)  # rs is not needed after this
            downside = math.sqrt(_squares(losses) / len(losses))
            out["sortino"] = float(mean / downside * math.sqrt(per_year)) if downside > 0 else None
        first, last = float(equity[0]), float(equity[-1])
        if first > 0 and last > 0:
            out["annual_return"] = (last / first) ** (SECONDS_PER_YEAR / span) - 1.0
            if out["max_drawdown_pct"]:
                out["calmar"] = out["annual_return"] / out["max_drawdown_pct"]
    return out


def _drawdowns(equity: np.ndarray) -> tuple[float, float, float]:
    """The largest fall from the running peak, the largest as a share of a positive peak (0.0 if none),
    and the lowest equity: what ``peak = np.maximum.accumulate(equity)`` gives, the same floats, without
    that running maximum over every bar (numpy's is sequential, ~4 ns a bar). In blocks of
    ``DRAWDOWN_BLOCK`` bars, a block that makes no new high has the peak before it all through, so its
    largest fall is that peak less its lowest bar (a rounded subtraction or division is monotone: the
    same float as the largest of the bars'); only the blocks that make a new high are walked bar by bar."""
    rows = len(equity) // DRAWDOWN_BLOCK
    body = equity[: rows * DRAWDOWN_BLOCK].reshape(rows, DRAWDOWN_BLOCK)
    highs, lows = body.max(axis=1), body.min(axis=1)
    before = np.empty(rows + 1)  # the peak before each block, and before the tail
    before[0] = -math.inf
    np.maximum.accumulate(highs, out=before[1:])
    flat = highs <= before[:-1]
    falls = [(before[:-1][flat], lows[flat])]  # (peak, lowest bar) of every block without a new high
    walk = [(body[~flat], before[:-1][~flat]), (equity[rows * DRAWDOWN_BLOCK:][None, :], before[-1:])]
    for bars, start in walk:
        if bars.size:
            peaks = np.maximum.accumulate(bars, axis=1)
            np.maximum(peaks, start[:, None], out=peaks)
            falls.append((peaks.ravel(), bars.ravel()))
    worst, worst_pct = -math.inf, 0.0
    for peak, low in falls:
        if len(peak):
            fall = peak - low
            worst = max(worst, float(fall.max()))
            positive = peak > 0
            if positive.any():
                worst_pct = max(worst_pct, float((fall[positive] / peak[positive]).max()))
    lowest = min(float(lows.min()) if rows else math.inf, float(equity[rows * DRAWDOWN_BLOCK:].min(initial=math.inf)))
    return worst, worst_pct, lowest


def _squares(values: np.ndarray) -> float:
    """The sum of squares in one pass, without BLAS (``np.dot`` would start OpenBLAS's threads, whose
    spinning takes the core an optimizer worker needs)."""
    return float(np.einsum("i,i->", values, values))


# -- a whole backtest --------------------------------------------------------------------------------


@dataclass
class BacktestRun:
    """A finished backtest: what ran, on what, and what it produced."""

    strategy: str
    params: dict[str, float]
    settings: ExecutionSettings
    series: list[Series]
    signals: list[Signals]
    simulation: Simulation
    path: str
    seconds: float

    @property
    def trades(self) -> list[TradeRecord]:
        return self.simulation.trades

    @property
    def end_equity(self) -> float:
        return self.simulation.end_equity

    @property
    def currency(self) -> str:
        """The tested symbols' quote currency, which every amount of the backtest is in (one: ``setup.series``)."""
        from gobot_hookspecs.money import quotes

        return "/".join(quotes(series.symbol for series in self.series))

    def metrics(self) -> dict[str, Any]:
        """Every summary number: the contract's trade metrics, and curve metrics from the bar curve."""
        from gobot_hookspecs import metrics as contract

        sim = self.simulation
        trade_part = contract.trade_metrics(sim.trades, sim.start_equity, curve=[]).as_dict()
        curve = curve_metrics(sim.timeline, sim.equity)
        trade_part.update({k: curve[k] for k in ("max_drawdown", "max_drawdown_pct", "sharpe", "sortino")})
        trade_part["annual_return"] = curve["annual_return"]
        trade_part["calmar"] = curve["calmar"]
        trade_part.update({
            "start_equity": sim.start_equity,
            "end_equity": sim.end_equity,
            "return_pct": (sim.end_equity / sim.start_equity - 1.0) * 100.0,
            "open_positions": len(sim.open_positions),
            "candles": sum(len(s) for s in self.series),
            "vetoed_entries": sum(sim.vetoes.values()),
        })
        return trade_part


def run(strategy: Strategy, params: dict[str, float], series: list[Series], settings: ExecutionSettings, *,
        gate: Gate | None = None, path: str = "auto", start_ms: int | None = None, end_ms: int | None = None,
        strategy_version: int | None = None, progress: ProgressFn | None = None,
        signals: list[Signals] | None = None) -> BacktestRun:
    """Backtest ``strategy`` with ``params`` over ``series`` (one portfolio); ``signals`` reuses
    signals computed earlier over the same series (the optimizer's walk-forward windows do)."""
    started = time.perf_counter()
    if not series:
        raise ValueError("nothing to backtest: no candles")
    if gate is None:
        gate = SimpleGate(settings.sizing)
    collecting = gc.isenabled()
    gc.disable()  # the run allocates many small objects and frees none: collector passes would be wasted work
    try:
        if signals is None:
            signals = [compute_signals(strategy, params, s, path, progress) for s in series]
        simulation = simulate(series, signals, settings, gate, strategy=strategy.name,
                              strategy_version=strategy_version, start_ms=start_ms, end_ms=end_ms)
    finally:
        if collecting:
            gc.enable()
    return BacktestRun(strategy.name, dict(params), settings, series, signals, simulation, signals[0].path,
                       time.perf_counter() - started)


def compare_paths(strategy: Strategy, params: dict[str, float], series: Series) -> list[str]:
    """Where ``vectorized()`` and ``signal()`` disagree (action, confidence, stop, target); empty = identical."""
    fast = compute_signals(strategy, params, series, "vectorized")
    slow = compute_signals(strategy, params, series, "per-bar")
    problems = []
    for name in ("action", "confidence", "stop_loss", "take_profit"):
        a, b = getattr(fast, name), getattr(slow, name)
        if a is None and b is None:
            continue
        a = a if a is not None else np.full(len(series), np.nan)
        b = b if b is not None else np.full(len(series), np.nan)
        if name == "confidence":  # only where a position would be opened
            mask = slow.action != 0
            a, b = np.where(mask, a, 0.0), np.where(mask, b, 0.0)
        differ = np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))
        if differ.size:
            i = int(differ[0])
            problems.append(f"{name} differs at {differ.size} bars, first at bar {i} "
                            f"({_utc(int(series.timestamp[i])).isoformat()}): vectorized {a[i]!r}, per-bar {b[i]!r}")
    return problems


def lookahead_check(strategy: Strategy, params: dict[str, float], series: Series, *, path: str = "auto",
                    cuts: int = 6, min_bars: int = 50) -> list[str]:
    """Re-run the strategy on truncated copies of ``series`` and report every earlier signal that
    changed: a strategy that peeks at later candles answers differently when they are cut off.
    Empty means no lookahead was seen at the ``cuts`` cut points."""
    full = compute_signals(strategy, params, series, path)
    n = len(series)
    points = sorted({int(x) for x in np.linspace(min(min_bars, n - 1), n - 1, cuts)} - {n})
    problems = []
    for cut in points:
        if cut < 2:
            continue
        part = series.between(None, int(series.timestamp[cut]))
        short = compute_signals(strategy, params, part, path)
        for name in ("action", "confidence"):
            a, b = getattr(full, name)[:cut], getattr(short, name)
            differ = np.flatnonzero(a != b)
            if differ.size:
                i = int(differ[0])
                problems.append(f"{name} at bar {i} ({_utc(int(series.timestamp[i])).isoformat()}) "
                                f"was {a[i]!r} with all {n} candles but {b[i]!r} with the first {cut}: "
                                "the strategy looks ahead")
                break
    return problems


# -- ctx.backtest: the validation phase's backtest -------------------------------------------------------


def run_backtest(strategy: Strategy, params: dict[str, float], candles: Candles, symbol: str, *,
                 start_equity: float = 1000.0, fee_percent: float = 0.1, slippage_percent: float = 0.0,
                 stop_loss_percent: float | None = 2.0, take_profit_percent: float | None = 4.0,
                 market: MarketRules | None = None) -> BacktestResult:
    """One symbol, all equity in each position: what ``ctx.backtest()`` runs (``BacktestResult``)."""
    settings = ExecutionSettings(fee_percent=fee_percent, slippage_percent=slippage_percent,
                                 stop_loss_percent=stop_loss_percent, take_profit_percent=take_profit_percent,
                                 start_equity=start_equity, sizing=Sizing("all_in"))
    series = series_from_candles(symbol, candles, market)
    if len(series) == 0:
        return BacktestResult(trades=[], start_equity=start_equity, end_equity=start_equity, candles=0)
    result = run(strategy, params, [series], settings)
    return BacktestResult(trades=[t.to_trade() for t in result.trades], start_equity=start_equity,
                          end_equity=result.end_equity, candles=len(series))

