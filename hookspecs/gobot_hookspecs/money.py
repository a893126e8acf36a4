"""Money, written once: which currency an amount is in, how it converts and how it is shown.

- A market's prices, fees and P&L are in its **quote** currency: ``ETH/BTC`` -> ``BTC``,
  ``BTC/USDT:USDT`` -> ``USDT`` (``quote_of``).
- The **portfolio currency** is the one quote of the traded symbols; when they have several, the
  configured ``[trading] currency`` (``portfolio_currency``). Capital, limits, equity, P&L and
  every figure a report, alert or status shows are in it.
- An amount in another quote converts at the **latest close of a conversion pair among the traded
  symbols**: ``QUOTE/CURRENCY`` (multiply) or ``CURRENCY/QUOTE`` (divide). With no such pair, or no
  price for it yet, there is no rate: ``rate`` raises ``LookupError`` rather than guess.

Standard library only, pure functions, so the core, the backtester and plugins label and convert
money the same way (``money(2.5, "BTC")`` -> ``"2.50 BTC"``).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

#: Currencies whose amounts are shown with 2 decimals; any other with up to 8 (a satoshi).
CENTS = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "EUR", "GBP", "JPY", "TRY", "BRL"})


def quote_of(symbol: str) -> str:
    """The quote currency of ``BASE/QUOTE`` or ``BASE/QUOTE:SETTLE``: ``"ETH/BTC"`` -> ``"BTC"``."""
    return symbol.partition("/")[2].partition(":")[0] or symbol


def quotes(symbols: Iterable[str]) -> list[str]:
    """The distinct quote currencies of ``symbols``, in order of first appearance."""
    return list(dict.fromkeys(quote_of(symbol) for symbol in symbols))


def conversion_pair(quote: str, currency: str, symbols: Iterable[str]) -> tuple[str, bool] | None:
    """The traded symbol that prices ``quote`` in ``currency`` and whether its price is inverted:
    ``("BTC/USDT", False)`` (1 BTC = close USDT) or ``("USDT/BTC", True)``; None when none is traded."""
    found = None
    for symbol in symbols:
        base, other = symbol.partition(":")[0].partition("/")[::2]
        if (base, other) == (quote, currency):
            return symbol, False
        if (base, other) == (currency, quote) and found is None:
            found = (symbol, True)
    return found


def portfolio_currency(symbols: Iterable[str], configured: str = "") -> str:
    """The currency the portfolio counts in: ``configured`` if given, else the symbols' one quote.

    Raises ``ValueError`` saying why when the symbols have several quotes and none is configured,
    or when a quote cannot be converted into the configured currency (no conversion pair traded).
    """
    symbols = list(symbols)
    found = quotes(symbols)
    if not configured:
        if len(found) > 1:
            raise ValueError(f"the symbols are quoted in {', '.join(found)}, and no currency is set to count "
                             "the portfolio in")
        return found[0] if found else ""
    for quote in found:
        if quote != configured and conversion_pair(quote, configured, symbols) is None:
            raise ValueError(f"{quote} cannot be converted into {configured}: neither {quote}/{configured} nor "
                             f"{configured}/{quote} is among the symbols")
    return configured


def rate(quote: str, currency: str, prices: Mapping[str, float], symbols: Iterable[str]) -> float:
    """How much one ``quote`` is worth in ``currency`` at ``prices`` (the latest closes by symbol).

    1.0 for the same currency. Raises ``LookupError`` when no conversion pair is traded or it has no
    positive price yet: an amount is never converted at a guessed rate."""
    if quote == currency:
        return 1.0
    pair = conversion_pair(quote, currency, symbols)
    if pair is None:
        raise LookupError(f"no rate from {quote} to {currency}: trade {quote}/{currency} to have one")
    price = prices.get(pair[0])
    if not price or price <= 0:
        raise LookupError(f"no rate from {quote} to {currency}: no price of {pair[0]} yet")
    return 1.0 / price if pair[1] else float(price)


def trade_rate(trade: Any, currency: str) -> float | None:
    """What one unit of a closed trade's quote was worth in ``currency`` at its close, read off the
    trade itself: its ``pnl``, ``fees`` and ``funding`` are in the portfolio currency and its prices in
    the quote, so the rate is ``(pnl + fees - funding) / gross P&L in the quote`` (funding was converted
    at each payment's time, the rest at the close). 1 when the quote is ``currency`` (or no
    currency is named); None for a trade in another quote that did not move (nothing to read it from).
    A return or an R multiple divides by a notional or a risk times this rate."""
    if not currency or quote_of(trade.symbol) == currency:
        return 1.0
    sign = -1 if str(getattr(trade.direction, "value", trade.direction)).upper() == "SHORT" else 1
    gross = sign * (trade.exit_price - trade.entry_price) * trade.amount
    return (trade.pnl + trade.fees - getattr(trade, "funding", 0.0)) / gross if gross else None


def decimals(currency: str) -> int:
    """Decimals an amount in ``currency`` is shown with: 2 for fiat and stablecoins (and no currency), else 8."""
    return 2 if not currency or currency.upper() in CENTS else 8


def amount_text(amount: float, currency: str, signed: bool = False, significant: int | None = None) -> str:
    """``amount`` as ``money`` shows it, without the currency (a table whose column names it).
    ``significant``: a crypto amount with that many significant digits at most (a narrow column)."""
    places = decimals(currency)
    if significant and places > 2 and amount:
        places = min(places, max(2, significant - 1 - math.floor(math.log10(abs(amount)))))
    text = f"{amount:{'+' if signed else ''}.{places}f}"
    if places > 2:
        whole, _, fraction = text.partition(".")
        text = f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"
    return text


def money(amount: float, currency: str, signed: bool = False) -> str:
    """``amount`` with its currency: ``"12.50 USDT"``, ``"0.0012 BTC"`` (trailing zeros of a crypto
    amount dropped, two kept); ``signed`` puts ``+`` before a gain."""
    return f"{amount_text(amount, currency, signed)} {currency}".rstrip()
