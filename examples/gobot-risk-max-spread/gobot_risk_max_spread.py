"""max_spread: a gobot risk plugin — no new position while a market's bid/ask spread is too wide.

A wide spread is a thin market: entry and exit each pay half of it, and the quote alone can touch
a stop. The rule reads this cycle's market scan (``ctx.snapshots``): the spread of the order's
symbol as a % of the mid price. A market without a quote cannot be judged, and a risk rule that
cannot see says no: that is a veto too, unless ``without_quote = "allow"``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gobot_hookspecs import MarketSnapshot, PluginConfig, RiskCounter, RiskStatus, RiskVerdict, hookimpl

NAME = "max_spread"  # the entry-point name: config section, plugin_config() and plugin_state() key


class MaxSpreadConfig(PluginConfig):  # unknown keys forbidden: a misspelled one fails `gobot config check`
    max_spread_pct: float = Field(0.1, gt=0,
                                  description="widest bid/ask spread that may open a position, % of the mid price")
    without_quote: Literal["veto", "allow"] = Field(
        "veto", description="when the market data has no bid/ask: veto (fail closed) or allow"
    )


def spread_pct(snapshot: MarketSnapshot) -> float | None:
    """The bid/ask spread as a % of the mid price; None without a usable quote."""
    bid, ask = snapshot.bid, snapshot.ask
    if bid is None or ask is None or bid <= 0 or ask < bid:
        return None
    return (ask - bid) / ((ask + bid) / 2) * 100


class MaxSpread:
    @hookimpl
    def gobot_config_model(self):
        return MaxSpreadConfig

    @hookimpl
    def gobot_risk_check(self, ctx, intent):
        config = MaxSpreadConfig.of(ctx, NAME)
        snapshot = next((snap for snap in ctx.snapshots if snap.symbol == intent.symbol), None)
        spread = spread_pct(snapshot) if snapshot is not None else None
        if spread is None:
            if config.without_quote == "allow":
                return RiskVerdict(approved=True, reason=f"no quote for {intent.symbol} (without_quote = allow)")
            return RiskVerdict(approved=False, reason=f"no bid/ask quote for {intent.symbol}: spread unknown "
                                                      '(fail closed; without_quote = "allow" trades anyway)')
        if spread > config.max_spread_pct:
            return RiskVerdict(approved=False,
                               reason=f"spread {spread:.3f}% on {intent.symbol} "
                                      f"above max_spread_pct {config.max_spread_pct:g}")
        return RiskVerdict(approved=True,
                           reason=f"spread {spread:.3f}% within max_spread_pct {config.max_spread_pct:g}")

    @hookimpl
    def gobot_risk_status(self, ctx):
        """For `gobot risk status`: the limit, and each market's spread if the last scan is known."""
        config = MaxSpreadConfig.of(ctx, NAME)
        counters = []
        for snap in ctx.snapshots:
            spread = spread_pct(snap)
            counters.append(RiskCounter(name=f"spread {snap.symbol}",
                                        value=None if spread is None else round(spread, 4),
                                        limit=config.max_spread_pct, unit="%",
                                        blocking=spread is None and config.without_quote == "veto"
                                        or (spread or 0) > config.max_spread_pct))
        if not counters:
            counters.append(RiskCounter(name="bid/ask spread", limit=config.max_spread_pct, unit="%",
                                        note="checked per order against the cycle's quotes"))
        return RiskStatus(allows_trading=True, reason=f"orders need a spread of at most {config.max_spread_pct:g}%",
                          counters=counters)
