"""``kelly_size``: the default position sizer — fractional Kelly from the bot's own trade history.

Each closed trade's return on its notional is kept in ``ctx.plugin_state("kelly_size")`` (the
state store; carried into the next run on the wall clock). When a trade archive answers
``ctx.trade_history()`` (``gobot_trade_history``) with a longer history, that is used instead.
From the most recent ``lookback_trades`` of them: win rate ``p`` and payoff ``b`` (average win / average loss), Kelly
``f = p - (1 - p) / b``, and the position's notional is ``fraction * f * equity``, capped by
``[trading] max_position_usd`` and the equity. Below ``min_trades`` closed trades the estimate is
not trusted and the size is fixed (``max_position_usd``, like ``fixed_size``). A negative edge
(``f <= 0``) sizes 0: no trade. The size is never raised to a market's minimum notional;
``risk_limits`` vetoes an order below it (with the reason) instead.

It is the default sizer and answers ``trylast``, so any third-party sizer comes first. The simple
alternative, ``fixed_size`` (every position ``max_position_usd``), is off by default: enable it
and disable ``kelly_size``.
"""

from __future__ import annotations

from pydantic import Field

from gobot_hookspecs import PluginConfig, hookimpl
from gobot_hookspecs.money import decimals, money, trade_rate

NAME = "kelly_size"


def trade_return(trade, currency: str) -> float | None:
    """The trade's net return on its notional, both in ``currency`` (a symbol quoted in another has its
    notional converted at ``money.trade_rate``); None when there is no notional or no rate."""
    notional = abs(trade.entry_price * trade.amount) * (trade_rate(trade, currency) or 0.0)
    return trade.pnl / notional if notional > 0 else None


class KellySizeConfig(PluginConfig):
    fraction: float = Field(0.5, gt=0, le=1, description="share of the full Kelly stake to use (0.5 = half Kelly)")
    min_trades: int = Field(
        30, ge=1, description=("closed trades needed before Kelly is trusted; "
                               "until then positions are [trading] max_position_usd")
    )
    lookback_trades: int = Field(100, ge=1, description="most recent closed trades the win rate and payoff come from")


def kelly_fraction(returns: list[float]) -> tuple[float, float, float]:
    """Kelly's ``f = p - (1 - p) / b`` of a list of trade returns, with the win rate ``p`` and payoff ``b``."""
    wins = [r for r in returns if r > 0]
    losses = [-r for r in returns if r < 0]
    p = len(wins) / len(returns) if returns else 0.0
    if not wins:
        return 0.0, p, 0.0
    if not losses:
        return 1.0, p, float("inf")
    b = (sum(wins) / len(wins)) / (sum(losses) / len(losses))
    return p - (1 - p) / b, p, b


class KellySize:
    def __init__(self) -> None:
        self._archived: tuple[str, tuple, list[float]] | None = None  # (currency, trades, their returns)

    @hookimpl
    def gobot_config_model(self):
        return KellySizeConfig

    @staticmethod
    def _returns(ctx) -> list[float]:
        state = ctx.plugin_state(NAME)
        state["carry_over"] = True
        return state.setdefault("returns", [])

    @hookimpl
    def gobot_on_trade_closed(self, ctx, trade):
        """Remember the trade's return for the next sizes."""
        config = KellySizeConfig.of(ctx, NAME)
        value = trade_return(trade, ctx.currency)
        if value is None:
            return
        returns = self._returns(ctx)
        returns.append(round(value, 8))
        del returns[: max(0, len(returns) - config.lookback_trades)]

    async def _history(self, ctx, limit: int) -> tuple[list[float], str]:
        """Trade returns from the archive when it holds more than the own ledger, else the ledger."""
        ledger = self._returns(ctx)[-limit:]
        try:
            trades = await ctx.trade_history(limit)
        except (LookupError, AttributeError):  # no archive (or a context without one, e.g. a backtest)
            return ledger, "state store"
        archived = self._returns_of(trades, ctx.currency)
        return (archived, "archive") if len(archived) > len(ledger) else (ledger, "state store")

    def _returns_of(self, trades: list, currency: str) -> list[float]:
        """The trades' returns; the very same trades as last time (the archive's answer, held until it
        stores another trade) are not worked out again at every entry decision."""
        known = self._archived
        if known is None or known[0] != currency or len(known[1]) != len(trades) or \
                any(a is not b for a, b in zip(known[1], trades)):
            returns = [value for t in trades if (value := trade_return(t, currency)) is not None]
            known = self._archived = (currency, tuple(trades), returns)  # held: no id reused meanwhile
        return list(known[2])

    @hookimpl(trylast=True)  # a built-in default: any other sizer plugin answers first
    async def gobot_size_position(self, ctx, signal):
        config = KellySizeConfig.of(ctx, NAME)
        cap, equity = ctx.config.trading.max_position_usd, ctx.equity()
        returns, source = await self._history(ctx, config.lookback_trades)
        if len(returns) < config.min_trades:
            size = max(0.0, min(cap, equity))
            ctx.audit("sizing", plugin=NAME, symbol=signal.symbol, notional=size, source=source,
                      why=f"fixed: {len(returns)} of {config.min_trades} closed trades needed for Kelly")
            return size
        f, p, b = kelly_fraction(returns)
        size = max(0.0, min(config.fraction * f * equity, cap, equity))
        size = 0.0 if f <= 0 else round(size, decimals(ctx.currency))  # cents, or satoshis in BTC
        ctx.audit("sizing", plugin=NAME, symbol=signal.symbol, notional=size, kelly=f, win_rate=p, payoff=b,
                  trades=len(returns), source=source,
                  why=("negative edge: no position" if f <= 0
                       else f"{config.fraction:g} x Kelly {f:.3f} x equity {money(equity, ctx.currency)}"))
        return size
