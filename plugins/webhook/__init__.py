"""``webhook``: alerts as a JSON POST to a URL — gobot's own JSON, or Slack- or Discord-compatible.

The URL comes from ``GOBOT_WEBHOOK_URL`` in the environment, and only from there: whoever has a
webhook URL can post to the channel (Slack's and Discord's carry their key in the path), so it is a
secret, masked in logs like the others. ``[plugins.webhook] url`` is refused with that fix. Delivery
runs in a background task: 429 ``Retry-After`` is honoured, network errors, timeouts and 5xx are
retried with backoff up to ``max_attempts``; the trading loop never waits. Enabled without a URL,
the bot refuses to start and says what to set.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from typing import Any, Literal

from pydantic import Field, field_validator

from gobot_hookspecs import PluginConfig, Severity, hookimpl

log = logging.getLogger(__name__)

NAME = "webhook"
URL_ENV = "GOBOT_WEBHOOK_URL"
LEVELS = [Severity.INFO, Severity.WARNING, Severity.CRITICAL]
ICONS = {"INFO": ":information_source:", "WARNING": ":warning:", "CRITICAL": ":rotating_light:"}
DISCORD_LIMIT = 2000
SLACK_LIMIT = 3000  # of one section's text; longer texts are cut


class WebhookConfig(PluginConfig):
    # Not a setting: kept only to refuse it with the fix (a webhook URL is a credential). `gobot init` omits it.
    url: str = Field("", exclude=True, description=f"set {URL_ENV} in the environment and remove this key")
    format: Literal["json", "slack", "discord"] = Field(
        "json", description=("payload: json (the alert's fields), slack ({\"text\": ...}) "
                             "or discord ({\"content\": ...})")
    )
    min_severity: Severity = Field(Severity.WARNING, description="quietest alert sent: INFO, WARNING or CRITICAL")
    timeout: float = Field(10.0, gt=0, description="seconds one POST may take")
    max_attempts: int = Field(5, ge=1, description=("tries per alert (network errors, timeouts, 5xx, 429), "
                                                    "then it is dropped and logged"))
    retry_initial: float = Field(2.0, gt=0, description="seconds before the first retry; doubles with each failure")
    retry_max: float = Field(60.0, gt=0, description="longest wait between two tries, seconds")
    drain_timeout: float = Field(10.0, gt=0,
                                 description="at shutdown, seconds without a delivery before the rest is given up")

    @field_validator("url")
    @classmethod
    def _not_here(cls, url: str) -> str:
        if url.strip():
            raise ValueError(f"a webhook URL is a credential (whoever has it can post to the channel): it is read from "
                             f"{URL_ENV} in the environment only")
        return url


def payload(alert: dict[str, Any], form: str) -> list[dict[str, Any]]:
    """The request bodies for one alert (Discord's 2000-character limit may need several)."""
    title, text, severity = (str(alert.get("title", "")), str(alert.get("text", "") or ""),
                             str(alert.get("severity", "INFO")))
    if form == "json":
        return [{"source": "gobot", **{k: alert.get(k) for k in ("kind", "severity", "title", "text", "time", "data")}}]
    if form == "slack":
        escaped = "\n".join(part for part in (f"*{_slack(title)}*", _slack(text)) if part)
        return [{"text": f"{ICONS.get(severity, '')} {escaped}"[:SLACK_LIMIT] + f"\n_{alert.get('kind')}_"}]
    content = "\n".join(part for part in (f"**{_discord(title)}**", _discord(text), f"*{alert.get('kind')}*") if part)
    chunks = [content[i:i + DISCORD_LIMIT] for i in range(0, len(content), DISCORD_LIMIT)] or [""]
    return [{"content": chunk, "allowed_mentions": {"parse": []}} for chunk in chunks]


def _slack(text: str) -> str:
    """Slack's mrkdwn escapes: only &, < and > (so "<!channel>" in a rationale pings nobody)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _discord(text: str) -> str:
    """Markdown characters escaped, so a hostile rationale cannot format or ping (mentions are off too)."""
    for char in "\\*_~`|>#[]()":
        text = text.replace(char, "\\" + char)
    return text.replace("@", "@\u200b")


class _MaskUrl(logging.Filter):
    """Masks the URL in httpx's own log lines ("HTTP Request: POST <url> ...")."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.url in message:
            record.msg, record.args = message.replace(self.url, "<webhook url>"), None
        return True


class Webhook:
    """One background sender per bot (or per ``gobot alerts test`` / ``gobot watchdog``)."""

    def __init__(self) -> None:
        self.ctx: Any = None
        self.config = WebhookConfig()
        self.url = ""
        self._client: Any = None
        self._queue: deque[tuple[dict[str, Any], int, float]] = deque()  # alert, attempts, not before
        self._wake: asyncio.Event | None = None
        self._progress: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    @hookimpl
    def gobot_config_model(self):
        return WebhookConfig

    def _open(self, ctx: Any) -> None:
        import httpx

        config = WebhookConfig.of(ctx, NAME)
        url = os.environ.get(URL_ENV, "").strip()
        if not url:
            raise RuntimeError(f"no URL to post to: set {URL_ENV} in the environment, or disable the webhook plugin")
        if not url.startswith(("http://", "https://")):
            raise RuntimeError("the webhook URL must start with http:// or https://")
        self.ctx, self.config, self.url = ctx, config, url
        self._client = httpx.AsyncClient(timeout=config.timeout, follow_redirects=False)
        self._filter = _MaskUrl(url)
        logging.getLogger("httpx").addFilter(self._filter)
        self._wake, self._progress = asyncio.Event(), asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-sender")

    def _redact(self, text: str) -> str:
        return text.replace(self.url, "<webhook url>") if self.url else text

    @hookimpl
    def gobot_startup(self, ctx):
        self._open(ctx)

    @hookimpl
    def gobot_send_alert(self, ctx, alert):
        config = WebhookConfig.of(ctx, NAME)
        if LEVELS.index(alert.severity) < LEVELS.index(config.min_severity):
            return
        if self._task is None:
            self._open(ctx)
        self._queue.append((alert.model_dump(mode="json"), 0, 0.0))
        self._wake.set()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            alert, attempts, not_before = self._queue[0]
            wait = not_before - time.time()
            if wait > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                except asyncio.TimeoutError:
                    pass
                continue
            outcome = await self._post(alert)
            if outcome is None:
                self._done(alert, True, "sent" if attempts == 0 else f"sent after {attempts} failed tries")
                continue
            detail, retry_after, retryable = outcome
            attempts += 1
            if not retryable or attempts >= self.config.max_attempts:
                self._done(alert, False, f"dropped after {attempts} tries: {detail}")
                log.error("webhook: alert dropped after %d tries: %s", attempts, detail)
                continue
            delay = (retry_after if retry_after is not None
                     else min(self.config.retry_max, self.config.retry_initial * 2 ** (attempts - 1)))
            self._queue[0] = (alert, attempts, time.time() + delay)
            log.warning("webhook: delivery failed (%s); retrying in %.1f s", detail, delay)

    async def _post(self, alert: dict[str, Any]) -> tuple[str, float | None, bool] | None:
        """None when delivered, else (why, Retry-After seconds or None, worth retrying)."""
        import httpx

        for body in payload(alert, self.config.format):
            try:
                response = await self._client.post(self.url, json=body)
            except httpx.TimeoutException:
                return f"no answer within {self.config.timeout:g} s", None, True
            except httpx.HTTPError as exc:
                return self._redact(f"{type(exc).__name__}: {exc}"), None, True
            if response.status_code == 429:
                try:
                    retry_after = float(response.headers.get("retry-after", ""))
                except ValueError:
                    retry_after = None
                return "HTTP 429 rate limited", retry_after, True
            if response.status_code >= 300:
                return f"HTTP {response.status_code}", None, response.status_code >= 500
        return None

    def _done(self, alert: dict[str, Any], delivered: bool, detail: str) -> None:
        if self._queue and self._queue[0][0] is alert:
            self._queue.popleft()
        try:
            self.ctx.audit("alert_delivery", channel=NAME, kind=alert.get("kind"), title=alert.get("title"),
                           delivered=delivered, detail=detail)
        except Exception:
            log.debug("webhook: receipt not recorded", exc_info=True)
        self._progress.set()

    @hookimpl
    async def gobot_shutdown(self):
        if self._task is None:
            return
        while self._queue:  # deliver what is queued while it makes progress
            self._progress.clear()
            alert, attempts, not_before = self._queue[0]
            if not_before - time.time() > self.config.drain_timeout:
                break
            self._wake.set()
            try:
                await asyncio.wait_for(self._progress.wait(), timeout=self.config.drain_timeout)
            except asyncio.TimeoutError:
                break
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass
        for alert, _attempts, _ in list(self._queue):
            self._done(alert, False, "not delivered before exit")
        self._queue.clear()
        await self._client.aclose()
        logging.getLogger("httpx").removeFilter(self._filter)
        self._task = self._client = None
