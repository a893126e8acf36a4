"""``sma_rsi``: a rule-based idea generator — an SMA crossover filtered by RSI.

LONG when the fast SMA crosses above the slow one and RSI is below ``rsi_long_max``; SHORT on
the opposite cross with RSI above ``rsi_short_min``; HOLD otherwise. Confidence grows with the
gap between the averages and the RSI's room to run. A trend learning ("bearish trend detected
on ETH/USDT ...") is recorded when a symbol's trend turns, and tempers later ideas against it.
"""

from __future__ import annotations

from gobot_hookspecs import Action, Learning, hookimpl
from gobot_hookspecs.candles import timeframe_seconds

from .strategy import SmaRsiStrategy, trend_slope_pct

NAME = "sma_rsi"
TREND_HOURS = 1.0  # the trend is the slow SMA's slope over this long
TREND_MIN_PCT = 0.15  # a slope smaller than this (either way) is a flat market


class SmaRsi:
    def __init__(self) -> None:
        self.strategy = SmaRsiStrategy()

    @hookimpl
    def gobot_register_strategies(self, register):
        register(self.strategy)

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots, learnings):
        version = ctx.strategy(NAME)
        trends = ctx.plugin_state(NAME).setdefault("trend", {})
        signals = []
        for snap in snapshots:
            signal = self.strategy.signal(snap.symbol, snap.candles, version.params)
            signal = signal.model_copy(update={"strategy_version": version.version})
            signal = _temper(signal, learnings)
            signals.append(signal)
            candles = max(1, round(TREND_HOURS * 3600 / timeframe_seconds(snap.candles.timeframe)))
            slope = trend_slope_pct(snap.candles.close, int(version.params["slow"]), candles)
            if slope is None:
                continue
            trend = "bullish" if slope >= TREND_MIN_PCT else "bearish" if slope <= -TREND_MIN_PCT else "flat"
            if trends.get(snap.symbol, "flat") != trend:
                trends[snap.symbol] = trend
                ctx.add_learning(
                    Learning(
                        text=f"{trend} trend detected on {snap.symbol}: "
                        f"slow SMA {slope:+.2f}% over {TREND_HOURS:g}h",
                        evidence={"trend": trend, "slope_pct": round(slope, 4), "price": snap.price},
                        symbol=snap.symbol,
                        source=NAME,
                    )
                )
        return signals


def _temper(signal, learnings):
    """Lower the confidence of an idea that goes against the latest trend learning for its symbol."""
    if signal.action is Action.HOLD:
        return signal
    latest = next((item for item in reversed(learnings)
                   if item.symbol == signal.symbol and "trend" in item.evidence), None)
    if latest is None or latest.evidence["trend"] == "flat":
        return signal
    against = (signal.action is Action.LONG) == (latest.evidence["trend"] == "bearish")
    if not against:
        return signal.model_copy(update={"learnings_used": [latest.id]})
    return signal.model_copy(
        update={
            "confidence": max(0.0, round(signal.confidence - 0.1, 4)),
            "rationale": f"{signal.rationale}; -0.10 against {latest.evidence['trend']} trend ({latest.id})",
            "learnings_used": [latest.id],
        }
    )
