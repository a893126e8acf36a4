"""``validator``: judges a strategy version by a backtest over the candles of this cycle's scan.

The core asks when there is something to judge: a proposal, or the active version once new trades
closed. The backtest (``ctx.backtest``) sizes and risk-checks every entry with the bot's own
plugins, so its percentages are what the bot would have made. A version passes when, summed over
the symbols, its backtest loses less than ``max_loss_pct`` and, when it is a proposal, it does not
trail the active version by more than ``tolerance_pct``. The core rejects a failed proposal and
applies ``[strategy_versions] on_active_failure`` to a failed active version.
"""

from __future__ import annotations

from pydantic import Field

from gobot_hookspecs import PluginConfig, ValidationResult, hookimpl

NAME = "validator"


class ValidatorConfig(PluginConfig):
    max_loss_pct: float = Field(10.0, gt=0, description="a version whose backtest loses more than this fails, %")
    tolerance_pct: float = Field(1.0, ge=0, description="a proposal may trail the active version by this much, %")


class Validator:
    def __init__(self) -> None:
        self._tested: dict[tuple, tuple[float, int]] = {}  # this cycle's backtests: the active one judged, then
        # compared with a proposal, runs once

    def _backtest_return(self, ctx, name: str, params: dict) -> tuple[float, int]:
        """Summed over the symbols of this cycle's scan: the return, % of the start equity, and the trades."""
        key = (ctx.run_id, ctx.iteration, name, tuple(sorted(params.items())))
        if key not in self._tested:
            total, trades = 0.0, 0
            for snap in ctx.snapshots:
                result = ctx.backtest(name, params, snap.candles, snap.symbol)
                total += result.return_pct
                trades += len(result.trades)
            self._tested = {k: v for k, v in self._tested.items() if k[:2] == key[:2]}
            self._tested[key] = (total, trades)
        return self._tested[key]

    @hookimpl
    def gobot_config_model(self):
        return ValidatorConfig

    @hookimpl
    def gobot_validate_strategy(self, ctx, strategy):
        config = ValidatorConfig.of(ctx, NAME)
        if not ctx.snapshots:
            return ValidationResult(strategy=strategy.name, version=strategy.version, passed=True,
                                    reason="no candles to test on")
        ret, trades = self._backtest_return(ctx, strategy.name, strategy.params)
        candles = len(ctx.snapshots[0].candles)
        metrics = {"return_pct": round(ret, 4), "trades": trades}
        summary = f"backtest over the last {candles} candles: {ret:+.2f}% in {trades} trades"
        if ret < -config.max_loss_pct:
            return ValidationResult(strategy=strategy.name, version=strategy.version, passed=False, metrics=metrics,
                                    reason=f"{summary}, loses more than {config.max_loss_pct:g}%")
        active = ctx.strategy(strategy.name)
        if active.version != strategy.version:  # a proposal: compare it with the version it would replace
            before, _ = self._backtest_return(ctx, strategy.name, active.params)
            metrics["previous_return_pct"] = round(before, 4)
            if ret < before - config.tolerance_pct:
                return ValidationResult(strategy=strategy.name, version=strategy.version, passed=False, metrics=metrics,
                                        reason=f"{summary}, trails v{active.version} ({before:+.2f}%)")
            summary += f", v{active.version} made {before:+.2f}%"
        return ValidationResult(strategy=strategy.name, version=strategy.version, passed=True, reason=summary,
                                metrics=metrics)
