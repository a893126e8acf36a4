"""Every cycle, the bot's book against the exchange's: positions, their stops, orphaned orders.

The exchange is the source of truth. After the plugin has synced the orders it tracks, it asks the
exchange what the account holds (futures: ``positionRisk``; spot: ``account``) and compares it with
the positions the bot will hold once this cycle's fills are applied:

- **Less on the exchange than in the bot** (a stop or target whose fill the plugin could not read, a
  liquidation or auto-deleveraging, a position closed by hand): the account's trades since the
  position opened say what happened; each closing order among them is booked as a close ``Fill``
  with its real price, commissions and cause — ``stop_loss``, ``take_profit``, ``liquidation``,
  ``adl``, ``closed_outside`` — with an audit event and a ``reconciliation`` alert; the position's
  remaining protective orders are cancelled once it is gone.
- **More on the exchange than in the bot** (a position gobot did not open): ``foreign_positions``
  decides — ``alert`` (once per amount), ``adopt`` (booked as an open fill, ``reason="adopted"``,
  and protected like any entry) or ``ignore``.
- **A position whose stop is not open on the exchange** (cancelled by hand, expired): CRITICAL alert
  and the stop is placed again. **Orders of the plugin's own without a position** are cancelled.

A symbol with an entry or close of the plugin's own still in flight is left for the next cycle:
until that order has an outcome, the two books cannot be compared; so is a symbol whose market
data did not arrive this cycle (an outage or a rate limit: the comparison would only add load).
Request weight per cycle: futures 5 (positions) + 2 per symbol held or protected (open orders and
open algo orders); spot 20 (account) + 6 per symbol held or protected; plus the trades looked up
when something diverged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gobot_hookspecs import Alert, Fill, Order, Priority, Severity, Side

from .client import GarbledAnswer, priority, redact
from .execution import exit_reason, is_number, order_from_trades

log = logging.getLogger(__name__)
ENDED_UNFILLED = ("canceled", "rejected", "expired", "not_placed")
#: Cycles in a row that must show the same unexplained shortfall before it is booked (one garbled
#: balance answer must never close a position in the books, nor cancel its stop).
CONFIRMATIONS = 3
OWN_PREFIX = "gb"  # every client order id the core and this plugin make starts with it
#: Client order id prefixes Binance gives orders the account did not place through the API
#: (USDⓈ-M futures docs, ORDER_TRADE_UPDATE ``c``: "autoclose-" liquidation, "adl_autoclose" ADL).
OUTSIDE_CAUSES = (("autoclose-", "liquidation"), ("adl_autoclose", "adl"))


def _ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


class Reconciler:
    """The per-cycle comparison for one ``Trader`` (see the module docstring)."""

    def __init__(self, trader: Any):
        self.trader = trader
        self.ex = trader.ex

    async def check(self, ctx: Any, batch: list[Fill | Order], scanned: set[str]) -> list[Fill]:
        """Fills that bring the bot's book to the exchange's (booked with their causes).

        Only the ``scanned`` symbols (this cycle's market data arrived) are compared: when the
        exchange is not answering, or rate limiting, the comparison waits for a cycle where it does."""
        trader = self.trader
        book = trader.book(ctx)
        expected = self._expected(ctx, batch)
        busy = {r["symbol"] for r in book["orders"].values()  # an entry or close whose fill is not booked yet
                if r["role"] in ("entry", "close") and r.get("status") not in ENDED_UNFILLED and not r.get("reported")}
        symbols = [s for s in trader.symbols if s in scanned and s not in busy]
        if not symbols:
            return []
        with priority(Priority.NORMAL):
            held = await self._exchange_holds()
        booked: list[Fill] = []
        for symbol in symbols:
            ours, (theirs, entry) = expected.get(symbol, 0.0), held[symbol]
            fills = await self._compare(ctx, book, symbol, ours, theirs, entry)
            booked += fills
            for fill in fills:
                ours += fill.amount * (1 if fill.side is Side.BUY else -1)
            await self._check_orders(ctx, book, symbol, abs(ours) if abs(ours) > self._tolerance(symbol, ours) else 0.0)
        return booked

    # -- the two books ----------------------------------------------------------------------------------

    def _expected(self, ctx: Any, batch: list[Fill | Order]) -> dict[str, float]:
        """Signed amount per symbol the bot holds once this cycle's fills are applied."""
        amounts = {s: p.amount * (1 if p.direction.value == "LONG" else -1) for s, p in ctx.positions().items()}
        for fill in (f for f in batch if isinstance(f, Fill)):
            held = amounts.get(fill.symbol, 0.0)
            signed = fill.amount * (1 if fill.side is Side.BUY else -1)
            if fill.purpose == "close" and abs(abs(held) - fill.amount) <= abs(held) * 0.02:
                amounts[fill.symbol] = 0.0  # the portfolio closes the whole position (see PARTIAL_TOLERANCE)
            else:
                amounts[fill.symbol] = held + signed
        return amounts

    async def _exchange_holds(self) -> dict[str, tuple[float, float | None]]:
        """Per core symbol: the signed amount the account holds and (futures) its entry price."""
        trader = self.trader
        if trader.futures:
            rows = await self.ex.fetch_positions(list(trader.symbols.values()))
            by_ccxt = {}
            for row in rows if isinstance(rows, list) else []:
                contracts, entry = row.get("contracts"), row.get("entryPrice")
                if (not (is_number(contracts) and contracts >= 0)
                        or (contracts and row.get("side") not in ("long", "short"))):
                    raise GarbledAnswer(f"positions: {row.get('symbol')} holds {contracts!r} ({row.get('side')!r})")
                amount = contracts * (1 if row.get("side") == "long" else -1)
                by_ccxt[row.get("symbol")] = (amount, entry if is_number(entry) and entry > 0 else None)
            # positionRisk v3 lists only symbols with a position or open orders: no row is no position
            return {s: by_ccxt.get(c, (0.0, None)) for s, c in trader.symbols.items()}
        balance = await self.ex.fetch_balance()
        holds = {}
        for symbol in trader.symbols:
            total = (balance.get(trader.market(symbol)["base"]) or {}).get("total")
            if not (is_number(total) and total >= 0):  # Binance lists every asset: a missing one is a garbled answer
                raise GarbledAnswer(f"account: {trader.market(symbol)['base']} total {total!r}")
            holds[symbol] = (total, None)
        return holds

    def _tolerance(self, symbol: str, amount: float) -> float:
        """Differences below this are rounding: half a lot step, or 2 % of a spot position (its commission)."""
        step = float((self.trader.market(symbol).get("precision") or {}).get("amount") or 0)
        return max(step / 2, 0.0 if self.trader.futures else abs(amount) * 0.02, 1e-12)

    async def _compare(self, ctx: Any, book: dict, symbol: str, ours: float, theirs: float,
                       entry: float | None) -> list[Fill]:
        tolerance = self._tolerance(symbol, ours)
        if not self.trader.futures:
            # A spot account holds the base asset for its own reasons too (the owner's coins, the lot-step
            # dust of earlier sells): what it held beyond the bot's position when the books last agreed
            # is not the bot's. Only a shortfall against that is a divergence; spot has no foreign positions.
            outside = book.setdefault("held_outside", {})
            gone = max(0.0, ours - (theirs - outside.get(symbol, 0.0)))
            if not (ours and gone > tolerance):
                outside[symbol] = max(0.0, theirs - ours)
                book.get("unexplained", {}).pop(symbol, None)
                return []
            return await self._book_exit(ctx, book, symbol, ours, gone)
        same_side = ours == 0 or theirs == 0 or (ours > 0) == (theirs > 0)
        gone = abs(ours) if not same_side else max(0.0, abs(ours) - abs(theirs))
        extra = abs(theirs) if not same_side else max(0.0, abs(theirs) - abs(ours))
        fills: list[Fill] = []
        if ours and gone > tolerance:
            fills = await self._book_exit(ctx, book, symbol, ours, gone)
        else:
            book.get("unexplained", {}).pop(symbol, None)
        if extra > tolerance:
            fills += await self._foreign(ctx, book, symbol, theirs - (ours if same_side else 0.0), extra, entry)
        else:
            book.get("foreign", {}).pop(symbol, None)
        return fills

    # -- less on the exchange: what happened ------------------------------------------------------------

    async def _book_exit(self, ctx: Any, book: dict, symbol: str, ours: float, gone: float) -> list[Fill]:
        trader = self.trader
        ccxt_symbol = trader.symbols[symbol]
        position = ctx.positions().get(symbol)
        since = _ms(position.opened_at) - 1000 if position is not None else None
        closing_side = "sell" if ours > 0 else "buy"
        known = {str(r.get("id")): (coid, r) for coid, r in book["orders"].items() if r.get("id")}
        with priority(Priority.NORMAL):
            trades = await self.ex.fetch_my_trades(ccxt_symbol, since)
        groups: dict[str, list[dict]] = {}
        for trade in trades if isinstance(trades, list) else []:
            order_id = str(trade.get("order"))
            record = known.get(order_id, (None, {}))[1]
            if trade.get("side") != closing_side or record.get("reported"):
                continue
            groups.setdefault(order_id, []).append(trade)
        fills: list[Fill] = []
        left = gone
        last = (next((s.price for s in ctx.snapshots or [] if s.symbol == symbol), None)
                or (position.entry_price if position else None))
        for order_id, group in groups.items():
            if left <= self._tolerance(symbol, gone) / 2:
                break
            coid, record, cause = await self._cause(book, ccxt_symbol, symbol, order_id, known)
            if record is not None and record.get("reported"):  # already booked (its id had been garbled)
                record["id"] = order_id
                continue
            if record is None and coid.startswith(OWN_PREFIX):
                continue  # one of the plugin's own orders, finished and forgotten (Trader._prune): booked long ago
            order = order_from_trades(group, coid)
            if last and not last / 5 <= order["average"] <= last * 5:  # as in Trader._check_far_fill
                raise GarbledAnswer(f"order {order_id}: trades at {order['average']:g}, the market at {last:g}")
            order["fees"] = await trader.valued(ccxt_symbol, order["fees"], order["lastTradeTimestamp"])
            fill_record = {"symbol": symbol, "role": "outside", "purpose": "close", "side": closing_side,
                           "amount": order["filled"], "reason": cause, "id": order_id}
            fill = trader.make_fill(coid, fill_record, order)
            fill = fill.model_copy(update={"amount": min(fill.amount, left)}) if fill.amount > left else fill
            left -= fill.amount
            fills.append(fill)
            if record is not None:  # a protective order of the plugin's own: its fill is now reported
                record["status"], record["reported"] = "filled", True
            else:
                book["orders"][coid] = fill_record | {"status": "filled", "reported": True}
            self._tell(ctx, symbol, f"{fill.amount:g} closed on the exchange by order {order_id} ({cause}) at "
                                    f"{fill.price:g}, fee {fill.fee:.4f}: booked", cause=cause, order_id=order_id)
        unexplained = book.setdefault("unexplained", {})
        if left > self._tolerance(symbol, gone):
            # The exchange holds less and its trades do not say why (older than the position, not
            # served, or one garbled answer): believed once CONFIRMATIONS cycles in a row agree, then
            # the exchange is the truth and the rest is closed at the last price.
            unexplained[symbol] = seen = unexplained.get(symbol, 0) + 1
            if seen < CONFIRMATIONS:
                if seen == 1:
                    self._tell(ctx, symbol, f"the exchange holds {left:g} less than the bot and no trade explains it: "
                                            f"checked again, booked if {CONFIRMATIONS} cycles in a row agree",
                               cause="unexplained")
                return fills
            unexplained.pop(symbol)
            price = next((s.price for s in ctx.snapshots or [] if s.symbol == symbol), None) or (
                position.entry_price if position else None)
            coid = f"reconciled-{symbol.replace('/', '')}-{int(time.time() * 1000)}"
            fills.append(Fill(order_id=coid, client_order_id=coid, symbol=symbol, side=Side(closing_side),
                              purpose="close", amount=left, price=price, fee=0.0, time=ctx.now(), reason="reconciled"))
            self._tell(ctx, symbol, f"{left:g} gone from the exchange for {CONFIRMATIONS} cycles "
                                    f"with no trade to explain it: closed at the last price {price:g}",
                       cause="reconciled", severity=Severity.CRITICAL)
        unexplained.pop(symbol, None)
        if abs(ours) - gone <= self._tolerance(symbol, ours):
            await self.trader.cancel_protection(ctx, symbol)  # the position is gone: its orphaned siblings go too
        return fills

    async def _cause(self, book: dict, ccxt_symbol: str, symbol: str, order_id: str,
                     known: dict[str, tuple[str, dict]]) -> tuple[str, dict | None, str]:
        """(client order id, the plugin's record or None, cause) of the order that closed a position."""
        import ccxt

        if order_id in known:
            coid, record = known[order_id]
            return coid, record, exit_reason(record)
        try:
            with priority(Priority.NORMAL):
                order = await self.ex.fetch_order(order_id, ccxt_symbol)
            coid = str(order.get("clientOrderId") or "")
        except (ccxt.BaseError, GarbledAnswer) as exc:
            log.warning("binance: order %s: %s", order_id, redact(str(exc)))
            coid = ""
        for prefix, cause in OUTSIDE_CAUSES:
            if coid.startswith(prefix):
                return coid, None, cause
        if coid in book["orders"]:
            record = book["orders"][coid]
            return coid, record, exit_reason(record)
        for own, record in book["orders"].items():  # a triggered algo order's market order carries its id
            if record["symbol"] == symbol and record.get("trigger") and coid and coid.startswith(own[:30]):
                return own, record, exit_reason(record)
        return coid or f"x{order_id}", None, "closed_outside"

    # -- more on the exchange: a position gobot did not open ---------------------------------------------

    async def _foreign(self, ctx: Any, book: dict, symbol: str, signed: float, amount: float,
                       entry: float | None) -> list[Fill]:
        mode = self.trader.config.foreign_positions
        if mode == "ignore":
            return []
        price = entry or next((s.price for s in ctx.snapshots or [] if s.symbol == symbol), None)
        if mode == "alert" or price is None:
            if book.setdefault("foreign", {}).get(symbol) != amount:
                book["foreign"][symbol] = amount
                self._tell(ctx, symbol, f"the exchange holds {signed:g} that gobot did not open "
                                        f"([plugins.binance] foreign_positions = \"{mode}\")", cause="foreign")
            return []
        side = "buy" if signed > 0 else "sell"
        coid = f"adopted-{symbol.replace('/', '')}-{int(time.time() * 1000)}"
        trading = ctx.config.trading
        stop = (price * (1 - trading.stop_loss_percent / 100) if side == "buy"
                else price * (1 + trading.stop_loss_percent / 100))
        target = (price * (1 + trading.take_profit_percent / 100) if side == "buy"
                  else price * (1 - trading.take_profit_percent / 100))
        book["orders"][coid] = {"symbol": symbol, "role": "entry", "purpose": "open", "side": side, "amount": amount,
                                "status": "filled", "reported": True, "stop_loss": stop, "take_profit": target,
                                "reason": "adopted", "price": price}
        fill = Fill(order_id=coid, client_order_id=coid, symbol=symbol, side=Side(side), purpose="open", amount=amount,
                    price=price, fee=0.0, time=ctx.now(), reason="adopted")
        self._tell(ctx, symbol,
                   f"adopted {signed:g} at {price:g} that gobot did not open; stop {stop:g}, target {target:g}",
                   cause="adopted")
        await self.trader.protect(ctx, coid, {"filled": amount})
        return [fill]

    # -- the orders that belong to the position -------------------------------------------------------------

    async def _check_orders(self, ctx: Any, book: dict, symbol: str, holding: float) -> None:
        """A held position's stop must be open on the exchange; the plugin's orders without a position go."""
        protection = book["protection"].get(symbol)
        if not holding and not protection:
            return
        ccxt_symbol = self.trader.symbols[symbol]
        with priority(Priority.NORMAL):
            open_orders = await self.ex.fetch_open_orders(ccxt_symbol)
            if self.trader.futures:
                open_orders += await self.ex.fetch_open_orders(ccxt_symbol, None, None, {"trigger": True})
        open_ids = {o.get("clientOrderId") for o in open_orders}
        if not holding:
            await self.trader.cancel_protection(ctx, symbol)
            self._tell(ctx, symbol, "no position, but its stop and target were still open: cancelled", cause="orphaned")
            return
        if protection is None or protection.get("mode") == "pending":
            return  # placed (again) by the sync's retry, or by adoption
        stop = protection.get("legs", {}).get("sl")
        if stop is None or stop in open_ids or book["orders"].get(stop, {}).get("reported"):
            return
        record = book["orders"].get(stop, {})
        if record.get("status") == "triggered":
            return  # its fill is being looked for
        with priority(Priority.NORMAL):  # the order itself decides (a list of open orders may be garbled)
            found = await self.trader.lookup(ccxt_symbol, stop, trigger=bool(record.get("trigger")))
        if found is not None and found.get("status") in ("open", "closed"):
            return  # open after all, or filled (its fill is the sync's)
        entry = protection["entry"]
        self._tell(ctx, symbol, f"its stop {stop} is no longer open on the exchange: placing it again",
                   cause="unprotected", severity=Severity.CRITICAL)
        for coid in protection.get("legs", {}).values():
            if coid in open_ids:
                await self.trader.cancel_leg(ccxt_symbol, coid, book["orders"].get(coid, {}))
            book["orders"].pop(coid, None)
        book["protection"].pop(symbol, None)
        book.setdefault("generation", {})[entry] = book.get("generation", {}).get(entry, 1) + 1
        if entry in book["orders"]:
            await self.trader.protect(ctx, entry, {"filled": holding})

    def _tell(self, ctx: Any, symbol: str, text: str, *, cause: str, severity: Severity = Severity.WARNING,
              **data: Any) -> None:
        ctx.alert(Alert(kind="reconciliation", title=f"{symbol}: the exchange's book and the bot's differ", text=text,
                        severity=severity, data={"symbol": symbol, "cause": cause} | data))
        ctx.audit("binance_divergence", symbol=symbol, cause=cause, text=text, **data)
