"""``PluginConfig``: the base of a plugin's ``[plugins.<name>]`` model, written once.

Unknown keys are errors (``extra="forbid"``), so a misspelled key fails ``gobot config check``
instead of being ignored, and ``XConfig.of(ctx, NAME)`` reads the validated section — or the
defaults, when the bot has none for that name (a plugin used outside a bot, a test's context).
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class PluginConfig(BaseModel):
    """Subclass it for your plugin's settings and answer ``gobot_config_model`` with the subclass."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def of(cls, ctx: Any, name: str) -> Self:
        """The validated ``[plugins.<name>]`` section from ``ctx`` (a ``BotContext`` or the
        ``ConfigView`` of a plugin command), or this model's defaults when there is none."""
        config = ctx.plugin_config(name)
        return cls() if config is None else config
