"""``sma_cross``: an SMA crossover on the close, long only — the backtester's benchmark strategy.

Off by default (enable it with ``[plugins] enable = ["sma_cross"]`` or ``-p sma_cross``). It
registers the ``sma_cross`` strategy and asks it for an idea per symbol each cycle: LONG on the
candle where SMA(fast) crosses above SMA(slow), an exit on the opposite cross (a SHORT idea is
dropped when there is no long to close: the strategy is long only). The idea is about the newest
candle only, so run it with ``loop_interval`` equal to the candles' timeframe.
"""

from __future__ import annotations

from gobot_hookspecs import Action, Signal, hookimpl

from .strategy import SmaCrossStrategy

NAME = "sma_cross"


class SmaCross:
    def __init__(self) -> None:
        self.strategy = SmaCrossStrategy()

    @hookimpl
    def gobot_register_strategies(self, register):
        register(self.strategy)

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        version = ctx.strategy(NAME)
        positions = ctx.positions()
        signals = []
        for snap in snapshots:
            signal = self.strategy.signal(snap.symbol, snap.candles, version.params)
            held = positions.get(snap.symbol)
            if signal.action is Action.SHORT and (held is None or held.direction is not Action.LONG):
                signal = Signal(symbol=snap.symbol, action=Action.HOLD, confidence=0.0, strategy=NAME,
                                rationale=f"{signal.rationale}; long only, nothing to close")
            signals.append(signal.model_copy(update={"strategy_version": version.version}))
        return signals
