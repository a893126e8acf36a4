"""Portfolio accounting from fills: positions, cash, closed trades, equity and drawdown.

A margin-style account, the same for long and short: opening pays the fee; closing realises
``direction * (exit - entry) * amount`` minus the fee. Equity = cash + unrealised P&L. A funding
payment (perpetual futures) moves cash when it is booked, once per exchange id, and is carried by the
open position into the trade that closes it (``Trade.funding``, part of ``Trade.pnl``).

Cash, equity, exposure and a closed trade's ``pnl`` and ``fees`` are in the portfolio currency. A
symbol quoted in another currency (ETH/BTC in a USDT portfolio) has its P&L, fees and notional
converted here, at the latest close of the conversion pair (``gobot_hookspecs.money.rate``): a fee
when it is paid, a trade's result when it closes, an open position whenever equity is asked for.
No price of the pair yet is a ``LookupError``, never a guessed rate.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Iterable

from gobot.run.state import BotState
from gobot_hookspecs import Action, Fill, Funding, OrderIntent, Position, Side, Trade
from gobot_hookspecs.money import quote_of, rate

#: A close fill this much smaller than the position closes only part of it (below: all of it,
#: so lot-step rounding and a spot buyer's commission never leave a crumb of a position open).
PARTIAL_TOLERANCE = 0.02
#: Booked funding ids are remembered this long after the newest one (an executor asks the exchange for
#: payments since its last check, so older ones never come back).
FUNDING_MEMORY = timedelta(days=30)


class Portfolio:
    def __init__(self, state: BotState, currency: str = "", symbols: Iterable[str] = ()):
        self.state = state
        self.currency = currency  # "" = no conversion: every symbol is in the one currency
        self.symbols = list(symbols)
        self._same: dict[str, bool] = {}  # symbol -> quoted in the portfolio currency

    def rate(self, symbol: str) -> float:
        """One unit of ``symbol``'s quote in the portfolio currency at the latest prices (1 for the same
        currency); ``LookupError`` when the conversion pair has no price yet."""
        same = self._same.get(symbol)
        if same is None:
            same = self._same[symbol] = not self.currency or quote_of(symbol) == self.currency
        return 1.0 if same else rate(quote_of(symbol), self.currency, self.state.last_prices, self.symbols)

    def unrealised(self) -> float:
        """The open positions' P&L at the latest prices, in the portfolio currency."""
        prices = self.state.last_prices
        return sum(pos.unrealised_pnl(prices.get(symbol, pos.entry_price)) * self.rate(symbol)
                   for symbol, pos in self.state.positions.items())

    def equity(self) -> float:
        return self.state.cash + self.unrealised()

    def exposure(self) -> float:
        prices = self.state.last_prices
        return sum(pos.notional(prices.get(symbol, pos.entry_price)) * self.rate(symbol)
                   for symbol, pos in self.state.positions.items())

    def mark(self, prices: dict[str, float]) -> None:
        """Record the latest prices and update the equity peak and the maximum drawdown."""
        self.state.last_prices.update(prices)
        equity = self.equity()
        self.state.equity_peak = max(self.state.equity_peak, equity)
        if self.state.equity_peak > 0:
            drawdown = 1.0 - equity / self.state.equity_peak
            self.state.max_drawdown = max(self.state.max_drawdown, drawdown)

    def apply_fill(self, fill: Fill, intent: OrderIntent | None) -> Trade | None:
        """Apply a fill; return the closed trade when it closes a position."""
        state = self.state
        state.last_prices[fill.symbol] = fill.price
        if fill.purpose == "open":
            held = state.positions.get(fill.symbol)
            if held is not None and (held.direction is Action.LONG) == (fill.side is Side.BUY):
                return self._add(held, fill)  # a second entry the same way (a late fill): one bigger position
            if held is not None:  # the exchange would net it; we keep one position a symbol
                return self._close(held, fill)
            signal = intent.signal if intent else None
            state.cash -= fill.fee * self.rate(fill.symbol)
            state.positions[fill.symbol] = Position(
                symbol=fill.symbol,
                direction=Action.LONG if fill.side is Side.BUY else Action.SHORT,
                amount=fill.amount,
                entry_price=fill.price,
                entry_fee=fill.fee,
                opened_at=fill.time,
                stop_loss=intent.stop_loss if intent else None,
                take_profit=intent.take_profit if intent else None,
                confidence=signal.confidence if signal else None,
                strategy=signal.strategy if signal else None,
                strategy_version=signal.strategy_version if signal else None,
                client_order_id=fill.client_order_id,
            )
            return None
        position = state.positions.get(fill.symbol)
        if position is None:
            return None  # an exit for a position we no longer hold (already closed): nothing to do
        return self._close(position, fill)

    def apply_funding(self, funding: Funding) -> tuple[bool, Position | None]:
        """Book a funding payment once (by its id): cash moves by it and the open position carries it.
        Returns (booked now, the position it went to: None when the symbol has none open)."""
        state = self.state
        if funding.id in state.funding_booked:
            return False, None
        amount = funding.amount * self.rate(funding.symbol)
        state.cash += amount
        state.funding_booked[funding.id] = funding.time
        newest = max(state.funding_booked.values())
        for old in [key for key, at in state.funding_booked.items() if at < newest - FUNDING_MEMORY]:
            del state.funding_booked[old]
        position = state.positions.get(funding.symbol)
        if position is not None:
            position = state.positions[funding.symbol] = position.model_copy(
                update={"funding": position.funding + amount})
        return True, position

    def _add(self, position: Position, fill: Fill) -> None:
        """Grow ``position`` by an entry fill in its direction: the entry price becomes the average."""
        amount = position.amount + fill.amount
        self.state.cash -= fill.fee * self.rate(fill.symbol)
        self.state.positions[fill.symbol] = position.model_copy(update={
            "amount": amount, "entry_fee": position.entry_fee + fill.fee,
            "entry_price": (position.entry_price * position.amount + fill.price * fill.amount) / amount,
        })
        return None

    def _close(self, position: Position, fill: Fill) -> Trade:
        """Close ``position`` by ``fill``; a fill for less than the position (a partial liquidation,
        a part closed by hand) closes that part as its own trade and the rest stays open."""
        state = self.state
        closed = position
        if fill.amount < position.amount * (1 - PARTIAL_TOLERANCE):
            share = fill.amount / position.amount
            closed = position.model_copy(update={"amount": fill.amount, "entry_fee": position.entry_fee * share,
                                                 "funding": position.funding * share})
            state.positions[fill.symbol] = position.model_copy(update={
                "amount": position.amount - fill.amount, "entry_fee": position.entry_fee - closed.entry_fee,
                "funding": position.funding - closed.funding})
        else:
            del state.positions[fill.symbol]
        position = closed
        gross, to_currency = position.unrealised_pnl(fill.price), self.rate(fill.symbol)
        state.cash += (gross - fill.fee) * to_currency  # the entry fee was paid at the open
        trade = Trade(
            symbol=position.symbol,
            direction=position.direction,
            amount=position.amount,
            entry_price=position.entry_price,
            exit_price=fill.price,
            opened_at=position.opened_at,
            closed_at=fill.time,
            fees=(position.entry_fee + fill.fee) * to_currency,  # the whole trade at the close's rate
            pnl=(gross - position.entry_fee - fill.fee) * to_currency + position.funding,  # funding is in cash
            funding=position.funding,
            exit_reason=fill.reason,
            confidence=position.confidence,
            strategy=position.strategy,
            strategy_version=position.strategy_version,
            client_order_id=position.client_order_id,
            initial_stop_loss=position.stop_loss,
        )
        state.trades.append(trade)
        return trade
