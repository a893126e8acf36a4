"""``[plugins.vision]``: the model and endpoint, the timeframes and their gate, limits, cache and price table."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from gobot_hookspecs import PluginConfig
from gobot_hookspecs.candles import TIMEFRAMES

#: USD per million tokens, [input, output]: OpenAI's list prices when this table was written.
#: Check them against your provider's price page; a local model costs nothing here.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
}


class VisionConfig(PluginConfig):
    model: str = Field(
        "gpt-4o", min_length=1, description="vision model name at the endpoint (e.g. gpt-4o, llava, qwen2.5vl)"
    )
    base_url: str = Field(
        "", description="OpenAI-compatible endpoint; empty = OpenAI. e.g. http://127.0.0.1:11434/v1 (Ollama)"
    )
    timeframes: list[str] = Field(
        default_factory=lambda: ["1m", "5m", "15m"], min_length=1,
        description="charts shown to the model, one per timeframe",
    )
    min_agreeing_timeframes: int = Field(
        2, ge=1, description="LONG/SHORT only when at least this many timeframes read the same way; else HOLD"
    )
    chart_candles: int = Field(120, ge=10, le=1000, description="candles per chart")
    detail: Literal["low", "high", "auto"] = Field(
        "high", description="image detail sent to the model: low, high or auto"
    )
    structured_output: Literal["json_schema", "json_object", "none"] = Field(
        "json_schema",
        description="json_schema = strict structured output; json_object or none for endpoints without it",
    )
    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature")
    max_output_tokens: int = Field(600, ge=50, le=8000, description="longest answer, tokens (a cut-off answer is HOLD)")
    timeout_seconds: float = Field(60.0, gt=0, le=600, description="per request, seconds")
    max_retries: int = Field(
        2, ge=0, le=10, description="the openai SDK's retries with backoff on 429, 5xx and timeouts"
    )
    max_usd_per_day: float = Field(5.0, ge=0, description="estimated spend cap per UTC day, USD; 0 = no cap")
    max_tokens_per_day: int = Field(1_000_000, ge=0, description="token cap per UTC day (input + output); 0 = no cap")
    prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="USD per million tokens [input, output] by model name (longest prefix match)",
    )
    instructions: str = Field("", description="extra instructions appended to the built-in prompt")
    cache: bool = Field(
        True, description="reuse the answer for the same images, prompt, model and base_url (no new request)"
    )
    cache_dir: str = Field("", description="answers, images and spend ledger; empty = <state_dir>/vision")
    keep_images: bool = Field(True, description="keep each request's charts, for `gobot vision replay`")

    @field_validator("timeframes")
    @classmethod
    def _known_timeframes(cls, timeframes: list[str]) -> list[str]:
        for timeframe in timeframes:
            if timeframe not in TIMEFRAMES:
                raise ValueError(f"'{timeframe}' is not a timeframe; use {', '.join(TIMEFRAMES)}")
        if len(set(timeframes)) != len(timeframes):
            raise ValueError("a timeframe is listed twice")
        return timeframes

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if url and not url.startswith(("http://", "https://")):
            raise ValueError(f"'{url}' is not an http(s) URL such as http://127.0.0.1:11434/v1")
        return url.rstrip("/")

    @field_validator("prices")
    @classmethod
    def _non_negative_prices(cls, prices: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, pair in prices.items():
            if min(pair) < 0:
                raise ValueError(f"price of '{name}' is negative")
        return prices

    @model_validator(mode="after")
    def _gate_can_pass(self) -> VisionConfig:
        if self.min_agreeing_timeframes > len(self.timeframes):
            raise ValueError(
                f"min_agreeing_timeframes {self.min_agreeing_timeframes} is more than the {len(self.timeframes)} "
                "timeframes listed"
            )
        return self

    def price(self, model: str) -> tuple[float, float] | None:
        """[input, output] USD per million tokens: the exact name, else the longest prefix in the table."""
        if model in self.prices:
            return self.prices[model]
        matches = [name for name in self.prices if model.startswith(name)]
        return self.prices[max(matches, key=len)] if matches else None
