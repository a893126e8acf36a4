"""Keep secrets out of everything gobot writes: logs, alerts, state, the audit log.

One rule, everywhere, written once in the contract (``gobot_hookspecs.redact``, which the plugins
use too): a secret is the value of one of ``SECRET_ENV_VARS``; it is masked as a whole value —
``***`` replaces it where it stands on its own (the character before and after it, if any, is not a
letter or a digit), never a piece of a longer word or number — and so are credentials in known
places (a URL's password, a request signature, an API key header). Data is never rewritten by
substring: a JSON document (the state, an alert) is masked value by value, its keys, numbers and
structure untouched.

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
from typing import Any, Mapping

from gobot.errors import ConfigProblem
from gobot_hookspecs.redact import MASK, MIN_SECRET_LENGTH, Redactor, looks_like_data, maskable  # noqa: F401

#: Environment variables that hold secrets. They are read from the environment only and are
#: masked in logs, alerts, state and the audit log (here). A chat id is not a secret.
SECRET_ENV_VARS = (
    "BINANCE_API_KEY",
    "BINANCE_API_SECRET",
    "OPENAI_API_KEY",
    "TELEGRAM_TOKEN",
    "GOBOT_DASHBOARD_TOKEN",
    "GOBOT_WEBHOOK_URL",
)

ENVIRONMENT = "(environment)"  # the "file" of a problem with an environment variable
SECRET_FIX = "use a random value of at least 12 characters with letters in it, e.g. `openssl rand -hex 16`"


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The secret values set in the environment that can be masked safely, longest first."""
    if environ is None:
        return list(secrets_redactor().values)
    values = {environ.get(name, "") for name in SECRET_ENV_VARS}
    return sorted((v for v in values if maskable(v)), key=len, reverse=True)


class _SecretCache:
    """The ``Redactor`` of the process's secrets, rebuilt only when one of their raw values changed.

    Redaction runs for every audit line, state save and log record (tens of thousands of calls per
    hundred cycles): it compares the raw values of the ``SECRET_ENV_VARS`` (one dict lookup each, no
    decoding) with those it was built from instead of reading and checking the environment each time.
    A change through ``os.environ`` (or ``monkeypatch.setenv``) is seen by the next call."""

    def __init__(self) -> None:
        self.keys: tuple | None = None
        self.rebuilds = 0
        # (the raw values, their Redactor, whether JSON escapes one of them): one tuple, replaced whole,
        # so a thread never sees a Redactor that belongs to other values
        self.current: tuple[tuple | None, Redactor, bool] = (None, Redactor(), False)

    @staticmethod
    def _build(raw: tuple | None, environ) -> tuple[tuple | None, Redactor, bool]:
        redactor = Redactor({environ.get(name, "") for name in SECRET_ENV_VARS})
        # a secret JSON writes escaped ("\u00e9", "\\") cannot be found in a JSON line by its value
        return raw, redactor, any(json.dumps(v)[1:-1] != v for v in redactor.values)

    def get(self) -> tuple[tuple | None, Redactor, bool]:
        environ = os.environ
        data = getattr(environ, "_data", None)
        if data is None or not hasattr(environ, "encodekey"):  # not CPython's os._Environ: read it plainly
            return self._build(None, environ)
        if self.keys is None:
            self.keys = tuple(environ.encodekey(name) for name in SECRET_ENV_VARS)
        raw = tuple(data.get(key) for key in self.keys)
        current = self.current
        if raw != current[0]:
            current = self.current = self._build(raw, environ)
            self.rebuilds += 1
        return current


_SECRETS = _SecretCache()


def secrets_redactor() -> Redactor:
    """The ``Redactor`` of the secrets in the process's environment now (cached: see ``_SecretCache``)."""
    return _SECRETS.get()[1]


def may_hold_secrets(json_text: str) -> bool:
    """Whether a line ``json.dumps`` wrote may hold a secret or a credential: when not, it is written
    as it is, without the walk that masks value by value."""
    _, redactor, escaped = _SECRETS.get()
    return escaped or redactor.hits(json_text)


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
                f"is {len(value)} characters long; a secret shorter than {MIN_SECRET_LENGTH} characters "
                "cannot be masked in logs and alerts without also masking ordinary data (a year in a date, a price)",
                SECRET_FIX))
        elif looks_like_data(value):
            problems.append(ConfigProblem(
                ENVIRONMENT, name,
                "is a number or a date; masking it in logs and alerts would also mask the same number in prices, ids "
                "and times", SECRET_FIX))
    return problems


def redact(text: str) -> str:
    """``text`` with every secret from the environment, and every credential in a known place, masked.

    A JSON object or array (a state file, an alert) is masked value by value and written back in
    the same layout, so its keys, numbers and syntax never change."""
    redactor = secrets_redactor()
    if not redactor.hits(text):
        return text
    head = text.lstrip()[:1]
    if head in ("{", "["):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, (dict, list)):
            masked = redactor.data(document)
            if masked == document:
                return text
            indent = re.search(r"\n( +)\S", text)
            if indent:
                return json.dumps(masked, indent=len(indent.group(1)), ensure_ascii=False)
            return json.dumps(masked, separators=(",", ":"), ensure_ascii=False)
    return redactor(text)


def redact_data(value: Any) -> Any:
    """JSON-like ``value`` with every secret masked inside its strings (keys and numbers untouched)."""
    return secrets_redactor().data(value)


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
