"""The model's answer: its JSON schema, the pydantic model that validates it, and the reading of it.

Whatever comes back — valid, malformed, cut off, refused, out of range — ``read_answer`` turns it
into a ``Reading``. An answer that cannot be trusted is HOLD with the reason in ``problem``; it
never raises and never trades. The multi-timeframe gate is applied here too.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ACTIONS = ["LONG", "SHORT", "HOLD"]

#: JSON schema for structured outputs (OpenAI ``strict`` mode: every key required, nulls allowed).
ANSWER_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ACTIONS, "description": "the overall idea"},
        "confidence": {"type": "number",
                       "description": "0 to 1: probability the take-profit is hit before the stop-loss"},
        "entry": {"type": ["number", "null"], "description": "entry price; null for HOLD"},
        "stop_loss": {"type": ["number", "null"],
                      "description": "stop price; below the price for LONG, above for SHORT"},
        "take_profit": {"type": ["number", "null"],
                        "description": "target price; above the price for LONG, below for SHORT"},
        "timeframes": {
            "type": "array",
            "description": "your reading of every chart shown, by its timeframe label",
            "items": {
                "type": "object",
                "properties": {
                    "timeframe": {"type": "string"},
                    "action": {"type": "string", "enum": ACTIONS},
                },
                "required": ["timeframe", "action"],
                "additionalProperties": False,
            },
        },
        "rationale": {"type": "string", "description": "one or two sentences: what in the charts supports the idea"},
    },
    "required": ["action", "confidence", "entry", "stop_loss", "take_profit", "timeframes", "rationale"],
    "additionalProperties": False,
}


class TimeframeView(BaseModel):
    model_config = ConfigDict(extra="ignore")

    timeframe: str
    action: Literal["LONG", "SHORT", "HOLD"]


class VisionAnswer(BaseModel):
    """What the model must answer. Missing keys, wrong types and a confidence outside 0-1 fail."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["LONG", "SHORT", "HOLD"]
    confidence: float = Field(ge=0.0, le=1.0)
    entry: float | None
    stop_loss: float | None
    take_profit: float | None
    timeframes: list[TimeframeView]
    rationale: str


@dataclass
class Reading:
    """The answer as the plugin acts on it. ``problem`` set = HOLD for that reason."""

    action: str = "HOLD"
    confidence: float = 0.0
    entry: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    views: dict[str, str] = field(default_factory=dict)
    agreeing: list[str] = field(default_factory=list)
    rationale: str = ""
    problem: str | None = None

    @classmethod
    def hold(cls, problem: str) -> Reading:
        return cls(problem=problem)


def _json_text(content: str) -> str:
    """The JSON inside an answer; local models like to wrap it in a ```json fence."""
    text = content.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    return fenced.group(1) if fenced else text


def _validation_problem(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "(answer)"
        parts.append(f"{where}: {'missing' if error['type'] == 'missing' else error['msg']}")
    return "; ".join(parts)


def read_answer(
    content: str | None,
    refusal: str | None,
    finish_reason: str | None,
    *,
    price: float,
    shown: list[str],
    min_agreeing: int,
) -> Reading:
    """Validate the model's answer for a market at ``price`` shown charts of ``shown`` timeframes."""
    if refusal:
        return Reading.hold(f"the model refused: {refusal.strip()[:200]}")
    if finish_reason == "content_filter":
        return Reading.hold("the answer was withheld by the endpoint's content filter")
    if finish_reason == "length":
        return Reading.hold("the answer was cut off (finish_reason=length): raise max_output_tokens")
    if not content or not content.strip():
        return Reading.hold("empty answer")
    try:
        data = json.loads(_json_text(content))
    except json.JSONDecodeError as exc:
        return Reading.hold(f"invalid JSON ({exc.msg} at char {exc.pos}): {content.strip()[:80]!r}")
    if not isinstance(data, dict):
        return Reading.hold(f"expected a JSON object, got {type(data).__name__}")
    try:
        answer = VisionAnswer.model_validate(data)
    except ValidationError as exc:
        return Reading.hold(f"answer does not match the schema: {_validation_problem(exc)}")

    views: dict[str, str] = {}
    for view in answer.timeframes:
        if view.timeframe in shown:
            views.setdefault(view.timeframe, view.action)
    reading = Reading(
        action=answer.action,
        confidence=answer.confidence,
        entry=answer.entry,
        stop_loss=answer.stop_loss,
        take_profit=answer.take_profit,
        views=views,
        agreeing=[tf for tf in shown if views.get(tf) == answer.action],
        rationale=answer.rationale.strip(),
    )
    if answer.action == "HOLD":
        reading.entry = reading.stop_loss = reading.take_profit = None
        return reading
    problem = _levels_problem(answer, price)
    if problem:
        reading.problem = f"out of range: {problem}"
        return reading
    if len(reading.agreeing) < min_agreeing:
        reading.problem = (
            f"{len(reading.agreeing)} of {len(shown)} timeframes read {answer.action} "
            f"(min_agreeing_timeframes {min_agreeing})"
        )
    return reading


def _levels_problem(answer: VisionAnswer, price: float) -> str | None:
    """Stops and targets must be finite, positive and on the right side of the current price."""
    for name in ("entry", "stop_loss", "take_profit"):
        value = getattr(answer, name)
        if value is not None and not (value > 0 and math.isfinite(value)):  # json.loads reads Infinity
            return f"{name} {value} is not a positive price"
    long = answer.action == "LONG"
    if answer.stop_loss is not None and (answer.stop_loss >= price if long else answer.stop_loss <= price):
        return (f"{answer.action} stop_loss {answer.stop_loss:g} is not {'below' if long else 'above'} "
                f"the price {price:g}")
    if answer.take_profit is not None and (answer.take_profit <= price if long else answer.take_profit >= price):
        return (f"{answer.action} take_profit {answer.take_profit:g} is not {'above' if long else 'below'} "
                f"the price {price:g}")
    return None
