"""Asking the model: the prompt, the request (cacheable: images by hash), the cache, the spend cap, the call.

The request body is built with each image as ``{"type": "image_ref", "sha256": ...}``; its cache key
is the hash of that body (the image hashes, the prompt, the model and the sampling settings), the
endpoint (``base_url``) and ``PROMPT_VERSION``: another model, another endpoint serving a model of
the same name, or a new prompt is asked afresh, never answered from another's cache.
The images go in as ``data:`` URLs only when the request is sent. Timeouts and retries with
backoff are the openai SDK's own (``timeout_seconds``, ``max_retries``): there is no second retry
loop here. The openai package is imported when the first request is sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Sequence
from urllib.parse import urlsplit

from gobot_hookspecs.redact import MASK

from .answer import ANSWER_SCHEMA
from .config import VisionConfig
from .store import VisionStore

#: Part of every cache key: raise it whenever the prompt or the reading of its answer changes, so
#: answers to the old prompt are not reused (they stay on disk, unused).
PROMPT_VERSION = 1

PROMPT = """You are a disciplined technical analyst. You are shown candlestick charts of one market, \
one chart per timeframe, each labelled with its timeframe. Read each chart on its own: trend, market \
structure (higher highs and lows, or lower), support and resistance, momentum (the RSI panel when \
present) and volume. Then give one overall trade idea for the next few hours: LONG, SHORT or HOLD.

Rules:
- Propose LONG or SHORT only when the charts clearly support it; otherwise answer HOLD.
- confidence is your probability, from 0 to 1, that the idea reaches its take-profit before its stop-loss.
- entry is near the current price. For LONG, stop_loss is below the current price and take_profit above it; \
for SHORT, the opposite. For HOLD, entry, stop_loss and take_profit are null.
- In "timeframes", give your reading (LONG, SHORT or HOLD) of every chart shown, by its timeframe label.
- rationale: one or two sentences on what in the charts supports the idea.
- Answer with one JSON object only, no other text, matching this JSON schema:
"""


def system_prompt(config: VisionConfig) -> str:
    text = PROMPT + json.dumps(ANSWER_SCHEMA, sort_keys=True)
    if config.instructions.strip():
        text += "\n\nAdditional instructions:\n" + config.instructions.strip()
    return text


def sentiment_lines(readings: dict[str, Any]) -> list[str]:
    """One line per sentiment reading of the snapshot (``snapshot.sentiment``), by source: its score and
    inputs (``gobot_hookspecs.sentiment.describe``, stale or partial said), its named fields and its time."""
    from gobot_hookspecs.sentiment import describe

    lines = []
    for source in sorted(readings):
        reading = readings[source]
        fields = ", ".join(f"{name} {value:.6g}" if isinstance(value, float) else f"{name} {value}"
                           for name, value in reading.fields.items() if value is not None)
        lines.append(describe(reading) + (f"; {fields}" if fields else "")
                     + f" (measured {reading.time:%Y-%m-%d %H:%M} UTC)")
    return lines


def build_request(
    config: VisionConfig, symbol: str, price: float, time: datetime, charts: list[Any], missing: dict[str, str],
    sentiment: Sequence[str] = (),
) -> dict[str, Any]:
    """The chat completion request with images by reference (see the module docstring); ``sentiment``:
    lines from ``sentiment_lines``, a text part after the intro (none: the request is as without them)."""
    shown = ", ".join(chart.timeframe for chart in charts)
    intro = (f"Market: {symbol}. Current price: {price:.8g} at {time:%Y-%m-%d %H:%M} UTC. "
             f"Charts follow, one per timeframe: {shown}.")
    if missing:
        intro += " Not available: " + ", ".join(missing) + "."
    content: list[dict[str, Any]] = [{"type": "text", "text": intro}]
    if sentiment:  # part of the body, so of the cache key: an answer made without them is never reused
        content.append({"type": "text", "text": "Market sentiment at this time (score -1 fear ... +1 greed; "
                        "context for the charts, not a signal by itself):\n" + "\n".join(f"- {line}" for line in
                                                                                       sentiment)})
    for chart in charts:
        what = f"Chart {chart.timeframe}"
        if chart.candles:
            what += f": the last {chart.candles} closed {chart.timeframe} candles"
            if chart.end is not None:
                what += f" up to {chart.end:%Y-%m-%d %H:%M} UTC"
        if chart.caption:
            what += f" ({chart.caption})"
        content.append({"type": "text", "text": what + "."})
        content.append({"type": "image_ref", "sha256": chart.sha256, "detail": config.detail})
    body: dict[str, Any] = {
        "model": config.model,
        "messages": [{"role": "system", "content": system_prompt(config)}, {"role": "user", "content": content}],
        "temperature": config.temperature,
        "max_tokens": config.max_output_tokens,
    }
    if config.structured_output == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "chart_signal", "strict": True, "schema": ANSWER_SCHEMA},
        }
    elif config.structured_output == "json_object":
        body["response_format"] = {"type": "json_object"}
    return body


def request_key(body: dict[str, Any], base_url: str = "") -> str:
    """The cache key of ``body`` sent to ``base_url`` (empty = OpenAI) with the current prompt version.

    The model is in the body; the endpoint is not, and two servers may answer to one model name
    (a local ``llava`` and a remote one), so it is part of the key too."""
    keyed = {"prompt_version": PROMPT_VERSION, "base_url": base_url.rstrip("/"), "request": body}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def image_hashes(body: dict[str, Any]) -> list[str]:
    return [part["sha256"] for part in body["messages"][-1]["content"] if part.get("type") == "image_ref"]


def with_images(body: dict[str, Any], images: dict[str, bytes]) -> dict[str, Any]:
    """The body as sent: each image reference becomes a ``data:image/png;base64`` URL."""
    content = []
    for part in body["messages"][-1]["content"]:
        if part.get("type") == "image_ref":
            url = "data:image/png;base64," + base64.b64encode(images[part["sha256"]]).decode("ascii")
            part = {"type": "image_url", "image_url": {"url": url, "detail": part["detail"]}}
        content.append(part)
    return {**body, "messages": [*body["messages"][:-1], {**body["messages"][-1], "content": content}]}


def safe_url(url: str) -> str:
    """An endpoint for messages: no credentials, query or fragment."""
    if not url:
        return "the OpenAI API"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


_KEY_LIKE = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_\-*]{6,}")


def _scrub(text: str) -> str:
    """Error texts from an endpoint may echo (part of) a key: mask anything key-shaped, keep it short."""
    return _KEY_LIKE.sub(MASK, " ".join(str(text).split()))[:240]


@dataclass
class Asked:
    """The result of one ask: the model's raw answer, or why there is none."""

    key: str
    answer: dict[str, Any] | None = None
    cached: bool = False
    # failure_kind: spend_cap, timeout, rate_limited, server_error, auth, bad_request, connection, ...
    failure_kind: str | None = None
    failure: str | None = None
    tokens: int = 0
    usd: float = 0.0
    spend_today: dict[str, float] = field(default_factory=dict)


class VisionClient:
    """One per run: the SDK client (created on first use), the store, the caps."""

    def __init__(self, config: VisionConfig, store: VisionStore, api_key: str | None):
        self.config = config
        self.store = store
        self._api_key = api_key
        self._sdk: Any = None

    def _client(self) -> Any:
        if self._sdk is None:
            from openai import AsyncOpenAI

            self._sdk = AsyncOpenAI(
                # Local servers (Ollama, vLLM) take any key; the SDK insists on one.
                api_key=self._api_key or "no-key-local-endpoint",
                base_url=self.config.base_url or None,
                timeout=self.config.timeout_seconds,
                max_retries=self.config.max_retries,
            )
        return self._sdk

    async def close(self) -> None:
        sdk, self._sdk = self._sdk, None
        if sdk is not None:
            await sdk.close()

    def cap_problem(self, today: dict[str, float]) -> str | None:
        config = self.config
        over_tokens = config.max_tokens_per_day and today["tokens"] >= config.max_tokens_per_day
        over_usd = config.max_usd_per_day and today["usd"] >= config.max_usd_per_day
        if not (over_tokens or over_usd):
            return None
        return (
            f"daily spend cap reached: {int(today['tokens'])} tokens, {today['usd']:.4f} USD in "
            f"{int(today['requests'])} requests today (max_tokens_per_day {config.max_tokens_per_day}, "
            f"max_usd_per_day {config.max_usd_per_day:g}); resets at 00:00 UTC"
        )

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.config.price(model)
        if price is None:
            return 0.0
        return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000

    async def ask(self, body: dict[str, Any], images: dict[str, bytes], *, use_cache: bool = True,
                  day: date | None = None) -> Asked:
        """The answer to ``body``: from the cache, else from the endpoint within the day's caps. Never raises."""
        key = request_key(body, self.config.base_url)
        if use_cache and self.config.cache:
            cached = self.store.get_answer(key)
            if cached is not None:
                return Asked(key, answer=cached, cached=True)
        day = day or datetime.now(timezone.utc).date()  # money is spent on the wall clock's day
        try:
            today = self.store.spend(day)
        except RuntimeError as exc:  # unreadable ledger: fail closed
            return Asked(key, failure_kind="spend_ledger", failure=str(exc))
        problem = self.cap_problem(today)
        if problem:
            return Asked(key, failure_kind="spend_cap", failure=problem, spend_today=today)
        try:
            response = await self._client().chat.completions.create(**with_images(body, images))
        except Exception as exc:
            kind, message = self.describe_error(exc)
            return Asked(key, failure_kind=kind, failure=message)
        if not getattr(response, "choices", None):
            return Asked(key, failure_kind="bad_response", failure="the endpoint answered with no choices")
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        answer = {
            "content": choice.message.content,
            "refusal": getattr(choice.message, "refusal", None),
            "finish_reason": choice.finish_reason,
            "model": getattr(response, "model", body["model"]),
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        }
        tokens = prompt_tokens + completion_tokens
        usd = self.cost(body["model"], prompt_tokens, completion_tokens)
        try:
            today = self.store.add_spend(day, tokens, usd)
        except RuntimeError as exc:
            return Asked(key, failure_kind="spend_ledger", failure=str(exc), tokens=tokens, usd=usd)
        if self.config.cache:
            self.store.put_answer(key, answer)
        return Asked(key, answer=answer, tokens=tokens, usd=usd, spend_today=today)

    def describe_error(self, exc: Exception) -> tuple[str, str]:
        """A failure kind and a one-line message without secrets."""
        import openai

        retries = f"after {self.config.max_retries} retries" if self.config.max_retries else "no retries"
        where = safe_url(self.config.base_url)
        if isinstance(exc, openai.APITimeoutError):
            return "timeout", (f"no answer from {where} within timeout_seconds {self.config.timeout_seconds:g} "
                               f"({retries})")
        if isinstance(exc, openai.APIConnectionError):
            return "connection", f"cannot reach {where} ({retries}): {_scrub(exc.__cause__ or exc)}"
        if isinstance(exc, openai.AuthenticationError):
            return "auth", f"{where} refused the key (HTTP 401): check OPENAI_API_KEY"
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = _scrub(_error_message(exc))
            if isinstance(exc, openai.RateLimitError):
                return "rate_limited", f"rate limited by {where} (HTTP 429, {retries}): {detail}"
            if status >= 500:
                return "server_error", f"{where} failed (HTTP {status}, {retries}): {detail}"
            hint = ""
            if status == 400 and self.config.structured_output == "json_schema":
                hint = ("; if the endpoint has no JSON-schema output, "
                        "set structured_output = \"json_object\" or \"none\"")
            return ("bad_request" if status == 400 else f"http_{status}",
                    f"{where} rejected the request (HTTP {status}): {detail}{hint}")
        return "error", f"{type(exc).__name__}: {_scrub(exc)}"


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return str(getattr(exc, "message", exc))
