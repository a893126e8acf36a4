"""Strategy profiles: named presets of risk limits, sizing, timeframe and strategy parameters
(``conservative``, ``aggressive``, ``scalping``), applied over a config file's values.

A profile is config data, shaped like ``config.toml`` (``{"trading": {...}, "plugins": {"risk_limits":
{...}}}``), with the reason for every value it sets: docs/risk.md shows both, and
``gobot init --profile`` writes them as comments. ``apply_profile`` merges a profile over a parsed
config (the profile's values win: choosing a profile on the command line is the latest word), so the
result is validated exactly like a file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Profile:
    """One preset: ``values`` shaped like config.toml, ``reasons`` by dotted key (``trading.stop_loss_percent``)."""

    name: str
    summary: str
    values: dict[str, Any]
    reasons: dict[str, str] = field(default_factory=dict)

    def flat(self) -> dict[str, Any]:
        """Every value the profile sets, by dotted key (``plugins.risk_limits.max_trades_per_day``)."""
        out: dict[str, Any] = {}

        def walk(prefix: str, data: dict[str, Any]) -> None:
            for key, value in data.items():
                if isinstance(value, dict):
                    walk(f"{prefix}{key}.", value)
                else:
                    out[f"{prefix}{key}"] = value

        walk("", self.values)
        return out


PROFILES: dict[str, Profile] = {
    "conservative": Profile(
        name="conservative", summary="small positions, tight stops, few trades",
        values={"trading": {"stop_loss_percent": 1.5, "take_profit_percent": 3.0}},
        reasons={"trading.stop_loss_percent": "placeholder: being written (issue 22)",
                 "trading.take_profit_percent": "placeholder: being written (issue 22)"},
    ),
    "aggressive": Profile(
        name="aggressive", summary="larger positions, wider stops, more trades",
        values={"trading": {"stop_loss_percent": 3.0, "take_profit_percent": 6.0}},
        reasons={"trading.stop_loss_percent": "placeholder: being written (issue 22)",
                 "trading.take_profit_percent": "placeholder: being written (issue 22)"},
    ),
    "scalping": Profile(
        name="scalping", summary="short timeframe, small targets, many trades",
        values={"trading": {"stop_loss_percent": 0.5, "take_profit_percent": 0.8}},
        reasons={"trading.stop_loss_percent": "placeholder: being written (issue 22)",
                 "trading.take_profit_percent": "placeholder: being written (issue 22)"},
    ),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ``KeyError`` with the choices when there is none."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"no profile '{name}': choose {', '.join(PROFILES)}") from None


def apply_profile(data: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """A copy of the parsed config ``data`` with the profile's values merged over it, section by section.

    Lists (``[plugins] enable``) are joined, not replaced: a profile adds the plugins it needs."""
    merged = copy.deepcopy(data)

    def merge(into: dict[str, Any], values: dict[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            elif isinstance(value, list) and isinstance(into.get(key), list):
                into[key] = [*into[key], *(v for v in value if v not in into[key])]
            else:
                into[key] = copy.deepcopy(value)

    merge(merged, profile.values)
    return merged
