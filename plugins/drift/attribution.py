"""Where a live trade's P&L and its paper twin's part ways, in eight parts that add up to the gap.

With ``s`` the direction (+1 long), ``A`` the amount, ``E`` and ``X`` the entry and exit prices, ``F``
the fees (live: as charged, BNB commissions valued in the quote by the executor), ``U`` the live trade's
funding (``Trade.funding``: received +, paid -) and ``O`` a candle's open, each part is the live trade's
P&L minus the twin's, in the quote currency:

=================== ===========================================================================
missed_or_partial   ``s (A_live - A_twin) (X_twin - E_twin)``: the twin's per-unit result on what did
                    not fill (all of it when the live order never filled)
entry_delay         ``-s A_live (O_live - O_twin)``: the market's move between the twin's entry candle
                    and the later candle in which the live entry filled (0 when it filled no later)
entry_slippage      ``-s A_live (E_live - E_twin)`` minus ``entry_delay``: the price on the same candle
exit_delay          ``s A_live (O_live - O_twin)`` at the exit, likewise
exit_slippage       ``s A_live (X_live - X_twin)`` minus ``exit_delay``
fees                ``F_twin - F_live``
funding             ``U_live - 0``: the funding the live position paid or received (the twin pays none)
funding_other       the rest of the live P&L the fills, fees and funding do not explain (a portfolio
                    currency other than the quote): ``pnl_live - (s A_live (X_live - E_live) - F_live + U_live)``
=================== ===========================================================================

Their sum is ``pnl_live - pnl_twin`` exactly (the algebra is in docs/drift.md; a test holds it to the cent).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from gobot_hookspecs import DRIFT_PARTS

from . import twin as twins

PARTS = DRIFT_PARTS


@dataclass
class Live:
    """The live side of a trade as the core booked it (``Trade``), times in epoch ms."""

    amount: float
    entry_price: float
    exit_price: float
    fees: float
    pnl: float
    entry_ms: int
    exit_ms: int
    funding: float = 0.0


@dataclass
class Attribution:
    missed_or_partial: float = 0.0
    entry_delay: float = 0.0
    entry_slippage: float = 0.0
    exit_delay: float = 0.0
    exit_slippage: float = 0.0
    fees: float = 0.0
    funding: float = 0.0
    funding_other: float = 0.0

    @property
    def total(self) -> float:
        return sum(getattr(self, part) for part in PARTS)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _later_open(opens: list, time_ms: int, twin_ms: int, twin_open: float, timeframe_ms: int) -> float:
    """The open of the live fill's candle when it came after the twin's, else the twin's own."""
    if time_ms - time_ms % timeframe_ms <= twin_ms:
        return twin_open
    found = twins.open_at(opens, time_ms, timeframe_ms)
    return twin_open if found is None else found


def attribute(live: Live | None, twin: dict[str, Any], opens: list, timeframe_ms: int) -> Attribution:
    """The gap between ``live`` (None: the live order never filled) and a closed ``twin``."""
    s, a_twin = twin["side"], twin["amount"]
    e_twin, x_twin = twin["entry_price"], twin["exit_price"]
    fees_twin = twin["entry_fee"] + twin["exit_fee"]
    if live is None:
        return Attribution(missed_or_partial=-s * a_twin * (x_twin - e_twin), fees=fees_twin)
    a = live.amount
    o_entry = _later_open(opens, live.entry_ms, twin["entry_ms"], twin["entry_open"], timeframe_ms)
    o_exit = _later_open(opens, live.exit_ms, twin["exit_ms"], twin["exit_open"], timeframe_ms)
    entry_delay = -s * a * (o_entry - twin["entry_open"])
    exit_delay = s * a * (o_exit - twin["exit_open"])
    return Attribution(
        missed_or_partial=s * (a - a_twin) * (x_twin - e_twin),
        entry_delay=entry_delay,
        entry_slippage=-s * a * (live.entry_price - e_twin) - entry_delay,
        exit_delay=exit_delay,
        exit_slippage=s * a * (live.exit_price - x_twin) - exit_delay,
        fees=fees_twin - live.fees,
        funding=live.funding,
        funding_other=live.pnl - (s * a * (live.exit_price - live.entry_price) - live.fees + live.funding),
    )


def r_multiple(pnl: float, entry: float, stop: float | None, amount: float, stop_loss_percent: float | None) -> float:
    """``pnl`` in units of the trade's initial risk: the distance to its stop times its amount (no stop:
    ``stop_loss_percent`` of the entry, else 1 %)."""
    distance = abs(entry - stop) if stop else entry * (stop_loss_percent or 1.0) / 100
    risk = distance * abs(amount)
    return pnl / risk if risk > 0 else 0.0
