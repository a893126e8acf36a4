"""``validator``: judges a strategy version by a backtest over the candles of this cycle's scan.

The core asks when there is something to judge: a proposal, or the active version once new trades
closed. The backtest (``ctx.backtest``) sizes and risk-checks every entry with the bot's own
plugins, so its percentages are what the bot would have made: the plugins see ``history_hours`` of
candles before the tested ones as history (a risk check's volatility and correlation need some; without
it they veto every entry of the window's first hours), and no trade is made in them. A version passes when, summed over
the symbols, its backtest loses less than ``max_loss_pct`` and, when it is a proposal, it does not
trail the active version by more than ``tolerance_pct``. The core rejects a failed proposal and
applies ``[strategy_versions] on_active_failure`` to a failed active version.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from pydantic import Field

from gobot_hookspecs import PluginConfig, ValidationResult, hookimpl
from gobot_hookspecs.candles import TIMEFRAMES

NAME = "validator"


class ValidatorConfig(PluginConfig):
    max_loss_pct: float = Field(10.0, gt=0, description="a version whose backtest loses more than this fails, %")
    tolerance_pct: float = Field(1.0, ge=0, description="a proposal may trail the active version by this much, %")
    history_hours: float = Field(24.0, ge=0, description="candles before the tested ones the plugins see as history "
                                                         "(volatility, correlation), never traded, hours; 0 = none")


class Validator:
    def __init__(self) -> None:
        self._tested: dict[tuple, tuple[float, int]] = {}  # this cycle's backtests: the active one judged, then
        # compared with a proposal, runs once

    async def _backtest_return(self, ctx, name: str, params: dict, history_hours: float) -> tuple[float, int]:
        """Summed over the symbols of this cycle's scan: the return, % of the start equity, and the trades."""
        key = (ctx.run_id, ctx.iteration, name, tuple(sorted(params.items())))
        if key not in self._tested:
            total, trades = 0.0, 0
            for snap in ctx.snapshots:
                candles, start = await _with_history(ctx, snap, history_hours)
                result = ctx.backtest(name, params, candles, snap.symbol, start=start)
                total += result.return_pct
                trades += len(result.trades)
            self._tested = {k: v for k, v in self._tested.items() if k[:2] == key[:2]}
            self._tested[key] = (total, trades)
        return self._tested[key]

    @hookimpl
    def gobot_config_model(self):
        return ValidatorConfig

    @hookimpl
    async def gobot_validate_strategy(self, ctx, strategy):
        config = ValidatorConfig.of(ctx, NAME)
        if not ctx.snapshots:
            return ValidationResult(strategy=strategy.name, version=strategy.version, passed=True,
                                    reason="no candles to test on")
        ret, trades = await self._backtest_return(ctx, strategy.name, strategy.params, config.history_hours)
        candles = len(ctx.snapshots[0].candles)
        metrics = {"return_pct": round(ret, 4), "trades": trades}
        summary = f"backtest over the last {candles} candles: {ret:+.2f}% in {trades} trades"
        if ret < -config.max_loss_pct:
            return ValidationResult(strategy=strategy.name, version=strategy.version, passed=False, metrics=metrics,
                                    reason=f"{summary}, loses more than {config.max_loss_pct:g}%")
        active = ctx.strategy(strategy.name)
        if active.version != strategy.version:  # a proposal: compare it with the version it would replace
            before, _ = await self._backtest_return(ctx, strategy.name, active.params, config.history_hours)
            metrics["previous_return_pct"] = round(before, 4)
            if ret < before - config.tolerance_pct:
                return ValidationResult(strategy=strategy.name, version=strategy.version, passed=False, metrics=metrics,
                                        reason=f"{summary}, trails v{active.version} ({before:+.2f}%)")
            summary += f", v{active.version} made {before:+.2f}%"
        return ValidationResult(strategy=strategy.name, version=strategy.version, passed=True, reason=summary,
                                metrics=metrics)


async def _with_history(ctx, snap, hours: float):
    """The scan's candles of ``snap`` with up to ``hours`` more before them, and the first tested candle's time
    (None: no history to add)."""
    tested = snap.candles
    if hours <= 0 or not tested.timestamp:
        return tested, None
    extra = math.ceil(hours * 3600 / TIMEFRAMES[tested.timeframe])
    try:
        longer = await ctx.candles(snap.symbol, tested.timeframe, len(tested) + extra)
    except LookupError:
        return tested, None
    if not longer.timestamp or longer.timestamp[-1] != tested.timestamp[-1] or len(longer) <= len(tested):
        return tested, None  # not the same candles (another source): test the scan's own
    return longer, datetime.fromtimestamp(tested.timestamp[0] / 1000, tz=timezone.utc)
