"""``risk_limits``: hard caps on every order intent that opens exposure, each with its own reason.

- ``min_confidence_threshold``: ideas less sure than this are vetoed (the one place it lives);
- ``max_position_usd`` (from ``[trading]``): no single position above this notional;
- ``max_total_exposure_usd``: open notional plus this order must stay within it;
- one position per symbol: a second entry in the same direction is vetoed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gobot_hookspecs import RiskVerdict, hookimpl

NAME = "risk_limits"


class RiskLimitsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_confidence_threshold: float = Field(0.75, ge=0, le=1, description="lowest confidence that may trade, 0-1")
    max_total_exposure_usd: float = Field(30.0, gt=0, description="largest total open notional, USD")


class RiskLimits:
    @hookimpl
    def gobot_config_model(self):
        return RiskLimitsConfig

    @hookimpl
    def gobot_risk_check(self, ctx, intent):
        config = ctx.plugin_config(NAME) or RiskLimitsConfig()
        reasons = []
        confidence = intent.signal.confidence if intent.signal else 0.0
        if confidence < config.min_confidence_threshold:
            reasons.append(f"confidence {confidence:.2f} below min_confidence_threshold {config.min_confidence_threshold:.2f}")
        cap = ctx.config.trading.max_position_usd
        if intent.notional_usd > cap + 1e-9:
            reasons.append(f"notional {intent.notional_usd:.2f} USD above max_position_usd {cap:g}")
        exposure = ctx.exposure()
        if exposure + intent.notional_usd > config.max_total_exposure_usd + 1e-9:
            reasons.append(
                f"exposure {exposure:.2f} + {intent.notional_usd:.2f} USD above max_total_exposure_usd "
                f"{config.max_total_exposure_usd:g}"
            )
        position = ctx.positions().get(intent.symbol)
        if position is not None:
            reasons.append(f"already {position.direction.value.lower()} {intent.symbol}")
        if reasons:
            return RiskVerdict(approved=False, reason="; ".join(reasons))
        return RiskVerdict(approved=True, reason="within limits")
