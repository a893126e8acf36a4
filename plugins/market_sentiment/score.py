"""The market_sentiment score: each input's reading turned into its clipped, weighted part of one score in -1..1.

Pure functions, no I/O. An input's *raw* part is its reading divided by its saturation level and
clipped to -1..1 (the sign is the crowd's: + long/greedy, - short/fearful):

- ``funding_rate``: ``(funding_rate - funding_neutral) / funding_rate_saturation`` — longs paying
  more than the usual interest-rate funding means the crowd is long.
- ``funding_trend``: ``funding_rate_trend / funding_trend_saturation`` — funding rising.
- ``open_interest``: new positions lean the crowd the price's way: ``open_interest_change_pct /
  open_interest_saturation`` signed by the price's change over the same window when open interest
  rose; 0 when it fell (positions closing say little about who is crowded).
- ``long_short``: ``(long_account - 0.5) / long_short_saturation`` — the share of accounts net long.
- ``taker``: ``(buy - sell) / (buy + sell) / taker_saturation`` — aggressive buying.

Each raw part is multiplied by its weight divided by the sum of the weights of the inputs present,
so the parts (``Sentiment.inputs``) add up to the score and the score stays within -1..1 whichever
inputs are missing.
"""

from __future__ import annotations

import math
from typing import Any

INPUTS = ("funding_rate", "funding_trend", "open_interest", "long_short", "taker")

#: The named fields of a reading (``Sentiment.fields``), every one always present (None = its input is missing).
FIELDS = ("funding_rate", "funding_rate_trend", "funding_rate_avg", "open_interest", "open_interest_value",
          "open_interest_change_pct", "price_change_pct", "long_short_ratio", "long_account", "short_account",
          "taker_buy_sell_ratio", "taker_buy_volume", "taker_sell_volume")


def clip(value: float) -> float:
    return max(-1.0, min(1.0, value))


def raw_part(name: str, values: dict[str, float], config: Any) -> float:
    """The input's part before weighting, in -1..1 (see the module docstring)."""
    if name == "funding_rate":
        return clip((values["funding_rate"] - config.funding_neutral) / config.funding_rate_saturation)
    if name == "funding_trend":
        return clip(values["funding_rate_trend"] / config.funding_trend_saturation)
    if name == "open_interest":
        change, price = values["open_interest_change_pct"], values["price_change_pct"]
        if change <= 0 or price == 0:
            return 0.0
        return math.copysign(clip(change / config.open_interest_saturation), price)
    if name == "long_short":
        return clip((values["long_account"] - 0.5) / config.long_short_saturation)
    if name == "taker":
        buy, sell = values["taker_buy_volume"], values["taker_sell_volume"]
        return clip((buy - sell) / (buy + sell) / config.taker_saturation) if buy + sell > 0 else 0.0
    raise KeyError(name)


def weight(name: str, config: Any) -> float:
    return float(getattr(config, f"weight_{name}"))


def condense(present: dict[str, dict[str, float]], config: Any) -> tuple[dict[str, float | None], dict[str, float],
                                                                        float | None]:
    """(fields, inputs, score) from the readings of the inputs present ({input: its values}).

    The score is None when no weighted input is present; otherwise the sum of ``inputs``.
    """
    fields: dict[str, float | None] = dict.fromkeys(FIELDS)
    for values in present.values():
        fields.update(values)
    weighted = [name for name in INPUTS if name in present and weight(name, config) > 0]
    total = sum(weight(name, config) for name in weighted)
    if not weighted or total <= 0:
        return fields, {}, None
    inputs = {name: raw_part(name, present[name], config) * weight(name, config) / total for name in weighted}
    score = clip(math.fsum(inputs.values()))  # clip only ever trims a rounding error: the parts' weights sum to 1
    return fields, inputs, score
