"""The paper twin: every order an exchange executor sent, filled again by the paper executor's rules
(``gobot_hookspecs.fills``) on the candles the bot scanned — a shadow, no order is sent.

A twin is a plain dict kept in the plugin state (it survives restarts), keyed by the opening client
order id. It enters at the open of the first candle opening at or after the live order was sent, with
``slippage_percent`` against it and ``fee_percent`` of its notional, like ``paper``; it then rests with
the order's stop-loss and take-profit, checked inside every candle from its entry candle on
(``fills.resting_exit``). It exits:

- at the next candle's open after the live close order was sent (the strategy closed), or
- by its own stop or target, or
- when the live trade ended otherwise (closed outside, liquidated) or ended by a stop or target the twin's
  candles never touched: at the open of the first candle ``grace_candles`` after the live exit's candle.

Each function takes the state and one candle; nothing here knows about hooks or the bot.
"""

from __future__ import annotations

from typing import Any

from gobot_hookspecs import fills

OPEN_PRICES_KEPT = 240  # (candle open time, open) pairs kept per symbol: the fill-delay lookups


def new_twin(coid: str, symbol: str, side: int, amount: float, created_ms: int, stop: float | None,
             target: float | None, strategy: str | None = None, version: int | None = None,
             paper_only: bool = False) -> dict[str, Any]:
    """A twin waiting for its entry candle (``side``: ``+1`` long, ``-1`` short)."""
    return {"coid": coid, "symbol": symbol, "side": side, "amount": amount, "created_ms": created_ms,
            "stop": stop, "target": target, "strategy": strategy, "version": version, "paper_only": paper_only,
            "entry_ms": None, "entry_open": None, "entry_price": None, "entry_fee": 0.0,
            "close_ms": None, "exit_ms": None, "exit_open": None, "exit_price": None, "exit_fee": 0.0,
            "exit_reason": None, "live": None, "live_exit_ms": None, "live_sent": True}


def step(twin: dict[str, Any], ts: int, open_: float, high: float, low: float, timeframe_ms: int,
         fee_percent: float, slippage_percent: float, grace_candles: int) -> None:
    """Advance one twin through the candle opening at ``ts``."""
    if twin["exit_ms"] is not None:
        return
    side = twin["side"]
    if twin["entry_ms"] is None:
        if ts < twin["created_ms"]:
            return
        price = fills.market_price(open_, side, slippage_percent)
        twin.update(entry_ms=ts, entry_open=open_, entry_price=price,
                    entry_fee=fills.fee(twin["amount"], price, fee_percent))
    if twin["close_ms"] is not None and ts >= twin["close_ms"]:
        _exit(twin, ts, open_, fills.market_price(open_, -side, slippage_percent), "signal", fee_percent)
        return
    live_exit = twin["live_exit_ms"]
    if live_exit is not None and ts >= live_exit - live_exit % timeframe_ms + (grace_candles + 1) * timeframe_ms:
        _exit(twin, ts, open_, fills.market_price(open_, -side, slippage_percent), "follow_live", fee_percent)
        return
    hit = fills.resting_exit(side, twin["stop"], twin["target"], open_, high, low, slippage_percent)
    if hit is not None:
        _exit(twin, ts, open_, hit.price, hit.reason, fee_percent)


def _exit(twin: dict[str, Any], ts: int, open_: float, price: float, reason: str, fee_percent: float) -> None:
    twin.update(exit_ms=ts, exit_open=open_, exit_price=price, exit_reason=reason,
                exit_fee=fills.fee(twin["amount"], price, fee_percent))


def pnl(twin: dict[str, Any]) -> float:
    """The closed twin's P&L net of fees, in the quote currency."""
    gross = twin["side"] * (twin["exit_price"] - twin["entry_price"]) * twin["amount"]
    return gross - twin["entry_fee"] - twin["exit_fee"]


def remember_open(opens: list[list[float]], ts: int, open_: float) -> None:
    """Keep the candle's open for the fill-delay lookups (the newest ``OPEN_PRICES_KEPT``)."""
    if opens and opens[-1][0] >= ts:
        return
    opens.append([ts, open_])
    del opens[:-OPEN_PRICES_KEPT]


def open_at(opens: list[list[float]], time_ms: int, timeframe_ms: int) -> float | None:
    """The open of the candle containing ``time_ms``; None when it is not (or no longer) known."""
    start = time_ms - time_ms % timeframe_ms
    for ts, open_ in reversed(opens):
        if ts == start:
            return open_
        if ts < start:
            return None
    return None
