"""Orders on Binance: idempotent placement, protective orders, fill polling, start-up reconciliation.

Idempotency is "look before you send": every order carries the intent's deterministic client
order id, and before sending (the first time, and again after a timeout, a dropped connection or
a 5xx) the order is looked up by that id. Binance rejects a repeated client order id only while
the first order is still open, so a filled market order would otherwise execute twice. A lookup
that finds nothing is trusted only once the request's ``recvWindow`` has passed: after that
Binance refuses to execute the original request, so sending again cannot double it.

Every order the plugin placed is tracked in ``ctx.plugin_state("binance")["orders"]`` under its
client order id, with its role (``entry``, ``close``, ``sl``, ``tp``, ``oco``) and whether its fill
was reported, so each fill is reported exactly once, also across restarts.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import datetime, timezone
from typing import Any

from gobot_hookspecs import Alert, ExecutionError, Fill, Funding, Order, OrderIntent, Priority, Severity, Side

from .client import GarbledAnswer, classify, failure, floor_to_step, priority, redact

log = logging.getLogger(__name__)
NAME = "binance"
FINAL = ("filled", "canceled", "rejected", "expired", "not_placed")
STATUSES = ("open", "closed", "canceled", "expired", "rejected")  # ccxt's


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def readable(order: Any, coid: str | None) -> dict:
    """An answer about an order that the plugin may act on; otherwise ``GarbledAnswer``.

    It must name the order (``coid``; None for an order found by its exchange id), carry a status
    ccxt knows and a finite filled amount, and a finite positive price once anything filled. An
    answer that does not is treated like a dropped connection — the order is looked up again later
    — never as a fill, a rejection or proof that the order does not exist."""
    if not isinstance(order, dict):
        raise GarbledAnswer(f"order {coid}: the answer is not an order: {type(order).__name__}")
    info = order.get("info") if isinstance(order.get("info"), dict) else {}
    named = order.get("clientOrderId") or info.get("clientAlgoId")
    if coid is not None and named != coid:
        raise GarbledAnswer(f"order {coid}: the answer names order {named!r}")
    status, filled = order.get("status"), order.get("filled")
    if status not in STATUSES:
        raise GarbledAnswer(f"order {coid}: unknown status {status!r}")
    if (status != "open" or filled is not None) and not (is_number(filled) and filled >= 0):
        raise GarbledAnswer(f"order {coid}: filled amount {filled!r}")
    if info.get("algoId"):  # a triggered conditional order's fill is on the order it created (checked there)
        return order
    if status == "closed" and not filled:
        raise GarbledAnswer(f"order {coid}: filled, but of nothing")  # "closed" means filled in full
    price = order.get("average") or order.get("price")
    if filled and not (is_number(price) and price > 0):
        raise GarbledAnswer(f"order {coid}: filled {filled} at price {price!r}")
    return order


def exit_reason(record: dict) -> str:
    """Why a fill of this tracked order closes a position: its protective role, else its own reason."""
    return {"sl": "stop_loss", "tp": "take_profit"}.get(record["role"], record.get("reason") or "signal")


def order_from_trades(trades: list[dict], coid: str | None) -> dict:
    """An order in ccxt's shape made of its trades (from ``fetch_my_trades``): filled, average, fees."""
    for trade in trades:
        if not all(is_number(trade.get(k)) and trade[k] > 0 for k in ("price", "amount")):
            raise GarbledAnswer(f"order {coid}: a trade of {trade.get('amount')!r} at {trade.get('price')!r}")
    filled = sum(t["amount"] for t in trades)
    return {"id": str(trades[0].get("order")), "clientOrderId": coid, "status": "closed", "filled": filled,
            "average": sum(t["price"] * t["amount"] for t in trades) / filled, "timestamp": trades[0].get("timestamp"),
            "lastTradeTimestamp": trades[-1].get("timestamp"), "fees": [t["fee"] for t in trades if t.get("fee")],
            "info": {"trades": [t.get("info") for t in trades]}}


def _time(ms: int | None) -> datetime:
    return datetime.fromtimestamp((ms or time.time() * 1000) / 1000, tz=timezone.utc)


class Trader:
    """The execution side of the ``binance`` plugin, for one exchange connection."""

    def __init__(self, exchange: Any, config: Any, market_type: str, symbols: dict[str, str]):
        self.ex = exchange
        self.config = config
        self.futures = market_type == "futures"
        self.symbols = symbols  # core symbol -> ccxt symbol
        self.sleep = asyncio.sleep
        self.clock = time.time
        from .funding import FundingWatch
        from .reconcile import Reconciler

        self.reconciler = Reconciler(self)
        self.funding = FundingWatch(self)

    # -- helpers ------------------------------------------------------------------------------------

    def book(self, ctx: Any) -> dict[str, Any]:
        state = ctx.plugin_state(NAME)
        state.setdefault("orders", {})
        state.setdefault("protection", {})
        state.setdefault("margin", {})
        state["carry_over"] = True  # the account's orders and protection outlive a run (see ctx.plugin_state)
        return state

    def market(self, symbol: str) -> dict:
        return self.ex.market(self.symbols.get(symbol, symbol))

    def amount(self, symbol: str, amount: float) -> float:
        """Rounded down to the market's lot step (never up: rounding up could exceed a cap)."""
        return floor_to_step(amount, (self.market(symbol).get("precision") or {}).get("amount"))

    def price(self, symbol: str, price: float) -> float:
        return float(self.ex.price_to_precision(self.symbols.get(symbol, symbol), price))

    async def lookup(self, ccxt_symbol: str, coid: str, *, trigger: bool = False,
                     order_list: bool = False) -> dict | None:
        """The order (or OCO order list) with this client order id, or None if the exchange has none."""
        import ccxt

        try:
            if order_list:
                response = await self.ex.privateGetOrderList({"origClientOrderId": coid})
                if not isinstance(response, dict) or response.get("orderListId") is None:
                    raise GarbledAnswer(f"order list {coid}: the answer names no order list")
                return {"id": str(response.get("orderListId")), "clientOrderId": coid, "status": "open",
                        "info": response}
            params = {"clientOrderId": coid} | ({"trigger": True} if trigger else {})
            return readable(await self.ex.fetch_order(None, ccxt_symbol, params), coid)
        except ccxt.OrderNotFound:
            return None
        except ccxt.ExchangeError as exc:
            if order_list and ("does not exist" in str(exc) or "-2011" in str(exc)):
                return None
            raise

    async def place(self, ccxt_symbol: str, coid: str, send: Any, *, trigger: bool = False, order_list: bool = False,
                    symbol: str | None = None, intent_id: str | None = None) -> dict:
        """Send an order exactly once: look before the first send and before every retry (see the module)."""
        last_error: BaseException | None = None
        sent_at: float | None = None  # the last send whose outcome is unknown
        for attempt in range(self.config.max_attempts):
            existing = await self._look(ccxt_symbol, coid, trigger, order_list, sent_at, symbol, intent_id)
            if existing is not None:
                return existing
            sent_at = self.clock()
            try:
                answer = await send()
                return answer if order_list else readable(answer, coid)
            except Exception as exc:  # noqa: BLE001 - classified below
                kind = classify(exc)
                if kind not in ("ambiguous", "error"):  # only the exchange's clear "no" means it was not placed
                    raise failure(exc, kind, symbol=symbol, intent_id=intent_id) from exc
                last_error = exc
                log.warning("binance: %s sending %s; looking it up before any retry", type(exc).__name__, coid)
                await self.sleep(self.config.retry_backoff * (2 ** attempt))
        assert last_error is not None
        raise failure(last_error, "ambiguous", symbol=symbol, intent_id=intent_id) from last_error

    async def _look(self, ccxt_symbol: str, coid: str, trigger: bool, order_list: bool, sent_at: float | None,
                    symbol: str | None, intent_id: str | None) -> dict | None:
        """The order, if the exchange has it. After a send of unknown outcome "not found" is only
        believed once that request's recvWindow has passed: until then the exchange may still execute it."""
        deadline = sent_at + self.config.recv_window_ms / 1000 if sent_at is not None else 0.0
        errors = 0
        while True:
            try:
                found = await self.lookup(ccxt_symbol, coid, trigger=trigger, order_list=order_list)
            except Exception as exc:  # noqa: BLE001 - classified below
                kind = classify(exc)
                errors += 1
                if kind != "ambiguous" or errors >= self.config.max_attempts:
                    raise failure(exc, kind, symbol=symbol, intent_id=intent_id) from exc
                await self.sleep(self.config.retry_backoff * (2 ** errors))
                continue
            if found is not None:
                return found
            wait = deadline - self.clock()
            if wait <= 0:
                return None
            await self.sleep(min(wait, max(self.config.retry_backoff, 0.05)))

    # -- entering and leaving ---------------------------------------------------------------------------

    async def execute(self, ctx: Any, intent: OrderIntent) -> Order:
        """Send an entry, or a close: its stops cancelled first, and placed again if the close does not
        go through (refused by the size check or by the exchange before it was placed)."""
        if intent.purpose != "close":
            return await self._send(ctx, intent, None)
        book = self.book(ctx)
        protection = dict(book["protection"].get(intent.symbol) or {})  # the stops this close cancels
        with priority(Priority.CRITICAL):
            await self.cancel_protection(ctx, intent.symbol)
            try:
                order = await self._send(ctx, intent, protection.get("entry"))
            except Exception as exc:
                if intent.client_order_id not in book["orders"]:  # refused: the exchange has no such order
                    error = getattr(exc, "error", None)
                    await self.close_refused(ctx, intent.symbol, intent.client_order_id, protection,
                                             getattr(error, "kind", "error"),
                                             redact(getattr(error, "message", "") or str(exc)))
                raise
            if order.status == "rejected":
                await self.close_refused(ctx, intent.symbol, intent.client_order_id, protection, "size", order.reason,
                                         held=order.amount)
            return order

    async def _send(self, ctx: Any, intent: OrderIntent, protected: str | None) -> Order:
        """The market order of an entry or a close (``protected``: the entry whose stops the close cancelled)."""
        book = self.book(ctx)
        ccxt_symbol = self.symbols.get(intent.symbol, intent.symbol)
        market = self.ex.market(ccxt_symbol)
        closing = intent.purpose == "close"
        with priority(Priority.CRITICAL if closing else intent.priority):
            if closing:
                amount = await self._close_amount(intent)
            else:
                if self.futures:
                    await self._ensure_leverage(ctx, ccxt_symbol)
                amount = self.amount(intent.symbol, intent.amount)
            problem = self._size_problem(market, amount, intent.reference_price, closing)
            if problem:
                return self._order(ctx, intent, None, amount, "rejected", problem)
            params: dict[str, Any] = {"clientOrderId": intent.client_order_id}
            if closing and self.futures:
                params["reduceOnly"] = True
            book["orders"][intent.client_order_id] = {
                "symbol": intent.symbol, "role": "close" if closing else "entry", "purpose": intent.purpose,
                "side": intent.side.value, "amount": amount, "status": "sending", "reported": False,
                "stop_loss": intent.stop_loss, "take_profit": intent.take_profit, "reason": intent.reason or "signal",
                "intent_id": intent.id, "price": intent.reference_price,
            } | ({"entry": protected} if closing and protected else {})
            try:
                placed = await self.place(
                    ccxt_symbol, intent.client_order_id,
                    lambda: self.ex.create_order(ccxt_symbol, "market", intent.side.value, amount, None, dict(params)),
                    symbol=intent.symbol, intent_id=intent.id,
                )
            except Exception as exc:
                record = book["orders"][intent.client_order_id]
                # An ambiguous failure may still have placed it: keep looking for it in later cycles.
                record["status"] = ("unknown"
                                    if getattr(getattr(exc, "error", None), "kind", "") in ("network", "timeout")
                                    else "rejected")
                if record["status"] == "rejected":
                    book["orders"].pop(intent.client_order_id, None)
                raise
            return await self._placed(ctx, intent, placed, amount)

    async def _placed(self, ctx: Any, intent: OrderIntent, placed: dict, amount: float) -> Order:
        """The placing answer booked: a fill protected; an order the exchange ended at once (a market
        order EXPIRED in a thin book, or by its time in force) booked with its cause, and, with nothing
        filled, answered as ``canceled`` so that the core stops waiting for it (it is never sent again)."""
        coid = intent.client_order_id
        record = self.book(ctx)["orders"][coid]
        status = ended = self._status(placed)
        reason = ""
        if ended in ("canceled", "expired"):
            reason = self.book_unfilled(ctx, coid, record, ended, placed)
            if float(placed.get("filled") or 0) > 0:
                status = "filled"  # what filled is the position; the rest is booked as ended above
        if status == "filled":
            try:
                placed = dict(placed, fees=await self._commissions(self.symbols.get(intent.symbol, intent.symbol),
                                                                   coid, placed))
            except GarbledAnswer as exc:  # asked for again when the fill is synced
                log.warning("binance: %s", exc)
                placed = dict(placed, fees=[])
        record["status"], record["id"] = status, str(placed.get("id"))
        if placed.get("fees"):  # only the placing answer lists the fills' commissions (a later query has none)
            record["fees"] = placed["fees"]
        if ended in ("canceled", "expired"):
            await self.protect_rest(ctx, record, float(placed.get("filled") or 0))
        if status in ("canceled", "expired"):  # ended unfilled: answered now, so never reported again by the sync
            record["reported"] = True
            return self._order(ctx, intent, placed, amount, "canceled", reason)
        if status == "filled" and intent.purpose != "close":
            await self.protect(ctx, coid, placed)
        return self._order(ctx, intent, placed, amount, status, reason)

    async def protect_rest(self, ctx: Any, record: dict, filled: float) -> None:
        """A close that ended before all of it filled: the stops it cancelled before it was sent are
        placed again for what the position still holds. Other orders: nothing."""
        if record["role"] == "close":
            await self.protect_again(ctx, record["symbol"], record.get("entry"), float(record["amount"]) - filled)

    async def protect_again(self, ctx: Any, symbol: str, entry: str | None, held: float) -> bool:
        """The stop and target a close cancelled, placed again for ``held`` under the next generation of
        client order ids (``<entry>-sl2``...: the look-before-send would find the cancelled ones), unless
        the position has its protection already. Whether they were placed again."""
        book = self.book(ctx)
        rest = self.amount(symbol, held)
        if entry not in book["orders"] or symbol in book["protection"] or rest <= 0:
            return False
        book.setdefault("generation", {})[entry] = book.get("generation", {}).get(entry, 1) + 1
        await self.protect(ctx, entry, {"filled": rest})
        return symbol in book["protection"] and book["protection"][symbol].get("mode") != "pending"

    async def close_refused(self, ctx: Any, symbol: str, coid: str, protection: dict, cause: str, reason: str,
                            held: float | None = None) -> None:
        """A close that did not go through (the size check refused it, or the exchange before placing it):
        the position is still held, so the stop and target it cancelled are placed again for the amount
        they covered (``held``: the exchange's count, when known); audited (``binance_close_refused``)
        and alerted with the cause."""
        amount = held if held else float(protection.get("amount") or 0)
        placed = bool(protection) and await self.protect_again(ctx, symbol, protection.get("entry"), amount)
        text = (f"the close {coid} was refused ({cause}): {reason}; the position stays open"
                + ("; its stop and target are on the exchange again" if placed else ""))
        ctx.audit("binance_close_refused", symbol=symbol, client_order_id=coid, cause=cause, reason=reason,
                  amount=self.amount(symbol, amount), protected_again=placed)
        ctx.alert(Alert(kind="close_refused", title=f"{symbol}: close refused, position still open", text=text,
                        severity=Severity.WARNING if placed or not protection else Severity.CRITICAL,
                        data={"symbol": symbol, "cause": cause, "client_order_id": coid}))

    @staticmethod
    def book_unfilled(ctx: Any, coid: str, record: dict, status: str, order: dict) -> str:
        """An entry or close the exchange ended (``expired``, ``canceled``) before all of it filled:
        audited (``binance_order_ended``) with its cause and the amount that did not fill; the reason."""
        if record.get("ended"):  # booked at placement: the sync finds the same answer
            return record["ended"]
        ordered, filled = float(record["amount"]), float(order.get("filled") or 0)
        reason = (f"{status} on the exchange, nothing filled" if filled <= 0
                  else f"{status} on the exchange with {filled:g} of {ordered:g} filled, {ordered - filled:g} not")
        record["ended"] = reason
        if record["role"] in ("entry", "close"):
            ctx.audit("binance_order_ended", symbol=record["symbol"], client_order_id=coid, cause=status,
                      ordered=ordered, filled=filled, unfilled=max(0.0, ordered - filled), reason=reason)
        return reason

    def _size_problem(self, market: dict, amount: float, price: float, closing: bool) -> str:
        limits = market.get("limits") or {}
        minimum = (limits.get("amount") or {}).get("min")
        if amount <= 0 or (minimum and amount < minimum):
            return (f"amount {amount:g} below the market's lot size minimum {minimum:g}" if minimum
                    else f"amount {amount:g} rounds to nothing")
        min_cost = (limits.get("cost") or {}).get("min")
        if not closing and min_cost and amount * price < min_cost:
            return f"notional {amount * price:.2f} below the market's minimum {min_cost:g}"
        return ""

    async def _close_amount(self, intent: OrderIntent) -> float:
        ccxt_symbol = self.symbols.get(intent.symbol, intent.symbol)
        if self.futures:
            positions = await self.ex.fetch_positions([ccxt_symbol])
            held = sum(abs(float(p.get("contracts") or 0)) for p in positions if p.get("symbol") == ccxt_symbol)
            return self.amount(intent.symbol, held if held > 0 else intent.amount)
        balance = await self.ex.fetch_balance()
        base = self.ex.market(ccxt_symbol)["base"]
        free = float((balance.get("free") or {}).get(base) or 0)
        return self.amount(intent.symbol, min(intent.amount, free) if free > 0 else intent.amount)

    async def _ensure_leverage(self, ctx: Any, ccxt_symbol: str) -> None:
        import ccxt

        book = self.book(ctx)
        wanted = [self.config.leverage, self.config.margin_mode]
        if book["margin"].get(ccxt_symbol) == wanted:
            return
        try:
            await self.ex.set_margin_mode(self.config.margin_mode, ccxt_symbol)
        except ccxt.MarginModeAlreadySet:
            pass
        await self.ex.set_leverage(self.config.leverage, ccxt_symbol)
        book["margin"][ccxt_symbol] = wanted

    def _order(self, ctx: Any, intent: OrderIntent, placed: dict | None, amount: float, status: str,
               reason: str) -> Order:
        average = (placed or {}).get("average") or None
        if average and not intent.reference_price / 5 <= average <= intent.reference_price * 5:
            average = None  # a garbled answer (see _fill_problem): the fill, once readable, tells the price
        return Order(
            id=str((placed or {}).get("id") or intent.client_order_id), client_order_id=intent.client_order_id,
            intent_id=intent.id,
            symbol=intent.symbol, side=intent.side, purpose=intent.purpose, type="market", amount=amount,
            price=average, stop_loss=intent.stop_loss, take_profit=intent.take_profit,
            status=status if status in ("new", "open", "filled", "canceled", "rejected") else "open",
            created_at=ctx.now(), reason=reason,
        )

    @staticmethod
    def _status(order: dict) -> str:
        status = order.get("status")
        if status == "closed":
            return "filled"
        if status in ("canceled", "rejected", "expired"):
            return "canceled" if status == "canceled" else status
        return "open"

    # -- protective orders ----------------------------------------------------------------------------

    async def protect(self, ctx: Any, entry_coid: str, entry: dict) -> None:
        """Place the stop-loss and take-profit of a filled entry (idempotent by client order id)."""
        book = self.book(ctx)
        record = book["orders"][entry_coid]
        symbol = record["symbol"]
        if symbol in book["protection"] or (record.get("stop_loss") is None and record.get("take_profit") is None):
            return
        ccxt_symbol = self.symbols.get(symbol, symbol)
        amount = self._held_after(entry, symbol)
        closing_side = "sell" if record["side"] == "buy" else "buy"
        protection: dict[str, Any] = {"entry": entry_coid, "amount": amount, "side": closing_side, "legs": {}}
        sl = self.price(symbol, record["stop_loss"]) if record.get("stop_loss") else None
        tp = self.price(symbol, record["take_profit"]) if record.get("take_profit") else None
        try:
            with priority(Priority.HIGH):
                if self.futures:
                    protection["mode"] = "algo"
                    for role, value, key in (("sl", sl, "stopLossPrice"), ("tp", tp, "takeProfitPrice")):
                        if value is None:
                            continue
                        coid = self.leg_id(book, entry_coid, role)
                        params = {key: value, "reduceOnly": True, "clientOrderId": coid}
                        placed = await self.place(ccxt_symbol, coid,
                                                  lambda p=params: self.ex.create_order(ccxt_symbol, "market",
                                                                                        closing_side, amount, None,
                                                                                        dict(p)),
                                                  trigger=True, symbol=symbol)
                        self._track(book, coid, symbol, role, closing_side, amount, value, placed, trigger=True)
                        protection["legs"][role] = coid
                elif sl is not None and tp is not None and self.config.use_oco and self._oco_allowed(ccxt_symbol):
                    try:
                        listed = await self._place_oco(book, ccxt_symbol, entry_coid, closing_side, amount, sl, tp,
                                                       symbol)
                        protection["mode"] = "oco"
                        ids = {o.get("clientOrderId"): o.get("orderId")
                               for o in (listed.get("info") or listed).get("orders") or [] if isinstance(o, dict)}
                        for role in ("sl", "tp"):
                            coid = self.leg_id(book, entry_coid, role)
                            self._track(book, coid, symbol, role, closing_side, amount, sl if role == "sl" else tp,
                                        {"id": ids.get(coid)})
                            protection["legs"][role] = coid
                    except Exception as exc:
                        if getattr(exc, "error", None) is None or exc.error.kind != "rejected":
                            raise
                        log.warning("binance: OCO refused for %s (%s); a stop-loss plus a take-profit limit instead",
                                    symbol, exc)
                        await self._place_pair(ctx, book, protection, ccxt_symbol, entry_coid, closing_side, amount,
                                               sl, tp, symbol)
                else:
                    await self._place_pair(ctx, book, protection, ccxt_symbol, entry_coid, closing_side, amount, sl, tp,
                                           symbol)
        except Exception as exc:
            protection.setdefault("mode", "pending")
            book["protection"][symbol] = protection
            message = f"stop-loss/take-profit for {symbol} could not be placed: {redact(str(exc))}"
            ctx.alert(Alert(kind="unprotected_position", title=f"Position {symbol} has no exchange stop", text=message,
                            severity=Severity.CRITICAL))
            ctx.report_execution_error(ExecutionError(message=message,
                                                      kind=getattr(getattr(exc, "error", None), "kind", "error"),
                                                      symbol=symbol, plugin=NAME, retryable=True))
            return
        book["protection"][symbol] = protection

    def _held_after(self, entry: dict, symbol: str) -> float:
        """What the entry left on the account: spot buyers pay the fee in the asset bought."""
        filled = float(entry.get("filled") or entry.get("amount") or 0)
        market = self.market(symbol)
        for fee in entry.get("fees") or ([entry["fee"]] if entry.get("fee") else []):
            if fee and fee.get("currency") == market.get("base") and fee.get("cost"):
                filled -= float(fee["cost"])
        return self.amount(symbol, filled)

    @staticmethod
    def leg_id(book: dict, entry_coid: str, role: str) -> str:
        """The client order id of a protective leg: ``<entry>-sl``; ``<entry>-sl2`` once a stop that
        vanished from the exchange is placed again (a new id: the look-before-send would find the old one)."""
        generation = book.get("generation", {}).get(entry_coid, 1)
        return f"{entry_coid}-{role}" + (str(generation) if generation > 1 else "")

    def _oco_allowed(self, ccxt_symbol: str) -> bool:
        return bool(self.ex.market(ccxt_symbol).get("info", {}).get("ocoAllowed", True))

    def _allows(self, ccxt_symbol: str, order_type: str) -> bool:
        """Whether the spot market lists this order type in exchangeInfo's ``orderTypes``."""
        return order_type in (self.ex.market(ccxt_symbol).get("info", {}).get("orderTypes") or [])

    def _stop_limit(self, stop: float, side: str) -> float:
        """A stop-limit's limit price: ``stop_limit_offset_percent`` beyond the stop, so the order still
        fills when the price moves on after the trigger (a sell's limit below its stop, a buy's above)."""
        offset = self.config.stop_limit_offset_percent / 100
        return stop * (1 - offset) if side == "sell" else stop * (1 + offset)

    async def _place_oco(self, book: dict, ccxt_symbol: str, entry_coid: str, side: str, amount: float, sl: float,
                         tp: float, symbol: str) -> dict:
        market = self.ex.market(ccxt_symbol)
        list_coid = self.leg_id(book, entry_coid, "oco")
        request = {
            "symbol": market["id"], "side": side.upper(), "quantity": self.ex.amount_to_precision(ccxt_symbol, amount),
            "listClientOrderId": list_coid, "newOrderRespType": "RESULT",
        }
        # POST /api/v3/orderList/oco: the take-profit leg a LIMIT_MAKER, the stop a STOP_LOSS where the
        # market lists it, else a STOP_LOSS_LIMIT (which needs its limit price and time in force).
        stop_leg, target_leg = ("below", "above") if side == "sell" else ("above", "below")
        request |= {f"{target_leg}Type": "LIMIT_MAKER",
                    f"{target_leg}Price": self.ex.price_to_precision(ccxt_symbol, tp),
                    f"{target_leg}ClientOrderId": self.leg_id(book, entry_coid, "tp"),
                    f"{stop_leg}StopPrice": self.ex.price_to_precision(ccxt_symbol, sl),
                    f"{stop_leg}ClientOrderId": self.leg_id(book, entry_coid, "sl")}
        if self._allows(ccxt_symbol, "STOP_LOSS"):
            request[f"{stop_leg}Type"] = "STOP_LOSS"
        else:
            request |= {f"{stop_leg}Type": "STOP_LOSS_LIMIT", f"{stop_leg}TimeInForce": "GTC",
                        f"{stop_leg}Price": self.ex.price_to_precision(ccxt_symbol, self._stop_limit(sl, side))}
        return await self.place(ccxt_symbol, list_coid, lambda: self.ex.privatePostOrderListOco(dict(request)),
                                order_list=True, symbol=symbol)

    async def _place_pair(self, ctx, book, protection, ccxt_symbol, entry_coid, side, amount, sl, tp, symbol) -> None:
        """No OCO: a stop-loss order and a take-profit limit; the plugin cancels one when the other fills."""
        protection["mode"] = "pair"
        if sl is not None:
            coid = self.leg_id(book, entry_coid, "sl")
            params = {"stopLossPrice": sl, "clientOrderId": coid}
            if self._allows(ccxt_symbol, "STOP_LOSS"):  # ccxt sends a market order with stopLossPrice as STOP_LOSS
                send = lambda: self.ex.create_order(ccxt_symbol, "market", side, amount, None, dict(params))  # noqa: E731
            else:  # ... and a limit order with it as STOP_LOSS_LIMIT (the spot testnet lists only that one)
                limit = self.price(symbol, self._stop_limit(sl, side))
                send = lambda: self.ex.create_order(ccxt_symbol, "limit", side, amount, limit,  # noqa: E731
                                                    dict(params, timeInForce="GTC"))
            placed = await self.place(ccxt_symbol, coid, send, symbol=symbol)
            self._track(book, coid, symbol, "sl", side, amount, sl, placed)
            protection["legs"]["sl"] = coid
        if tp is not None:
            coid = self.leg_id(book, entry_coid, "tp")
            try:
                placed = await self.place(ccxt_symbol, coid,
                                          lambda: self.ex.create_order(ccxt_symbol, "limit", side, amount, tp,
                                                                       {"clientOrderId": coid}),
                                          symbol=symbol)
            except Exception as exc:
                if getattr(exc, "error", None) is None or exc.error.kind != "rejected":
                    raise
                # e.g. the stop already holds the balance: the plugin watches the target itself.
                protection["watch_tp"] = tp
                log.warning("binance: take-profit limit for %s refused (%s); watching %s itself", symbol, exc, tp)
                return
            self._track(book, coid, symbol, "tp", side, amount, tp, placed)
            protection["legs"]["tp"] = coid

    @staticmethod
    def _track(book: dict, coid: str, symbol: str, role: str, side: str, amount: float, price: float,
               placed: dict | None, trigger: bool = False) -> None:
        book["orders"][coid] = {"symbol": symbol, "role": role, "purpose": "close", "side": side, "amount": amount,
                                "price": price, "status": "open", "reported": False, "trigger": trigger,
                                "id": str((placed or {}).get("id") or "") or None}

    async def cancel_protection(self, ctx: Any, symbol: str) -> None:
        """Cancel a position's stop-loss and take-profit before closing it (a stop must not fire after)."""
        book = self.book(ctx)
        protection = book["protection"].get(symbol)
        if not protection:
            return
        ccxt_symbol = self.symbols.get(symbol, symbol)
        with priority(Priority.CRITICAL):
            for _role, coid in protection.get("legs", {}).items():
                record = book["orders"].get(coid, {})
                if record.get("status") in FINAL:
                    continue
                if await self.cancel_leg(ccxt_symbol, coid, record):
                    # else already gone (filled, or the OCO sibling's fill): sync will tell
                    record["status"] = "canceled"
        book["protection"].pop(symbol, None)

    async def cancel_leg(self, ccxt_symbol: str, coid: str, record: dict) -> bool:
        """Cancel one protective order (a conditional one on the algo endpoint), CRITICAL; False if
        the exchange no longer has it open."""
        import ccxt

        params = {"clientOrderId": coid} | ({"trigger": True} if record.get("trigger") else {})
        try:
            with priority(Priority.CRITICAL):
                await self.ex.cancel_order(None, ccxt_symbol, params)
            return True
        except ccxt.OrderNotFound:
            return False

    # -- polling ----------------------------------------------------------------------------------------

    async def sync(self, ctx: Any, prices: dict[str, float]) -> list[Fill | Order | Funding]:
        """Fills since the last cycle, each reported once; entries and closes that ended unfilled, as
        their ``Order``; futures funding payments (``funding.py``); protective siblings cancelled; stops
        re-placed."""
        book = self.book(ctx)
        fills: list[Fill | Order | Funding] = []
        for coid, record in list(book["orders"].items()):
            if record.get("reported") or record.get("status") in ("canceled", "rejected", "expired", "not_placed"):
                continue
            try:
                fill = await self._sync_one(ctx, book, coid, record)
            except Exception as exc:  # noqa: BLE001 - one order's trouble must not lose the others' fills
                log.warning("binance: could not check order %s: %s", coid, redact(str(exc)))
                continue
            if fill is not None:
                fills.append(fill)
        for follow_up in (self._watch_targets(ctx, prices), self._retry_protection(ctx)):
            try:  # never lose the fills collected above
                await follow_up
            except Exception as exc:  # noqa: BLE001
                log.warning("binance: %s: %s", type(exc).__name__, redact(str(exc)))
        try:
            fills += await self.reconciler.check(ctx, fills, set(prices))
        except Exception as exc:  # noqa: BLE001 - the books are compared again next cycle
            log.warning("binance: comparing the books: %s: %s", type(exc).__name__, redact(str(exc)))
        try:
            fills += await self.funding.check(ctx, fills)
        except Exception as exc:  # noqa: BLE001 - the payments are asked for again at the next check
            log.warning("binance: funding payments: %s: %s", type(exc).__name__, redact(str(exc)))
        self._prune(book)
        return fills

    @staticmethod
    def _prune(book: dict, keep: int = 100) -> None:
        """Forget all but the latest ``keep`` finished orders: the state file must not grow forever.

        (Idempotency never depends on this record: the exchange is always asked first.)"""
        finished = [coid for coid, r in book["orders"].items()
                    if r.get("status") in FINAL and (r.get("reported") or r.get("status") != "filled")]
        for coid in finished[:-keep] if len(finished) > keep else []:
            del book["orders"][coid]

    async def _sync_one(self, ctx: Any, book: dict, coid: str, record: dict) -> Fill | Order | None:
        ccxt_symbol = self.symbols.get(record["symbol"], record["symbol"])
        with priority(Priority.NORMAL):
            order = await self.lookup(ccxt_symbol, coid, trigger=bool(record.get("trigger")))
        if order is None:
            if record.get("status") in ("unknown", "sending"):
                record["status"] = "not_placed"
                ctx.alert(Alert(kind="order_not_placed", title=f"Order {coid} for {record['symbol']} was never placed",
                                text="after an unconfirmed send, the exchange has no order with this id",
                                severity=Severity.WARNING))
                if record["role"] == "close":  # the position is still held: its stop and target go back
                    await self.close_refused(ctx, record["symbol"], coid, {"entry": record.get("entry")}, "not_placed",
                                             "never placed after an unconfirmed send", held=record["amount"])
                return self._ended(ctx, coid, record, "rejected",
                                   "never placed: the exchange has no order with this id")
            return None
        status = self._status(order)
        if status == "open":
            record["status"] = "open"
            return None
        fill_order = order
        if record.get("trigger") and status == "filled":
            fill_order = await self._triggered_order(ccxt_symbol, order, book)
            if fill_order is None:  # triggered, its market order not found yet: asked again next cycle
                record["status"] = "triggered"
                return None
        if float(fill_order.get("filled") or 0) <= 0:
            record["status"] = status
            reason = self.book_unfilled(ctx, coid, record, status, fill_order)
            await self.protect_rest(ctx, record, 0.0)
            return self._ended(ctx, coid, record, "canceled", reason)
        if not record.get("fees"):  # the commissions as charged (futures: only the trades list them)
            with priority(Priority.NORMAL):
                record["fees"] = await self._commissions(ccxt_symbol, coid, fill_order)
        try:
            fill: Fill | None = self.make_fill(coid, record, fill_order)
        except ValueError:  # pydantic's ValidationError: a non-positive amount, say, after a garbled fee
            fill = None
        problem = self._fill_problem(record, fill)
        if problem:
            record.pop("fees", None)  # asked for again next time
            raise GarbledAnswer(f"order {coid}: {problem}")
        await self._check_far_fill(ccxt_symbol, coid, record, fill_order, fill)
        record["status"], record["reported"] = status, True
        if status in ("canceled", "expired"):  # part of it filled: the rest is booked as ended
            self.book_unfilled(ctx, coid, record, status, fill_order)
        try:  # from here on the fill is reported whatever happens
            if record["role"] == "entry" and record["symbol"] not in book["protection"]:
                with priority(Priority.HIGH):
                    await self.protect(ctx, coid, fill_order)
            if record["role"] in ("sl", "tp"):
                await self._finish_protection(ctx, record["symbol"], coid)
            if status in ("canceled", "expired"):
                await self.protect_rest(ctx, record, fill.amount)
        except Exception as exc:  # noqa: BLE001 - reported, the fill still counts
            text = f"after the fill of {coid}: {type(exc).__name__}: {redact(str(exc))}"
            ctx.alert(Alert(kind="order_follow_up_failed", title=f"{record['symbol']}: could not finish the stops",
                            text=text, severity=Severity.WARNING))
        return fill

    @staticmethod
    def _ended(ctx: Any, coid: str, record: dict, status: str, reason: str) -> Order | None:
        """An entry or close the core waits for that ended without a fill (protective orders are the plugin's own)."""
        if record["role"] not in ("entry", "close"):
            return None
        return Order(id=str(record.get("id") or coid), client_order_id=coid, intent_id=record.get("intent_id", ""),
                     symbol=record["symbol"], side=Side(record["side"]), purpose=record["purpose"],
                     amount=record["amount"], status=status, created_at=ctx.now(), reason=reason)

    async def _triggered_order(self, ccxt_symbol: str, algo: dict, book: dict) -> dict | None:
        """A futures conditional order that triggered: its fill is on the market order it created.

        The algo order's answer names that order in ``actualOrderId``, but may leave it empty (or
        the order may not be found): then the order is the first one on the algo order's side in the
        account's trades since the trigger that is none of the plugin's own. None while there is none
        yet (TRIGGERED: the market order is still being placed)."""
        import ccxt

        info = algo.get("info") or {}
        actual = str(info.get("actualOrderId") or "")
        if actual and actual != "0":
            try:
                return readable(await self.ex.fetch_order(actual, ccxt_symbol), None)
            except (ccxt.OrderNotFound, GarbledAnswer) as exc:
                log.warning("binance: the order %s created by algo order %s: %s; looking in the trades", actual,
                            algo.get("id"), exc)
        since = int(info.get("triggerTime") or info.get("updateTime") or 0) or None
        ours = {str(r.get("id")) for r in book["orders"].values() if r.get("id")}
        side = algo.get("side")
        with priority(Priority.NORMAL):
            trades = await self.ex.fetch_my_trades(ccxt_symbol, since - 1000 if since else None)
        mine = [t for t in trades if isinstance(t, dict) and t.get("side") == side and str(t.get("order")) not in ours
                and (not actual or str(t.get("order")) == actual)]
        if not mine:
            return None
        order_id = str(mine[0].get("order"))
        return order_from_trades([t for t in mine if str(t.get("order")) == order_id], algo.get("clientOrderId"))

    async def _trades(self, ccxt_symbol: str, coid: str, order: dict) -> list[dict]:
        """The order's trades, each with a finite positive price and amount, adding up to its fill;
        otherwise ``GarbledAnswer``."""
        if self.futures:  # ccxt's fetchOrderTrades is spot-only; userTrades takes the order id
            trades = await self.ex.fetch_my_trades(ccxt_symbol, None, None, {"orderId": str(order.get("id"))})
        else:
            trades = await self.ex.fetch_order_trades(str(order.get("id")), ccxt_symbol)
        sane = isinstance(trades, list) and trades and all(
            isinstance(t, dict) and all(is_number(t.get(k)) and t[k] > 0 for k in ("price", "amount")) for t in trades)
        if not sane or not math.isclose(sum(t["amount"] for t in trades), float(order.get("filled") or 0),
                                        rel_tol=1e-6):
            raise GarbledAnswer(f"order {coid}: its trades do not add up to its fill of {order.get('filled')}")
        return trades

    async def _commissions(self, ccxt_symbol: str, coid: str, order: dict) -> list[dict]:
        """The commissions of a filled order: from the placing answer (spot), else from the order's
        trades (a looked-up order and a futures order list none). Spot buyers pay them in the asset
        bought, so a commission lost to a garbled answer would misstate the position: ``GarbledAnswer``
        unless every commission is in an asset the exchange lists (BNB with the fee discount on), of
        a finite cost, and the trades add up to the fill. One paid in a third asset is valued in the
        quote at the fill's time (``valued``)."""
        fees = order.get("fees")
        if not fees:
            trades = await self._trades(ccxt_symbol, coid, order)
            fees = [t.get("fee") for t in trades]
        known = self.assets()
        if not all(isinstance(f, dict) and f.get("currency") in known and is_number(f.get("cost")) and f["cost"] >= 0
                   for f in fees):
            raise GarbledAnswer(f"order {coid}: a commission is unreadable: {fees!r}")
        return await self.valued(ccxt_symbol, fees, order.get("lastTradeTimestamp") or order.get("timestamp"))

    async def valued(self, ccxt_symbol: str, fees: list[dict], at_ms: int | None) -> list[dict]:
        """The commissions, those paid in a third asset with their value in the quote (``quote_cost``)."""
        market = self.ex.market(ccxt_symbol)
        return [dict(f) | ({"quote_cost": await self.in_quote(f["currency"], market["quote"], f["cost"], at_ms)}
                           if f.get("currency") not in (market["base"], market["quote"]) else {}) for f in fees]

    def assets(self) -> set[str]:
        """Every asset the exchange lists: the currencies of its markets (``fetchCurrencies`` is off,
        so ``ex.currencies`` is mostly empty)."""
        assets = set(self.ex.currencies or {})
        for market in (self.ex.markets or {}).values():
            assets.update((market.get("base"), market.get("quote")))
        return assets

    async def in_quote(self, asset: str, quote: str, cost: float, at_ms: int | None) -> float | None:
        """A commission paid in a third asset (BNB with the fee discount on), in ``quote``: at the
        close of the one-minute candle of the fill's time on ``asset``/``quote`` (or the inverse
        market); with neither market, estimated at the taker rate (logged)."""
        if not cost:
            return 0.0
        for symbol, invert in ((f"{asset}/{quote}", False), (f"{quote}/{asset}", True)):
            if symbol not in (self.ex.markets or {}):
                continue
            since = int(at_ms or self.clock() * 1000) // 60000 * 60000
            with priority(Priority.NORMAL):
                candles = await self.ex.fetch_ohlcv(symbol, "1m", since, 1)
            price = candles[0][4] if candles and is_number(candles[0][4]) and candles[0][4] > 0 else None
            if price is None:
                raise GarbledAnswer(f"no {symbol} price to value a commission of {cost:g} {asset}")
            return cost / price if invert else cost * price
        log.warning("binance: no %s/%s market to value a commission of %g %s: estimated", asset, quote, cost, asset)
        return None

    @staticmethod
    def _fill_problem(record: dict, fill: Fill | None) -> str:
        """Why a fill cannot be what the exchange did, or "": unreadable, more than was ordered, or
        a commission above 1% of its value."""
        if fill is None:
            return "the fill is unreadable"
        if fill.amount > record["amount"] * 1.001:
            return f"filled {fill.amount:g} of an order of {record['amount']:g}"
        if fill.fee > fill.amount * fill.price * 0.01:
            return f"a commission of {fill.fee:g} on {fill.amount * fill.price:g}"
        return ""

    async def _check_far_fill(self, ccxt_symbol: str, coid: str, record: dict, order: dict, fill: Fill) -> None:
        """A fill more than five times away from the price its order was sent at (far outside the
        price bands Binance lets any order trade in) is most likely a garbled answer; but the price
        it was sent at may have been the wrong one, so another endpoint decides: the fill is
        believed if the order's trades average the same price, else ``GarbledAnswer``."""
        sent = record.get("price")
        if not sent or sent / 5 <= fill.price <= sent * 5:
            return
        with priority(Priority.NORMAL):
            trades = await self._trades(ccxt_symbol, coid, order)
        average = sum(t["price"] * t["amount"] for t in trades) / sum(t["amount"] for t in trades)
        if not math.isclose(average, fill.price, rel_tol=1e-3):
            raise GarbledAnswer(f"order {coid}: filled at {fill.price:g}, sent at {sent:g}, its trades say {average:g}")
        log.warning("binance: order %s filled at %g, sent at %g: its trades confirm it", coid, fill.price, sent)

    def make_fill(self, coid: str, record: dict, order: dict) -> Fill:
        symbol = record["symbol"]
        market = self.market(symbol)
        filled = float(order.get("filled") or 0)
        price = (float(order.get("average") or order.get("price") or 0)
                 or float((order.get("info") or {}).get("actualPrice") or 0))
        amount, fee = filled, 0.0
        fees = record.get("fees") or order.get("fees") or ([order["fee"]] if order.get("fee") else [])
        estimate = filled * price * float(market.get("taker") or 0.001)
        known = False
        commissions: dict[str, float] = {}
        for item in fees:
            if not item or item.get("cost") is None:
                continue
            known = True
            asset, cost = item.get("currency"), float(item["cost"])
            commissions[asset] = commissions.get(asset, 0.0) + cost
            if asset == market.get("quote"):
                fee += cost
            elif asset == market.get("base"):
                amount -= cost  # the buyer received less
                fee += cost * price
            else:  # paid in a third asset (BNB): the position is whole, the cost is valued in the quote
                value = item.get("quote_cost")
                fee += value if is_number(value) else estimate
        if not known:
            fee = estimate
        reason = exit_reason(record)
        return Fill(order_id=str(order.get("id") or coid), client_order_id=coid, symbol=symbol,
                    side=Side(record["side"]), purpose=record["purpose"], amount=amount, price=price,
                    fee=max(0.0, fee), commissions=commissions,
                    time=_time(order.get("lastTradeTimestamp") or order.get("timestamp")), reason=reason)

    async def _finish_protection(self, ctx: Any, symbol: str, filled_coid: str) -> None:
        """One protective order filled: cancel its sibling (an OCO's sibling the exchange cancels itself)."""
        book = self.book(ctx)
        protection = book["protection"].pop(symbol, None)
        if not protection:
            return
        ccxt_symbol = self.symbols.get(symbol, symbol)
        for coid in protection.get("legs", {}).values():
            if coid == filled_coid:
                continue
            record = book["orders"].get(coid, {})
            if protection.get("mode") == "oco":
                record["status"] = "canceled"
                continue
            await self.cancel_leg(ccxt_symbol, coid, record)
            record["status"] = "canceled"

    async def _watch_targets(self, ctx: Any, prices: dict[str, float]) -> None:
        """Take-profits the exchange would not hold (no OCO, balance held by the stop): sell at market.

        The market sell's fill is reported by the next sync."""
        book = self.book(ctx)
        for symbol, protection in list(book["protection"].items()):
            target = protection.get("watch_tp")
            price = prices.get(symbol)
            if target is None or price is None:
                continue
            reached = price >= target if protection["side"] == "sell" else price <= target
            if not reached:
                continue
            await self.cancel_protection(ctx, symbol)
            coid = f"{protection['entry']}-tpw"
            ccxt_symbol = self.symbols.get(symbol, symbol)
            amount = protection["amount"]
            with priority(Priority.CRITICAL):
                # the closure runs inside this await, within this pass of the loop
                placed = await self.place(
                    ccxt_symbol, coid,
                    lambda: self.ex.create_order(ccxt_symbol, "market", protection["side"], amount,  # noqa: B023
                                                 None, {"clientOrderId": coid}),  # noqa: B023
                    symbol=symbol)
            self._track(book, coid, symbol, "tp", protection["side"], amount, price, placed)

    async def _retry_protection(self, ctx: Any) -> None:
        book = self.book(ctx)
        for symbol, protection in list(book["protection"].items()):
            if protection.get("mode") != "pending":
                continue
            book["protection"].pop(symbol)
            record = book["orders"].get(protection["entry"])
            if record is None:
                continue
            ccxt_symbol = self.symbols.get(symbol, symbol)
            entry = await self.lookup(ccxt_symbol, protection["entry"])
            if entry is not None:
                await self.protect(ctx, protection["entry"], entry)

    # -- start-up -------------------------------------------------------------------------------------

    async def reconcile(self, ctx: Any) -> list[str]:
        """Compare the exchange's open orders and positions with the persisted state and the core's."""
        book = self.book(ctx)
        differences: list[str] = []
        known = set(book["orders"])
        with priority(Priority.NORMAL):
            for symbol, ccxt_symbol in self.symbols.items():
                open_orders = await self.ex.fetch_open_orders(ccxt_symbol)
                if self.futures:
                    open_orders += await self.ex.fetch_open_orders(ccxt_symbol, None, None, {"trigger": True})
                for order in open_orders:
                    coid = order.get("clientOrderId") or ""
                    if coid.startswith("gb") and coid not in known:
                        differences.append(f"{symbol}: open order {coid} on the exchange is not in the bot's state "
                                           f"(placed by an interrupted cycle?)")
                for coid, record in book["orders"].items():
                    if record["symbol"] != symbol or record.get("status") not in ("open", "sending", "unknown"):
                        continue
                    if any(o.get("clientOrderId") == coid for o in open_orders):
                        continue
                    differences.append(f"{symbol}: order {coid} ({record['role']}) is no longer open on the exchange; "
                                       f"its outcome is synced next cycle")
            held = ctx.positions()
            if self.futures:
                positions = await self.ex.fetch_positions(list(self.symbols.values()))
                by_symbol = {p["symbol"]: float(p.get("contracts") or 0) * (1 if p.get("side") == "long" else -1)
                             for p in positions}
                for symbol, ccxt_symbol in self.symbols.items():
                    exchange_amount = by_symbol.get(ccxt_symbol, 0.0)
                    position = held.get(symbol)
                    ours = (0.0 if position is None
                            else position.amount * (1 if position.direction.value == "LONG" else -1))
                    if abs(exchange_amount - ours) > 1e-12 + abs(ours) * 0.01:
                        differences.append(f"{symbol}: the exchange holds {exchange_amount:g}, "
                                           f"the bot's state {ours:g}")
            else:
                balance = await self.ex.fetch_balance()
                for symbol, position in held.items():
                    if symbol not in self.symbols:
                        continue
                    base = self.market(symbol)["base"]
                    total = float((balance.get("total") or {}).get(base) or 0)
                    if total < position.amount * 0.98:
                        differences.append(f"{symbol}: the bot holds {position.amount:g} {base}, "
                                           f"the exchange account only {total:g}")
        for text in differences:
            ctx.alert(Alert(kind="reconciliation", title="Exchange and bot state differ", text=text,
                            severity=Severity.WARNING))
        ctx.audit("binance_reconciled", differences=differences)
        return differences
