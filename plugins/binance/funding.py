"""USDⓈ-M futures funding payments, read from the account's income history and reported as ``Funding``.

Binance pays or charges funding on every open perpetual position at each funding time (every 8 h on
most symbols, 4 h or 1 h on some) and books it as income of type ``FUNDING_FEE`` (``GET
/fapi/v1/income``, "Get Income History (USER_DATA)", request weight 30; ccxt's
``fetch_funding_history``). The exchange is the source of truth for cash, so every payment goes to the
core (``gobot_sync_executions``), which books each ``tranId`` once.

When it asks: only while a position of the plugin's symbols is open, or was open since the last
check; then at most once every ``funding_check_minutes`` (bot clock), and at once in a cycle that
closes a position, so the payments made while it was open reach its trade before the close does.
It asks for the payments since the newest one it reported (``startTime`` is inclusive: the newest
comes again, and the core ignores an id it booked), at LOW priority. Spot markets have no funding.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from gobot_hookspecs import Fill, Funding, Order, Priority

from .client import GarbledAnswer, priority
from .execution import is_number

#: Records per request (Binance's maximum); more than this since the last check waits for the next one.
LIMIT = 1000


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class FundingWatch:
    """The funding side of one ``Trader`` (see the module docstring)."""

    def __init__(self, trader: Any):
        self.trader = trader

    async def check(self, ctx: Any, batch: list[Fill | Order]) -> list[Funding]:
        """The funding payments since the last check, when one is due; ``GarbledAnswer`` on a bad answer
        (nothing is marked as read: the next check asks again)."""
        trader = self.trader
        if not trader.futures:
            return []
        state = trader.book(ctx).setdefault("funding", {})
        positions = {s: p for s, p in ctx.positions().items() if s in trader.symbols}
        opened = [_ms(p.opened_at) for p in positions.values()]
        opened += [_ms(f.time) for f in batch if isinstance(f, Fill) and f.purpose == "open"]
        if opened:
            state["held"] = True
            state.setdefault("since_ms", min(opened))
        closing = any(isinstance(f, Fill) and f.purpose == "close" for f in batch)
        now_ms = _ms(ctx.now())
        every_ms = trader.config.funding_check_minutes * 60_000
        due = closing or now_ms - state.get("checked_ms", 0) >= every_ms
        if not state.get("held") or not due:
            return []
        since = state.get("since_ms", now_ms)
        with priority(Priority.LOW):
            rows = await trader.ex.fetch_funding_history(None, since, LIMIT, {"incomeType": "FUNDING_FEE"})
        payments = self._payments(rows)
        state["checked_ms"] = now_ms
        state["held"] = bool(positions) or any(isinstance(f, Fill) and f.purpose == "open" for f in batch)
        if payments:
            state["since_ms"] = max(_ms(p.time) for p in payments)
        elif not state["held"]:
            state.pop("since_ms", None)  # flat and every payment read: the next position starts afresh
        return payments

    def _payments(self, rows: Any) -> list[Funding]:
        """ccxt's funding history (``parse_income``) of the plugin's symbols as ``Funding``."""
        if not isinstance(rows, list):
            raise GarbledAnswer(f"income: {type(rows).__name__} instead of a list")
        core = {ccxt_symbol: symbol for symbol, ccxt_symbol in self.trader.symbols.items()}
        payments = []
        for row in rows:
            symbol = core.get(row.get("symbol")) if isinstance(row, dict) else None
            if symbol is None:
                continue  # another symbol's position: not the bot's
            info = row.get("info") or {}
            if info.get("incomeType", "FUNDING_FEE") != "FUNDING_FEE":
                continue
            amount, at, id_ = row.get("amount"), row.get("timestamp"), row.get("id")
            if not (is_number(amount) and is_number(at) and at > 0 and id_):
                raise GarbledAnswer(f"income: funding {id_!r} of {amount!r} at {at!r}")
            payments.append(Funding(id=f"binance:{id_}", symbol=symbol, amount=amount,
                                    time=datetime.fromtimestamp(at / 1000, tz=timezone.utc)))
        return payments
