"""The simulated exchange's fill rules, written once: the ``paper`` executor and the backtester both call them.

- A market order fills at its reference price (the next candle's open, or a close) moved against
  the taker by ``slippage_percent``: a buy pays more, a sell gets less.
- Every fill pays ``fee_percent`` of its notional.
- A position rests with the signal's stop-loss and take-profit, else ``[trading]``'s percentages
  away from the decision price (``protective_levels``, for the bot's intents and the backtester alike).
- A position's stop-loss and take-profit rest like exchange orders and are checked inside each
  candle: a candle touching both counts as the stop (the conservative rule, since a candle does
  not say which came first); a candle opening beyond the stop fills at that open; a stop fills
  like a market order (slippage against you), a take-profit at its own price.

Directions and sides are numbers: ``+1`` long (a buy), ``-1`` short (a sell). Pure functions on
floats, standard library only, so the backtester's loop can call them per trade. Third-party
simulators are welcome to use them too: ``tests/test_fill_model.py`` holds gobot's two to them.
"""

from __future__ import annotations

from typing import NamedTuple

LONG, SHORT = 1, -1
STOP_LOSS, TAKE_PROFIT = "stop_loss", "take_profit"


def market_price(price: float, side: int, slippage_percent: float) -> float:
    """Where a market order for ``side`` (``+1`` buy, ``-1`` sell) fills when the market is at ``price``."""
    return price * (1.0 + side * slippage_percent / 100.0)


def fee(amount: float, price: float, fee_percent: float) -> float:
    """The fee of a fill of ``amount`` at ``price``: ``fee_percent`` of its notional, in the quote currency."""
    return amount * price * fee_percent / 100.0


def protective_levels(direction: int, price: float, stop: float | None, target: float | None,
                      stop_loss_percent: float | None,
                      take_profit_percent: float | None) -> tuple[float | None, float | None]:
    """The stop-loss and take-profit a ``direction`` position entered near ``price`` rests with: the
    signal's own ``stop`` and ``target``, else ``*_percent`` away from ``price`` (a percent of None: none)."""
    if stop is None and stop_loss_percent is not None:
        stop = price * (1 - direction * stop_loss_percent / 100)
    if target is None and take_profit_percent is not None:
        target = price * (1 + direction * take_profit_percent / 100)
    return stop, target


def stop_touched(direction: int, stop: float | None, high: float, low: float) -> bool:
    """Whether a candle reaches the stop of a ``direction`` position (a long's stop lies below)."""
    return stop is not None and (low <= stop if direction > 0 else high >= stop)


def target_touched(direction: int, target: float | None, high: float, low: float) -> bool:
    """Whether a candle reaches the take-profit of a ``direction`` position (a long's target lies above)."""
    return target is not None and (high >= target if direction > 0 else low <= target)


class Exit(NamedTuple):
    """A resting order that filled: its price and why (``stop_loss`` or ``take_profit``)."""

    price: float
    reason: str


def resting_exit(direction: int, stop: float | None, target: float | None, open_: float, high: float, low: float,
                 slippage_percent: float) -> Exit | None:
    """The exit of a ``direction`` position with a resting ``stop`` and ``target`` (None = none)
    inside one candle (``open_``, ``high``, ``low``); None when the candle touches neither."""
    if stop_touched(direction, stop, high, low):  # also when the target was touched: the stop counts
        beyond = min(open_, stop) if direction > 0 else max(open_, stop)  # a gap through the stop fills at the open
        return Exit(market_price(beyond, -direction, slippage_percent), STOP_LOSS)
    if target_touched(direction, target, high, low):
        return Exit(target, TAKE_PROFIT)
    return None
