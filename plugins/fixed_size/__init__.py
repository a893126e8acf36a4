"""``fixed_size``: the default position sizer — every position is ``[trading].max_position_usd``,
never more than the equity. Answers last, so any other sizer plugin takes precedence."""

from __future__ import annotations

from gobot_hookspecs import hookimpl


class FixedSize:
    @hookimpl(trylast=True)
    def gobot_size_position(self, ctx, signal):
        return max(0.0, min(ctx.config.trading.max_position_usd, ctx.equity()))
