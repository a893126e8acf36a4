"""``[plugins.fear_greed]``: the endpoint, its timeout, how long a value counts as fresh, retries, recording."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from gobot_hookspecs import PluginConfig

from .client import DEFAULT_URL, shown_url


class FearGreedConfig(PluginConfig):
    url: str = Field(DEFAULT_URL, description="JSON endpoint in the format of alternative.me's Fear & Greed "
                     "index API (http or https)")
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="longest wait for one answer, seconds (a cycle "
                                   "waits at most this long, once per try)")
    refresh_margin_seconds: float = Field(120.0, ge=0, le=3600, description="ask this long after the next value is "
                                          "due (the source publishes it a little late), seconds")
    update_period_hours: float = Field(24.0, gt=0, le=24 * 31, description="the index's cadence, for an answer "
                                       "without time_until_update, hours")
    max_age_hours: float = Field(36.0, gt=0, description="a value older than this is stale whatever the source "
                                 "says, hours")
    retry_initial_seconds: float = Field(60.0, gt=0, description="first wait after a failed request, seconds; "
                                         "doubles with each failure in a row")
    retry_max_seconds: float = Field(3600.0, gt=0, description="longest wait between two tries, seconds (a longer "
                                     "Retry-After is honoured, up to a day)")
    record: bool = Field(True, description="append each new value to <state_dir>/sentiment/fear_greed.csv (the "
                         "format replays and backtests read)")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{shown_url(value)}' is not an http(s) URL such as {DEFAULT_URL}")
        return value
