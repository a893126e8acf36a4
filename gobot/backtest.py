"""A small per-bar backtester over one symbol, used by the validation phase (``ctx.backtest``).

Semantics match the paper executor: a signal on a candle's close fills at the next candle's
open (plus slippage and fee); stop-loss and take-profit are checked inside every candle from
the entry candle on, and when one candle touches both, the stop-loss counts (the conservative
rule). An opposite signal exits at the next open. A position still open at the end is marked
to the last close.
"""

from __future__ import annotations

from datetime import datetime, timezone

from gobot_hookspecs import Action, BacktestResult, Candles, Strategy, Trade

LOOKBACK = 200  # candles the strategy sees per bar


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def run_backtest(
    strategy: Strategy,
    params: dict[str, float],
    candles: Candles,
    symbol: str,
    *,
    start_equity: float = 1000.0,
    fee_percent: float = 0.1,
    slippage_percent: float = 0.0,
    stop_loss_percent: float = 2.0,
    take_profit_percent: float = 4.0,
    warmup: int = 1,
) -> BacktestResult:
    fee, slip = fee_percent / 100.0, slippage_percent / 100.0
    cash = start_equity
    trades: list[Trade] = []
    position: dict | None = None
    pending: Action | None = None
    n = len(candles)
    o, h, lo, c, ts = candles.open, candles.high, candles.low, candles.close, candles.timestamp

    def close(exit_price: float, i: int, reason: str) -> None:
        nonlocal cash, position
        sign = 1 if position["direction"] is Action.LONG else -1
        exit_fee = abs(exit_price * position["amount"]) * fee
        gross = sign * (exit_price - position["entry"]) * position["amount"]
        cash += gross - exit_fee
        trades.append(
            Trade(
                symbol=symbol,
                direction=position["direction"],
                amount=position["amount"],
                entry_price=position["entry"],
                exit_price=exit_price,
                opened_at=_time(position["opened"]),
                closed_at=_time(ts[i]),
                fees=position["fee"] + exit_fee,
                pnl=gross - position["fee"] - exit_fee,
                exit_reason=reason,
            )
        )
        position = None

    for i in range(n):
        if pending is not None:
            if position is not None and position["direction"] is not pending:
                sign = 1 if position["direction"] is Action.LONG else -1
                close(o[i] * (1 - sign * slip), i, "signal")
            elif position is None:
                sign = 1 if pending is Action.LONG else -1
                entry = o[i] * (1 + sign * slip)
                notional = cash
                amount = notional / entry
                entry_fee = notional * fee
                cash -= entry_fee
                position = {
                    "direction": pending,
                    "entry": entry,
                    "amount": amount,
                    "fee": entry_fee,
                    "opened": ts[i],
                    "stop": entry * (1 - sign * stop_loss_percent / 100),
                    "target": entry * (1 + sign * take_profit_percent / 100),
                }
            pending = None
        if position is not None:
            is_long = position["direction"] is Action.LONG
            stop_hit = lo[i] <= position["stop"] if is_long else h[i] >= position["stop"]
            target_hit = h[i] >= position["target"] if is_long else lo[i] <= position["target"]
            if stop_hit:  # also when both are touched: the conservative rule
                gap = min(o[i], position["stop"]) if is_long else max(o[i], position["stop"])
                close(gap, i, "stop_loss")
            elif target_hit:
                close(position["target"], i, "take_profit")
        if i + 1 >= warmup and i + 1 < n:
            action = strategy.signal(symbol, _window(candles, i), params).action
            if action is not Action.HOLD:
                pending = action
    end_equity = cash
    if position is not None:
        sign = 1 if position["direction"] is Action.LONG else -1
        end_equity += sign * (c[-1] - position["entry"]) * position["amount"]
    return BacktestResult(trades=trades, start_equity=start_equity, end_equity=end_equity, candles=n)


def _window(candles: Candles, i: int) -> Candles:
    start = max(0, i + 1 - LOOKBACK)
    return Candles.model_construct(
        timeframe=candles.timeframe,
        **{k: getattr(candles, k)[start : i + 1] for k in ("timestamp", "open", "high", "low", "close", "volume")},
    )
