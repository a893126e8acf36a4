"""``paper``: the simulated executor, the default when no exchange executor is enabled.

A market order placed during a cycle fills at the open of the next candle (plus
``slippage_percent``, against you) and pays ``fee_percent`` of its notional. Stop-loss and
take-profit rest like exchange orders and are checked inside every later candle, the entry
candle included; a candle that touches both counts as a stop-loss (the conservative rule),
and a candle that opens beyond the stop fills at its open. All of it lives in the bot's
persisted state, so a restart continues exactly where it stopped. Off in live mode.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field

from gobot_hookspecs import Fill, Order, Side, hookimpl

NAME = "paper"


class PaperConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fee_percent: float = Field(0.1, ge=0, lt=100, description="fee per fill, % of notional")
    slippage_percent: float = Field(0.05, ge=0, lt=100, description="market fills move against you by this, %")


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


class Paper:
    @hookimpl
    def gobot_config_model(self):
        return PaperConfig

    @staticmethod
    def _book(ctx) -> dict:
        book = ctx.plugin_state(NAME)
        book["carry_over"] = True  # on the wall clock a new run keeps the paper account's orders and stops
        return book

    @hookimpl(trylast=True)
    def gobot_execute_order(self, ctx, intent):
        book = self._book(ctx)
        pending = book.setdefault("pending", {})
        if intent.client_order_id not in pending:  # the same client order id never makes a second order
            pending[intent.client_order_id] = {
                "symbol": intent.symbol,
                "side": intent.side.value,
                "purpose": intent.purpose,
                "amount": intent.amount,
                "created_ms": int(intent.created_at.timestamp() * 1000),
                "stop_loss": intent.stop_loss,
                "take_profit": intent.take_profit,
            }
        return Order(
            id=f"paper-{intent.client_order_id}",
            client_order_id=intent.client_order_id,
            intent_id=intent.id,
            symbol=intent.symbol,
            side=intent.side,
            purpose=intent.purpose,
            amount=intent.amount,
            stop_loss=intent.stop_loss,
            take_profit=intent.take_profit,
            status="new",
            created_at=intent.created_at,
        )

    @hookimpl
    def gobot_sync_executions(self, ctx, snapshots):
        config = ctx.plugin_config(NAME) or PaperConfig()
        book = self._book(ctx)
        pending, watch, last_ts = book.setdefault("pending", {}), book.setdefault("watch", {}), book.setdefault("last_ts", {})
        fills: list[Fill] = []
        for snap in snapshots:
            candles = snap.candles
            if not candles.timestamp:
                continue
            since = last_ts.get(snap.symbol)
            for i, ts in enumerate(candles.timestamp):
                if since is not None and ts <= since:
                    continue
                if since is None:  # first look at this symbol: start from its newest candle
                    break
                fills.extend(self._fill_pending(pending, watch, snap.symbol, ts, candles.open[i], config))
                fill = self._check_stops(watch, snap.symbol, ts, candles.open[i], candles.high[i], candles.low[i], config)
                if fill is not None:
                    fills.append(fill)
            last_ts[snap.symbol] = candles.timestamp[-1]
        return fills

    def _fill_pending(self, pending, watch, symbol, ts, open_price, config):
        fills = []
        for coid, order in sorted(pending.items(), key=lambda item: item[1]["created_ms"]):
            if order["symbol"] != symbol or order["created_ms"] > ts:
                continue
            del pending[coid]
            side = Side(order["side"])
            price = open_price * (1 + config.slippage_percent / 100 * (1 if side is Side.BUY else -1))
            if order["purpose"] == "close":
                position = watch.pop(symbol, None)
                amount = position["amount"] if position else order["amount"]
            else:
                amount = order["amount"]
                watch[symbol] = {
                    "long": side is Side.BUY,
                    "amount": amount,
                    "stop": order["stop_loss"],
                    "target": order["take_profit"],
                    "coid": coid,
                }
            fills.append(
                Fill(order_id=f"paper-{coid}", client_order_id=coid, symbol=symbol, side=side, purpose=order["purpose"],
                     amount=amount, price=price, fee=amount * price * config.fee_percent / 100, time=_time(ts),
                     reason="signal")
            )
        return fills

    def _check_stops(self, watch, symbol, ts, open_price, high, low, config):
        position = watch.get(symbol)
        if position is None:
            return None
        long, stop, target = position["long"], position["stop"], position["target"]
        stop_hit = stop is not None and (low <= stop if long else high >= stop)
        target_hit = target is not None and (high >= target if long else low <= target)
        if not (stop_hit or target_hit):
            return None
        del watch[symbol]
        if stop_hit:  # both touched: the stop counts
            price = min(open_price, stop) if long else max(open_price, stop)
            price *= 1 - config.slippage_percent / 100 * (1 if long else -1)
            reason, suffix = "stop_loss", "sl"
        else:
            price, reason, suffix = target, "take_profit", "tp"
        amount = position["amount"]
        return Fill(order_id=f"paper-{position['coid']}-{suffix}", client_order_id=f"{position['coid']}-{suffix}",
                    symbol=symbol, side=Side.SELL if long else Side.BUY, purpose="close", amount=amount, price=price,
                    fee=amount * price * config.fee_percent / 100, time=_time(ts), reason=reason)
