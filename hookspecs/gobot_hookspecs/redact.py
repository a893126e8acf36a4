"""The one rule for keeping secrets out of what gobot and its plugins write (standard library only).

A secret is masked as a whole value, where it can enter: ``***`` replaces a known secret value
where it stands on its own (the character before and after it, if any, is not a letter or a digit),
a password in a URL (``scheme://user:***@host``), a signature in a signed query string
(``signature=***``) and an API key in a request header (``X-MBX-APIKEY: ***``). Data is never
rewritten by substring: a piece of a longer word or number is left alone, and a JSON-like value is
masked string by string, its keys, numbers and structure untouched.

Whole-value masking is only safe for values that cannot be mistaken for data, so a secret value
must be at least ``MIN_SECRET_LENGTH`` characters long and not a number or a date (``maskable``);
the core refuses to start with any other, and a ``Redactor`` silently skips them rather than turn
a year inside a date into ``***``.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any, Iterable, Mapping

MASK = "***"
MIN_SECRET_LENGTH = 12  # shorter values can equal ordinary text: "2026" is a year in every date
#: Environment variable names that say they hold a secret (``*_API_KEY``, ``*TOKEN*``, ``PGPASSWORD``).
SECRET_NAME = re.compile(r"(api_?key|secret|token|password|passphrase|passwd)", re.IGNORECASE)
_DATA_LETTERS = frozenset("TZeE")  # the letters of "2026-01-01T00:00:00Z" and "1e-05"
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^\s:/@]+:)[^\s@/]+@", re.IGNORECASE)
_SIGNATURE = re.compile(r"(?P<head>\bsignature=)[0-9a-fA-F]+")
_KEY_HEADER = re.compile(r"(?P<head>X-MBX-APIKEY['\"]?:\s*['\"]?)[^'\",}\s]+", re.IGNORECASE)


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


def has_credentials(text: str) -> bool:
    """Whether ``text`` may hold a credential in a known place (a quick test before masking).

    A URL password needs an ``@`` and a signature an ``=``: one-character searches (memchr) that rule
    out most documents before the slower searches for ``://`` and ``signature=`` (a state file's head
    of 85 KB: 78 against 160 us)."""
    return ("@" in text and "://" in text) or ("=" in text and "signature=" in text) or "apikey" in text.lower()


def mask_credentials(text: str) -> str:
    """``text`` with the credentials that sit in known places masked: URL passwords, request
    signatures and API key headers (no secret value needs to be known)."""
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", text)
    if "signature=" in text:
        text = _SIGNATURE.sub(lambda m: m.group("head") + MASK, text)
    if "apikey" in text.lower():
        text = _KEY_HEADER.sub(lambda m: m.group("head") + MASK, text)
    return text


@lru_cache(maxsize=16)
def _pattern(values: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(v) for v in values)  # longest first: a longer secret wins over its prefix
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


class Redactor:
    """Masks the given secret values (those that are ``maskable``) and credentials in known places.

    ``Redactor(values)`` for values you hold; ``Redactor.from_environ()`` for the values of
    environment variables whose names say they are secret. Call it on text; ``data()`` on JSON-like
    values.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = sorted({v for v in values if isinstance(v, str) and maskable(v)}, key=len, reverse=True)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, names: Iterable[str] | None = None) -> Redactor:
        """The values of ``names`` in ``environ`` (default: the process's environment), or of every
        variable whose name says secret."""
        environ = os.environ if environ is None else environ
        wanted = list(names) if names is not None else [name for name in environ if SECRET_NAME.search(name)]
        return Redactor(environ.get(name, "") for name in wanted)

    def hits(self, text: str) -> bool:
        """Whether ``text`` may hold anything to mask (a quick test before the walk of a document)."""
        return any(value in text for value in self.values) or has_credentials(text)

    def mask_values(self, text: str) -> str:
        """``text`` with each known secret value masked where it stands whole."""
        if not any(value in text for value in self.values):
            return text
        return _pattern(tuple(self.values)).sub(MASK, text)

    def __call__(self, text: str) -> str:
        """``text`` with known secret values and credentials in known places masked."""
        text = self.mask_values(text)
        return mask_credentials(text) if has_credentials(text) else text

    def data(self, value: Any, text: Any = None) -> Any:
        """JSON-like ``value`` with every string masked by ``text`` (default: this redactor); keys,
        numbers and structure untouched."""
        mask = text or self
        if isinstance(value, str):
            return mask(value)
        if isinstance(value, dict):
            return {k: self.data(v, mask) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v, mask) for v in value]
        return value
