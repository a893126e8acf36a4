"""``sentiment_extremes``: no new longs while the crowd is too greedy, no new shorts while it is too fearful.

An optional risk check on one sentiment source (``snapshot.sentiment[source]``, contract 1.4): a
new long is vetoed when the reading is above ``no_longs_above``, a new short when it is below
``no_shorts_below``. The reading is the source's score (-1 fear ... +1 greed), or one of its
named fields (``field = "value"``: the Fear & Greed index 0-100). It reads this cycle's market
scan (``ctx.snapshots``), the snapshot of the intent's symbol.

Enabling it means the bot needs that sentiment: a missing reading (the source's plugin is off or
failed), a stale one, or one without the score or field is a veto that says why (fail closed).
Closes are never checked (the core risk-checks opening intents only). ``gobot risk status``
shows the levels, the last reading seen and the vetoes so far by reason.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from gobot_hookspecs import Action, PluginConfig, RiskCounter, RiskStatus, RiskVerdict, hookimpl

NAME = "sentiment_extremes"
FAIL_CLOSED = ("missing", "stale", "no_level")  # the kinds of veto that say the sentiment is unknown


class SentimentExtremesConfig(PluginConfig):
    source: str = Field("fear_greed", min_length=1,
                        description="the sentiment source read (the key of snapshot.sentiment): 'fear_greed', "
                        "'market_sentiment', or a recorded source's file name")
    field: str = Field("", description="a named field of the reading to compare (e.g. 'value', the Fear & Greed "
                       "index 0-100); empty = the score, -1 (fear) ... +1 (greed)")
    no_longs_above: float = Field(0.5, description="no new longs while the reading is above this (score: 1 = longs "
                                  "never blocked)")
    no_shorts_below: float = Field(-0.5, description="no new shorts while the reading is below this (score: -1 = "
                                   "shorts never blocked)")

    @model_validator(mode="after")
    def _levels(self) -> SentimentExtremesConfig:
        high, low = self.no_longs_above, self.no_shorts_below
        if not low < high:
            raise ValueError(f"no_shorts_below ({low:g}) must be below no_longs_above ({high:g}): "
                             "e.g. no_shorts_below = -0.5, no_longs_above = 0.5")
        if not self.field:
            for key, level in (("no_longs_above", high), ("no_shorts_below", low)):
                if not -1.0 <= level <= 1.0:
                    raise ValueError(f"{key} = {level:g} is outside the score's range -1..1; set field = \"value\" "
                                     "(or another field) to compare levels in that field's units")
        return self


def measure(config: SentimentExtremesConfig) -> str:
    """What is compared, in words: 'fear_greed score' or 'fear_greed value'."""
    return f"{config.source} {config.field or 'score'}"


def level_of(config: SentimentExtremesConfig, reading) -> float | None:
    """The number the levels are compared with: the score, or the configured field when it is a finite number."""
    value = reading.fields.get(config.field) if config.field else reading.score
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def judge(config: SentimentExtremesConfig, snapshots, symbol: str, direction: Action,
          simulated: bool = False) -> tuple[str, str]:
    """``(kind, text)``: kind ``within`` = allowed (text: the reading), else text is the veto's reason.

    Kinds: missing, stale, no_level (fail closed), greed, fear (past a level), within."""
    snapshot = next((snap for snap in snapshots if snap.symbol == symbol), None)
    reading = snapshot.sentiment.get(config.source) if snapshot is not None else None
    tail = f"(fail closed: {NAME} needs it; disable {NAME} to trade without it)"
    if reading is None:
        where = f" (replay and backtest read <data_dir>/sentiment/{config.source}.csv)" if simulated else ""
        return "missing", (f"no {config.source} reading for {symbol}: is the {config.source} plugin enabled?"
                           f"{where} {tail}")
    if reading.stale:
        return "stale", f"{config.source} reading is stale: {reading.note or 'not refreshed in time'} {tail}"
    level = level_of(config, reading)
    if level is None:
        why = f"missing {', '.join(reading.missing)}" if reading.missing else "not a number"
        return "no_level", f"{config.source} reading for {symbol} has no {config.field or 'score'} ({why}) {tail}"
    label = reading.fields.get("classification")
    said = f"{measure(config)} {level:g}" + (f" ({label})" if isinstance(label, str) and label else "")
    high, low = config.no_longs_above, config.no_shorts_below
    if direction is Action.LONG and level > high:
        return "greed", f"{said} above no_longs_above {high:g}: no new longs on {symbol}"
    if direction is Action.SHORT and level < low:
        return "fear", f"{said} below no_shorts_below {low:g}: no new shorts on {symbol}"
    return "within", said


class SentimentExtremes:
    """The check; its counters (vetoes by reason, the last reading) live in ``ctx.plugin_state``."""

    @hookimpl
    def gobot_config_model(self):
        return SentimentExtremesConfig

    @hookimpl
    def gobot_risk_check(self, ctx, intent):
        if intent.purpose != "open":  # the core never asks for closes; a rule must not trap a position anyway
            return None
        config = SentimentExtremesConfig.of(ctx, NAME)
        kind, reason = judge(config, ctx.snapshots, intent.symbol, intent.direction, simulated=ctx.simulated)
        state = ctx.plugin_state(NAME)
        state["last"] = {"symbol": intent.symbol, "time": ctx.now().isoformat(), "kind": kind, "reading": reason}
        if kind == "within":
            return RiskVerdict(approved=True, reason=f"{reason} within {_levels(config)}")
        vetoes = state.setdefault("vetoes", {})
        vetoes[kind] = vetoes.get(kind, 0) + 1
        return RiskVerdict(approved=False, reason=reason)

    @hookimpl
    def gobot_risk_status(self, ctx):
        config = SentimentExtremesConfig.of(ctx, NAME)
        state = ctx.plugin_state(NAME)
        counters = [RiskCounter(name=f"vetoes: {KINDS[kind]}", value=count, unit="orders")
                    for kind, count in sorted(state.get("vetoes", {}).items())]
        last = state.get("last")
        counters.append(RiskCounter(
            name=f"last {measure(config)} seen", value=last["reading"] if last else None,
            limit=_levels(config), blocking=bool(last) and last["kind"] in FAIL_CLOSED,
            note=f"{last['symbol']} at {last['time']}" if last else "no order checked yet"))
        for snap in ctx.snapshots:  # a running bot's last scan: the readings now
            reading = snap.sentiment.get(config.source)
            level = level_of(config, reading) if reading is not None else None
            counters.append(RiskCounter(name=f"{measure(config)} {snap.symbol}", value=level, limit=_levels(config),
                                        blocking=reading is None or reading.stale or level is None,
                                        note="stale" if reading is not None and reading.stale else ""))
        if last and last["kind"] in FAIL_CLOSED:  # what the last order met: every new position meets it until fixed
            return RiskStatus(allows_trading=False, counters=counters,
                              reason=f"the last order checked was vetoed: {last['reading']}")
        return RiskStatus(allows_trading=True, counters=counters,
                          reason=f"new positions need a fresh {measure(config)}: {_levels(config)}")


KINDS = {"missing": "no reading", "stale": "stale reading", "no_level": "reading without the level",
         "greed": "longs above the level", "fear": "shorts below the level"}


def _levels(config: SentimentExtremesConfig) -> str:
    return f"no longs above {config.no_longs_above:g}, no shorts below {config.no_shorts_below:g}"
