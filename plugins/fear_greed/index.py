"""The Fear & Greed index API's answer, read: ``IndexValue``s from the documented JSON, or a
``SourceError`` that says what is wrong with it; and each value as a ``Sentiment`` reading.

The format is alternative.me's (https://alternative.me/crypto/fear-and-greed-index/, "API"):
``GET /fng/?limit=N&format=json`` answers ::

    {"name": "Fear and Greed Index",
     "data": [{"value": "40", "value_classification": "Fear", "timestamp": "1551157200",
               "time_until_update": "68499"}, ...],
     "metadata": {"error": null}}

newest first (``limit=0``: the whole history); ``value`` 0..100 and ``timestamp`` (unix seconds,
unless ``date_format`` asks for dates) as strings; ``time_until_update`` (seconds until the next
value) only on the newest; ``metadata.error`` a message when the request was refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from gobot_hookspecs import Sentiment

SOURCE = "fear_greed"


class SourceError(Exception):
    """The index could not be read; ``retry_after``: seconds the source asked us to wait (429)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class IndexValue:
    """One published value of the index."""

    value: float  # 0 (extreme fear) ... 100 (extreme greed)
    classification: str  # the source's words: "Extreme Fear", "Fear", "Neutral", "Greed", "Extreme Greed"
    time: datetime  # when it was published (UTC)
    until_update: float | None  # seconds from the answer until the next value is due; None = not said

    @property
    def score(self) -> float:
        """The index on the contract's scale: 0 -> -1, 50 -> 0, 100 -> +1."""
        return (self.value - 50.0) / 50.0


def parse(body: bytes | str) -> list[IndexValue]:
    """The values in an answer, newest first; ``SourceError`` for anything but the documented shape
    (malformed JSON, ``metadata.error`` set, no data, a missing field, a value outside 0..100)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"malformed JSON in the answer ({exc})") from None
    if not isinstance(document, dict):
        raise SourceError(f"the answer is a JSON {type(document).__name__}, not an object with 'data'")
    metadata = document.get("metadata")
    if isinstance(metadata, dict) and metadata.get("error"):
        raise SourceError(f"the source reports an error: {str(metadata['error'])[:200]}")
    data = document.get("data")
    if not isinstance(data, list) or not data:
        raise SourceError("the answer has no 'data' list of values" if not isinstance(data, list)
                          else "the answer's 'data' list is empty")
    values = [_value(item, at) for at, item in enumerate(data)]
    return sorted(values, key=lambda v: v.time, reverse=True)


def _value(item: object, at: int) -> IndexValue:
    where = f"data[{at}]"
    if not isinstance(item, dict):
        raise SourceError(f"{where} is not an object")
    for name in ("value", "value_classification", "timestamp"):
        if item.get(name) in (None, ""):
            raise SourceError(f"{where} has no '{name}'")
    value = _number(item["value"], f"{where}.value")
    if not 0 <= value <= 100:
        raise SourceError(f"{where}.value {item['value']!r} is outside 0..100")
    stamp = _number(item["timestamp"], f"{where}.timestamp", hint=" (unix seconds: leave date_format out of the url)")
    until = item.get("time_until_update")
    until_update = None if until in (None, "") else _number(until, f"{where}.time_until_update")
    return IndexValue(value=value, classification=str(item["value_classification"])[:40],
                      time=datetime.fromtimestamp(stamp, tz=timezone.utc), until_update=until_update)


def _number(text: object, where: str, hint: str = "") -> float:
    try:
        number = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SourceError(f"{where} {text!r} is not a number{hint}") from None
    if not math.isfinite(number):
        raise SourceError(f"{where} {text!r} is not a finite number")
    return number


def reading(value: IndexValue, valid_until: datetime | None) -> Sentiment:
    """``value`` as the contract's market-wide reading."""
    score = min(1.0, max(-1.0, value.score))
    return Sentiment(source=SOURCE, symbol=None, time=value.time, valid_until=valid_until, score=score,
                     fields={"value": value.value, "classification": value.classification},
                     inputs={"value": score})


def due(value: IndexValue, answered_at: datetime, period: timedelta) -> datetime:
    """When the value after ``value`` is due: the answer's ``time_until_update`` from when it came,
    else one update period after the value's own time."""
    if value.until_update is not None:
        return answered_at + timedelta(seconds=value.until_update)
    return value.time + period


def history(values: list[IndexValue], answered_at: datetime, period: timedelta) -> list[Sentiment]:
    """``values`` (any order) as readings, oldest first, each valid until the next one's time (the
    newest: until its ``due``)."""
    ordered = sorted({v.time: v for v in values}.values(), key=lambda v: v.time)  # one value per time
    return [reading(v, ordered[i + 1].time if i + 1 < len(ordered) else due(v, answered_at, period))
            for i, v in enumerate(ordered)]
