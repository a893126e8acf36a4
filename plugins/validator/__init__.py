"""``validator``: judges each strategy version by a backtest over the candles of this cycle's scan.

A version passes when, summed over the symbols, its backtest loses less than ``max_loss_pct``
and, when it is a new version, it does not trail the version before it by more than
``tolerance_pct``. A failed new version is reverted by the core.
"""

from __future__ import annotations

from pydantic import Field

from gobot_hookspecs import PluginConfig, ValidationResult, hookimpl

NAME = "validator"


class ValidatorConfig(PluginConfig):
    max_loss_pct: float = Field(10.0, gt=0, description="a version whose backtest loses more than this fails, %")
    tolerance_pct: float = Field(1.0, ge=0, description="a new version may trail the previous one by this much, %")


def _backtest_return(ctx, name: str, params: dict) -> tuple[float, int]:
    total, trades = 0.0, 0
    for snap in ctx.snapshots:
        result = ctx.backtest(name, params, snap.candles, snap.symbol)
        total += result.return_pct
        trades += len(result.trades)
    return total, trades


class Validator:
    @hookimpl
    def gobot_config_model(self):
        return ValidatorConfig

    @hookimpl
    def gobot_validate_strategy(self, ctx, strategy):
        config = ValidatorConfig.of(ctx, NAME)
        if not ctx.snapshots:
            return ValidationResult(strategy=strategy.name, version=strategy.version, passed=True,
                                    reason="no candles to test on")
        ret, trades = _backtest_return(ctx, strategy.name, strategy.params)
        candles = len(ctx.snapshots[0].candles)
        metrics = {"return_pct": round(ret, 4), "trades": trades}
        summary = f"backtest over the last {candles} candles: {ret:+.2f}% in {trades} trades"
        if ret < -config.max_loss_pct:
            return ValidationResult(strategy=strategy.name, version=strategy.version, passed=False, metrics=metrics,
                                    reason=f"{summary}, loses more than {config.max_loss_pct:g}%")
        earlier = [v for v in ctx.strategy_history(strategy.name) if v.version < strategy.version]
        if earlier and strategy.created_at == ctx.now():
            before, _ = _backtest_return(ctx, strategy.name, earlier[-1].params)
            metrics["previous_return_pct"] = round(before, 4)
            if ret < before - config.tolerance_pct:
                return ValidationResult(strategy=strategy.name, version=strategy.version, passed=False, metrics=metrics,
                                        reason=f"{summary}, trails v{earlier[-1].version} ({before:+.2f}%)")
            summary += f", v{earlier[-1].version} made {before:+.2f}%"
        return ValidationResult(strategy=strategy.name, version=strategy.version, passed=True, reason=summary,
                                metrics=metrics)
