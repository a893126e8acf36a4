"""A small Telegram Bot API client on httpx: one method call = one POST, errors as ``TelegramError``.

The token is part of every Bot API URL (``<api_url>/bot<token>/<method>``), so it is masked in
every error text this module produces, and in httpx's own log lines (a filter on its logger).
httpx is imported when the client is created, never when the plugin is imported.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from gobot_hookspecs.redact import MASK


class TelegramError(Exception):
    """A Bot API call failed. ``retryable``: a later try may work (network, timeout, 5xx, 429)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable

    @property
    def unparsable(self) -> bool:
        """Telegram could not parse the message's entities (then it is re-sent as plain text)."""
        return self.status == 400 and "parse entities" in str(self)


class _MaskToken(logging.Filter):
    """Masks the token in the records of httpx's logger ("HTTP Request: POST .../bot<token>/...")."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = message
        for secret in self.secrets:
            masked = masked.replace(secret, MASK)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class BotApi:
    """Calls Bot API methods with one ``httpx.AsyncClient``; never lets the token out in a message."""

    def __init__(self, token: str, api_url: str, timeout: float):
        import httpx

        self._httpx = httpx
        self._secrets = sorted({token, quote(token, safe=""), quote(token)}, key=len, reverse=True)
        self._base = f"{api_url.rstrip('/')}/bot{token}/"
        self.timeout = timeout
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._filter = _MaskToken(self._secrets)
        logging.getLogger("httpx").addFilter(self._filter)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    async def call(self, method: str, params: dict[str, Any] | None = None, *, files: dict[str, Any] | None = None,
                   timeout: float | None = None) -> Any:
        """POST ``method`` and return its ``result``; raise ``TelegramError`` (token masked) on any failure."""
        httpx = self._httpx
        seconds = self.timeout if timeout is None else timeout
        try:
            if files:
                data = {key: str(value) for key, value in (params or {}).items() if value is not None}
                response = await self._client.post(self._base + method, data=data, files=files, timeout=seconds)
            else:
                response = await self._client.post(self._base + method, json=params or {}, timeout=seconds)
        except httpx.TimeoutException:
            raise TelegramError(f"{method}: no answer within {seconds:g} s", retryable=True) from None
        except httpx.HTTPError as exc:
            raise TelegramError(self.redact(f"{method}: {type(exc).__name__}: {exc}"), retryable=True) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and isinstance(body, dict) and body.get("ok"):
            return body.get("result")
        status = body.get("error_code", response.status_code) if isinstance(body, dict) else response.status_code
        description = body.get("description", "") if isinstance(body, dict) else ""
        parameters = (body.get("parameters") or {}) if isinstance(body, dict) else {}
        retry_after = parameters.get("retry_after")
        if retry_after is None and status == 429:
            retry_after = _seconds(response.headers.get("retry-after"))
        text = self.redact(f"{method}: HTTP {status} {description or response.reason_phrase}".rstrip())
        raise TelegramError(text, status=status, retry_after=retry_after, retryable=status == 429 or status >= 500)

    async def close(self) -> None:
        await self._client.aclose()
        logging.getLogger("httpx").removeFilter(self._filter)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
