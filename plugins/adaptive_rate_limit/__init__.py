"""``adaptive_rate_limit``: the built-in rate-limit policy for exchange plugins.

Paces every exchange request by its weight against the exchange's own budgets (``exchangeInfo``
``rateLimits``, overridable here), in priority order, resynchronised from the exchange's
used-weight headers; a 429 lowers the budget to what the exchange counted and pauses for its
Retry-After, a 418 halts until the ban ends. Budgets can be shared by several bots through SQLite
or Redis (with a local budget while the shared store is unreachable). Off by default: exchange
plugins (``binance``) refuse to run without a real policy, so enable it with them. The work is in
``policy.py`` and ``budgets.py``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from gobot_hookspecs import PluginConfig, hookimpl

NAME = "adaptive_rate_limit"


class AdaptiveRateLimitConfig(PluginConfig):
    requests_per_minute: int | None = Field(
        None, gt=0, description=("request weight per minute; unset = the exchange's own limit (exchangeInfo), "
                                 "1200 until it is known")
    )
    requests_per_hour: int | None = Field(100000, gt=0,
                                          description="request weight per hour, a cap of our own; unset = none")
    orders_per_10s: int | None = Field(
        None, gt=0, description="new orders per 10 seconds; unset = the exchange's limit, 50 until known")
    orders_per_day: int | None = Field(
        None, gt=0, description="new orders per day; unset = the exchange's limit, 160000 until known")
    backoff_multiplier: float = Field(
        2.0, ge=1,
        description=("a 429 lowers a budget to what the exchange counted, by this factor at most "
                     "(exactly, with no used-weight header)"),
    )
    max_backoff_factor: float = Field(
        64.0, ge=1, description="a 429 never lowers a budget below the exchange's limit divided by this")
    decay_after: int = Field(
        20, ge=1, description=("windows (of a minute at most) a lowered budget stays down without a 429, "
                               "then takes to grow back")
    )
    safety_margin_percent: float = Field(1.0, ge=0, lt=50,
                                         description="share of every budget never used (clock and network jitter), %")
    critical_reserve_percent: float = Field(2.0, ge=0, lt=50,
                                            description="share of every budget only CRITICAL requests may use, %")
    smoothing_slices: int = Field(
        10, ge=1, le=100,
        description="a window is also cut into this many slices, none taking more than its share; 1 = off"
    )
    max_wait_seconds: float = Field(
        30.0, gt=0, description=("a non-CRITICAL request that would wait longer than this for a 429's Retry-After "
                                 "fails at once, seconds")
    )
    share: str = Field(
        "none", description=("where budgets live: none (this bot), sqlite:PATH (bots on this machine), "
                             "redis://HOST:PORT/DB (several hosts)")
    )
    bot_share: float = Field(1.0, gt=0, le=1,
                             description="fraction of each shared budget this bot may use (share set), 0-1")

    @field_validator("share")
    @classmethod
    def _share_is_known(cls, value: str) -> str:
        if value != "none" and not value.startswith("sqlite:") and not re.match(r"^(redis|rediss|unix)://", value):
            raise ValueError(f"'{value}' is not none, sqlite:PATH or redis://HOST:PORT/DB")
        if value.startswith("sqlite:") and not value.removeprefix("sqlite:"):
            raise ValueError("sqlite: needs a file path, e.g. sqlite:gobot_state/budgets.sqlite")
        return value


class AdaptiveRateLimit:
    """The plugin: hands the core one ``AdaptiveRateLimiter`` per bot."""

    def __init__(self) -> None:
        self.policy: Any = None

    @hookimpl
    def gobot_config_model(self):
        return AdaptiveRateLimitConfig

    @hookimpl
    def gobot_rate_limit_policy(self, ctx):
        from .budgets import open_store
        from .policy import AdaptiveRateLimiter

        config = AdaptiveRateLimitConfig.of(ctx, NAME)
        base = ctx.config.resolve(".") if hasattr(ctx.config, "resolve") else None
        self.policy = AdaptiveRateLimiter(
            config, store=open_store(config.share, base), alert=ctx.alert, report_error=ctx.report_execution_error
        )
        return self.policy

    @hookimpl
    def gobot_status(self):
        return self.policy.status() if self.policy is not None else None

    @hookimpl
    def gobot_shutdown(self):
        if self.policy is not None:
            self.policy.close()
            self.policy = None
