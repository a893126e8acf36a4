"""``adjuster``: changes one declared strategy parameter by a fixed, documented rule.

Rule: look at the last ``window`` closed trades of the strategy's current version. With at
least ``min_trades`` of them, if the win rate is below ``low_win_rate``, widen ``parameter`` by
its declared step (a slower average filters more noise); otherwise keep the version. The
change is a proposal: the validation phase judges it, and only an accepted one becomes a new
version. A rejected one is not proposed again by the core until new trades closed
(``[strategy_versions] new_evidence_trades``).
"""

from __future__ import annotations

from pydantic import Field

from gobot_hookspecs import AdjustmentDecision, PluginConfig, hookimpl

NAME = "adjuster"


class AdjusterConfig(PluginConfig):
    parameter: str = Field("slow", description="strategy parameter to adjust")
    window: int = Field(4, ge=1, description="recent closed trades looked at")
    min_trades: int = Field(3, ge=1, description="closed trades needed before any change")
    low_win_rate: float = Field(0.34, ge=0, le=1, description="below this win rate the parameter is widened")


class Adjuster:
    @hookimpl
    def gobot_config_model(self):
        return AdjusterConfig

    @hookimpl
    def gobot_adjust_strategy(self, ctx, strategy):
        config = AdjusterConfig.of(ctx, NAME)
        spec = ctx.strategies()[strategy.name].parameters.get(config.parameter)
        if spec is None:
            return AdjustmentDecision(strategy=strategy.name, reason=f"no parameter '{config.parameter}' to adjust")
        trades = [t for t in ctx.closed_trades()
                  if t.strategy == strategy.name and t.strategy_version == strategy.version]
        recent = trades[-config.window :]
        if len(recent) < config.min_trades:
            return AdjustmentDecision(
                strategy=strategy.name,
                reason=f"{len(recent)} closed trades on v{strategy.version}, need {config.min_trades}",
            )
        wins = sum(1 for t in recent if t.pnl > 0)
        rate = wins / len(recent)
        if rate >= config.low_win_rate:
            return AdjustmentDecision(strategy=strategy.name, reason=f"won {wins} of the last {len(recent)}: keep")
        current = strategy.params[config.parameter]
        new = min(spec.high, current + spec.step)
        if new == current:
            return AdjustmentDecision(strategy=strategy.name,
                                      reason=f"{config.parameter} already at its maximum {spec.high:g}")
        return AdjustmentDecision(
            strategy=strategy.name,
            changes={config.parameter: new},
            reason=f"won {wins} of the last {len(recent)} (< {config.low_win_rate:.0%}): "
            f"{config.parameter} {current:g} -> {new:g} to filter noise",
        )
