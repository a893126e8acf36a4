"""``paper``: the simulated executor, the default when no exchange executor is enabled.

A market order placed during a cycle fills at the open of the next candle (plus
``slippage_percent``, against you) and pays ``fee_percent`` of its notional. Stop-loss and
take-profit rest like exchange orders and are checked inside every later candle, the entry
candle included; a candle that touches both counts as a stop-loss (the conservative rule),
and a candle that opens beyond the stop fills at its open. The rules are the contract's
``gobot_hookspecs.fills``, the same the backtester uses. Orders waiting for their candle and the
open positions (the contract's ``Position``) live in the bot's persisted state, so a restart
continues exactly where it stopped. Off in live mode.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field

from gobot_hookspecs import Action, Fill, Order, PluginConfig, Position, Side, fills, hookimpl

NAME = "paper"


class PaperConfig(PluginConfig):
    fee_percent: float = Field(0.1, ge=0, lt=100, description="fee per fill, % of notional")
    slippage_percent: float = Field(0.05, ge=0, lt=100, description="market fills move against you by this, %")


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _watched(symbol: str, entry: dict) -> Position:
    """A position from the plugin state's ``watch``. State files written before paper kept the
    contract's ``Position`` there hold ``long``/``amount``/``stop``/``target``/``coid``: they still
    load (their entry price and time were not recorded, and paper needs neither)."""
    if "long" in entry:
        return Position(symbol=symbol, direction=Action.LONG if entry["long"] else Action.SHORT, amount=entry["amount"],
                        entry_price=0.0, opened_at=_time(0), stop_loss=entry["stop"], take_profit=entry["target"],
                        client_order_id=entry["coid"])
    return Position.model_validate(entry)


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
        config = PaperConfig.of(ctx, NAME)
        book = self._book(ctx)
        pending, watch = book.setdefault("pending", {}), book.setdefault("watch", {})
        last_ts = book.setdefault("last_ts", {})
        made: list[Fill] = []
        for snap in snapshots:
            candles = snap.candles
            if not candles.timestamp:
                continue
            since = last_ts.get(snap.symbol)
            # first look at this symbol (since None): start from its newest candle, nothing to replay
            new = [] if since is None else [i for i, ts in enumerate(candles.timestamp) if ts > since]
            for i in new:
                ts = candles.timestamp[i]
                made.extend(self._fill_pending(pending, watch, snap.symbol, ts, candles.open[i], config))
                fill = self._check_stops(watch, snap.symbol, ts, candles.open[i], candles.high[i], candles.low[i],
                                         config)
                if fill is not None:
                    made.append(fill)
            last_ts[snap.symbol] = candles.timestamp[-1]
        return made

    def _fill_pending(self, pending, watch, symbol, ts, open_price, config):
        made = []
        for coid, order in sorted(pending.items(), key=lambda item: item[1]["created_ms"]):
            if order["symbol"] != symbol or order["created_ms"] > ts:
                continue
            del pending[coid]
            side = Side(order["side"])
            price = fills.market_price(open_price, 1 if side is Side.BUY else -1, config.slippage_percent)
            amount = order["amount"]
            if order["purpose"] == "close":
                position = watch.pop(symbol, None)
                amount = _watched(symbol, position).amount if position else amount
            fee = fills.fee(amount, price, config.fee_percent)
            if order["purpose"] == "open":
                watch[symbol] = Position(
                    symbol=symbol, direction=Action.LONG if side is Side.BUY else Action.SHORT, amount=amount,
                    entry_price=price, entry_fee=fee, opened_at=_time(ts), stop_loss=order["stop_loss"],
                    take_profit=order["take_profit"], client_order_id=coid,
                ).model_dump(mode="json")
            made.append(
                Fill(order_id=f"paper-{coid}", client_order_id=coid, symbol=symbol, side=side, purpose=order["purpose"],
                     amount=amount, price=price, fee=fee, time=_time(ts), reason="signal")
            )
        return made

    def _check_stops(self, watch, symbol, ts, open_price, high, low, config):
        if symbol not in watch:
            return None
        position = _watched(symbol, watch[symbol])
        hit = position.resting_exit(open_price, high, low, config.slippage_percent)
        if hit is None:
            return None
        del watch[symbol]
        suffix = "sl" if hit.reason == fills.STOP_LOSS else "tp"
        coid, amount = position.client_order_id, position.amount
        return Fill(order_id=f"paper-{coid}-{suffix}", client_order_id=f"{coid}-{suffix}", symbol=symbol,
                    side=Side.SELL if position.sign > 0 else Side.BUY, purpose="close", amount=amount, price=hit.price,
                    fee=fills.fee(amount, hit.price, config.fee_percent), time=_time(ts), reason=hit.reason)
