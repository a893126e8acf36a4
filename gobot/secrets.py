"""Keep secrets out of everything gobot writes: logs, alerts, state, the audit log.

One rule, everywhere: a secret is the value of one of ``SECRET_ENV_VARS``; it is masked as a
whole value — ``***`` replaces it where it stands on its own (the character before and after it,
if any, is not a letter or a digit), never a piece of a longer word or number. Data is never
rewritten by substring: a JSON document (the state, an alert) is masked value by value, its keys,
numbers and structure untouched.

That is only safe for values that cannot be mistaken for data, so a secret must be at least
``MIN_SECRET_LENGTH`` characters long and not a number or a date: ``gobot start`` and ``gobot
config check`` refuse anything else (``secret_problems``), naming the variable and the fix.
Values that slip through (a process that did not check) are not masked — never turned into
``***`` inside a date.
"""

from __future__ import annotations

import json
import logging
import os
import re
from functools import lru_cache
from typing import Any, Mapping

from gobot.config import SECRET_ENV_VARS
from gobot.errors import ConfigProblem

MASK = "***"
MIN_SECRET_LENGTH = 12  # shorter values can equal ordinary text: "2026" is a year in every date
ENVIRONMENT = "(environment)"  # the "file" of a problem with an environment variable
_DATA_LETTERS = frozenset("TZeE")  # the letters of "2026-01-01T00:00:00Z" and "1e-05"
SECRET_FIX = "use a random value of at least 12 characters with letters in it, e.g. `openssl rand -hex 16`"


def looks_like_data(value: str) -> bool:
    """True for a value that a number, a date, a time or an id in the bot's data could equal: no
    letters but the T, Z and e of ISO times and exponents ("2026-01-01T00:00", chat and order ids)."""
    if not any(c.isalpha() and c not in _DATA_LETTERS for c in value):
        return True
    try:
        float(value)  # "1e123456789012", "Infinity"
    except ValueError:
        return False
    return True


def maskable(value: str) -> bool:
    """Whether ``value`` can be masked wherever it appears without touching ordinary data."""
    return len(value) >= MIN_SECRET_LENGTH and not looks_like_data(value)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The secret values set in the environment that can be masked safely, longest first."""
    env = os.environ if environ is None else environ
    values = {env.get(name, "") for name in SECRET_ENV_VARS}
    return sorted((v for v in values if maskable(v)), key=len, reverse=True)


def secret_problems(environ: Mapping[str, str] | None = None) -> list[ConfigProblem]:
    """A ``(environment):VARIABLE: message — fix`` problem for every secret too weak to be masked safely."""
    env = os.environ if environ is None else environ
    problems = []
    for name in SECRET_ENV_VARS:
        value = env.get(name, "")
        if not value:
            continue
        if len(value) < MIN_SECRET_LENGTH:
            problems.append(ConfigProblem(
                ENVIRONMENT, name,
                f"is {len(value)} characters long; a secret shorter than {MIN_SECRET_LENGTH} characters cannot be masked "
                "in logs and alerts without also masking ordinary data (a year in a date, a price)", SECRET_FIX))
        elif looks_like_data(value):
            problems.append(ConfigProblem(
                ENVIRONMENT, name,
                "is a number or a date; masking it in logs and alerts would also mask the same number in prices, ids "
                "and times", SECRET_FIX))
    return problems


@lru_cache(maxsize=8)
def _pattern(values: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(v) for v in values)  # longest first: a longer secret wins over its prefix
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


def _mask_text(text: str, values: list[str]) -> str:
    return _pattern(tuple(values)).sub(MASK, text)


def _mask_data(value: Any, values: list[str]) -> Any:
    """JSON-like ``value`` with secrets masked inside its strings; keys, numbers and structure untouched."""
    if isinstance(value, str):
        return _mask_text(value, values)
    if isinstance(value, dict):
        return {k: _mask_data(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_data(v, values) for v in value]
    return value


def redact(text: str) -> str:
    """``text`` with every secret from the environment masked as a whole value.

    A JSON object or array (a state file, an alert) is masked value by value and written back in
    the same layout, so its keys, numbers and syntax never change."""
    values = secret_values()
    if not values or not any(v in text for v in values):
        return text
    head = text.lstrip()[:1]
    if head in ("{", "["):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, (dict, list)):
            masked = _mask_data(document, values)
            if masked == document:
                return text
            indent = re.search(r"\n( +)\S", text)
            if indent:
                return json.dumps(masked, indent=len(indent.group(1)), ensure_ascii=False)
            return json.dumps(masked, separators=(",", ":"), ensure_ascii=False)
    return _mask_text(text, values)


def redact_data(value: Any) -> Any:
    """JSON-like ``value`` with every secret masked inside its strings (keys and numbers untouched)."""
    values = secret_values()
    return _mask_data(value, values) if values else value


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if redact(str(exc)) != str(exc):
                record.exc_info = None
                record.msg = f"{record.msg} [{type(exc).__name__}: {redact(str(exc))}]"
        return True
