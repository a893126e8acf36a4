"""One GET of the index over httpx (imported when a request is made, never with the plugin), every
failure as a ``SourceError``; and the endpoint's address as it may be shown (``shown_url``).

A URL may carry credentials (``https://user:pass@host/``, ``?apikey=...``): they never reach a
message of this plugin, and a filter on httpx's logger masks them in its "HTTP Request" lines.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gobot_hookspecs.redact import MASK, SECRET_NAME, mask_credentials

from .index import IndexValue, SourceError, parse

DEFAULT_URL = "https://api.alternative.me/fng/"
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>]+")


def request_url(url: str, limit: int) -> str:
    """``url`` asking for the newest ``limit`` values (0 = all) as JSON with unix timestamps; its other
    parameters kept."""
    parts = urlsplit(url)
    ours = ("limit", "format", "date_format")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    query += [("limit", str(limit)), ("format", "json")]
    return urlunsplit(parts._replace(query=urlencode(query)))


def shown_url(url: str) -> str:
    """``url`` as logs and notes may show it: user and password, and parameters named like a
    secret (``apikey``, ``token``), masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = "&".join(f"{k}={MASK if SECRET_NAME.search(k) else v}"
                     for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def masked(text: str) -> str:
    """``text`` with every URL in it as ``shown_url`` shows it (and credentials in other known places masked)."""
    if "://" in text:
        text = _URL.sub(lambda match: shown_url(match.group()), text)
    return mask_credentials(text)


class _MaskUrls(logging.Filter):
    """Masks credentials in the URLs of httpx's own log lines ("HTTP Request: GET <url> ...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = masked(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = _MaskUrls()


async def fetch(url: str, limit: int, timeout: float) -> list[IndexValue]:
    """The newest ``limit`` values (0 = all), newest first; ``SourceError`` on a timeout, a network
    error, an HTTP error status (429's ``Retry-After`` kept) or an answer not in the documented shape."""
    import httpx

    logger = logging.getLogger("httpx")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            response = await client.get(request_url(url, limit), headers={"Accept": "application/json"})
    except httpx.TimeoutException:
        raise SourceError(f"no answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise SourceError(masked(f"{type(exc).__name__}: {exc}")) from None
    status = response.status_code
    if status >= 300:
        detail = f"HTTP {status} {response.reason_phrase}".rstrip()
        if 300 <= status < 400:
            detail += f" (redirected to {shown_url(response.headers.get('location', '?'))}: set url to it)"
        wait = retry_after(response.headers.get("retry-after"))
        if wait is not None:
            detail += f", Retry-After {wait:g} s"
        raise SourceError(detail, retry_after=wait)
    return parse(response.content)


def retry_after(header: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number of seconds or an HTTP date); None if absent
    or unreadable."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
