"""bollinger: a signal plugin for gobot — Bollinger-band mean reversion.

LONG when the close falls ``width`` standard deviations or more below its ``window``-candle mean
(stretched down, expected to revert), SHORT when it rises as far above; HOLD inside the bands.
Confidence starts at ``base_confidence`` on the band and grows with the distance beyond it.

It imports nothing of gobot but the hook contract (``gobot_hookspecs``): what it needs — the
candles, the current strategy parameters, its settings — reaches it through hook arguments and ``ctx``.
"""

from __future__ import annotations

import math

from pydantic import Field

from gobot_hookspecs import Action, Candles, ParamSpec, PluginConfig, Signal, hookimpl

NAME = "bollinger"
__version__ = "0.1.0"


class BollingerConfig(PluginConfig):
    """``[plugins.bollinger]``: every key has a default, so the plugin works with no section at all
    (``PluginConfig`` forbids unknown keys, so a misspelled one fails ``gobot config check``)."""

    base_confidence: float = Field(0.75, ge=0, le=1, description="confidence of a close exactly on a band, 0-1")
    confidence_per_std: float = Field(0.1, ge=0, le=1,
                                      description="confidence added per standard deviation beyond the band")
    max_confidence: float = Field(0.95, ge=0, le=1, description="cap on the confidence, 0-1")


class BollingerStrategy:
    """The strategy component: pure and fast, so the backtester can call it for every candle."""

    name = NAME
    parameters = {
        "window": ParamSpec(default=20, low=10, high=60, step=5, integer=True,
                            description="candles in the mean, count"),
        "width": ParamSpec(default=2.0, low=1.0, high=3.5, step=0.25, integer=False,
                           description="band half-width, standard deviations"),
    }

    def __init__(self, config: BollingerConfig | None = None) -> None:
        self.config = config or BollingerConfig()

    def signal(self, symbol: str, candles: Candles, params: dict[str, float]) -> Signal:
        n, width = int(params["window"]), float(params["width"])
        if len(candles) < n:
            return Signal(symbol=symbol, action=Action.HOLD, confidence=0.0, strategy=NAME, rationale="warming up")
        closes = candles.close[-n:]
        mean = sum(closes) / n
        std = math.sqrt(sum((c - mean) ** 2 for c in closes) / n)
        close = candles.close[-1]
        if std == 0:
            return Signal(symbol=symbol, action=Action.HOLD, confidence=0.0, strategy=NAME, rationale="flat market")
        z = (close - mean) / std
        if abs(z) < width:
            return Signal(symbol=symbol, action=Action.HOLD, confidence=0.0, strategy=NAME,
                          rationale=f"close {z:+.2f} std from the {n}-candle mean, inside the bands")
        config = self.config
        confidence = min(config.max_confidence, config.base_confidence + config.confidence_per_std * (abs(z) - width))
        action = Action.LONG if z < 0 else Action.SHORT
        where = "below" if z < 0 else "above"
        return Signal(
            symbol=symbol, action=action, confidence=round(confidence, 4), entry=close, timeframe=candles.timeframe,
            strategy=NAME, rationale=f"close {close:.6g} is {abs(z):.2f} std {where} the {n}-candle mean {mean:.6g}",
        )


class Bollinger:
    """The plugin: one instance per bot. Hands the strategy over once, then asks it each cycle."""

    def __init__(self) -> None:
        self.strategy = BollingerStrategy()

    @hookimpl
    def gobot_config_model(self):
        return BollingerConfig

    @hookimpl
    def gobot_register_strategies(self, register):
        register(self.strategy)

    @hookimpl
    def gobot_startup(self, ctx):
        self.strategy.config = BollingerConfig.of(ctx, NAME)

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        version = ctx.strategy(NAME)  # the adjust phase may have changed the parameters
        return [
            self.strategy.signal(snap.symbol, snap.candles, version.params).model_copy(
                update={"strategy_version": version.version}
            )
            for snap in snapshots
        ]
