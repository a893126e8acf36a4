"""The vision answer cache is keyed by the request (charts, prompt, model), the endpoint and PROMPT_VERSION.

No browser and no server: the cache is filled through the client's own ``ask`` with a stand-in SDK
that counts the requests it is sent."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import date
from types import SimpleNamespace

import pytest

from gobot_plugins.vision import client as vision_client
from gobot_plugins.vision.client import VisionClient, build_request, request_key
from gobot_plugins.vision.config import VisionConfig
from gobot_plugins.vision.store import VisionStore

PNG = b"\x89PNG\r\n\x1a\n not really a chart"
SHA = hashlib.sha256(PNG).hexdigest()
DAY = date(2026, 1, 2)


class CountingSDK:
    """Stands in for ``AsyncOpenAI``: answers HOLD, counts the requests."""

    def __init__(self):
        self.sent: list[dict] = []
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))

    async def _create(self, **body):
        self.sent.append(body)
        message = SimpleNamespace(content=json.dumps({"action": "HOLD"}), refusal=None)
        return SimpleNamespace(choices=[SimpleNamespace(message=message, finish_reason="stop")], model=body["model"],
                               usage=SimpleNamespace(prompt_tokens=10, completion_tokens=5))

    async def close(self):
        pass


def body_for(config: VisionConfig) -> dict:
    chart = SimpleNamespace(timeframe="5m", candles=120, end=None, caption="", sha256=SHA)
    from datetime import datetime, timezone

    return build_request(config, "BTC/USDT", 100.0, datetime(2026, 1, 2, tzinfo=timezone.utc), [chart], {})


def ask(config: VisionConfig, store: VisionStore, sdk: CountingSDK):
    client = VisionClient(config, store, api_key=None)
    client._sdk = sdk
    return asyncio.run(client.ask(body_for(config), {SHA: PNG}, day=DAY))


@pytest.fixture
def store(tmp_path):
    return VisionStore(tmp_path / "vision")


def test_the_same_model_endpoint_and_charts_are_answered_from_the_cache(store):
    sdk = CountingSDK()
    config = VisionConfig(model="llava", base_url="http://127.0.0.1:11434/v1")
    first, second = ask(config, store, sdk), ask(config, store, sdk)
    assert (first.cached, second.cached) == (False, True)
    assert first.key == second.key and len(sdk.sent) == 1


@pytest.mark.parametrize("change", [
    {"model": "qwen2.5vl"},
    {"base_url": "http://10.0.0.7:11434/v1"},  # another server that answers to the same model name
    {"base_url": ""},  # OpenAI itself
])
def test_another_model_or_endpoint_misses_the_cache(store, change):
    sdk = CountingSDK()
    before = VisionConfig(model="llava", base_url="http://127.0.0.1:11434/v1")
    after = before.model_copy(update=change)
    first, second = ask(before, store, sdk), ask(after, store, sdk)
    assert not second.cached and second.key != first.key
    assert len(sdk.sent) == 2
    assert ask(before, store, sdk).cached  # the first endpoint's answer is still there for it


def test_a_new_prompt_version_misses_the_cache(store, monkeypatch):
    sdk = CountingSDK()
    config = VisionConfig(model="llava", base_url="http://127.0.0.1:11434/v1")
    first = ask(config, store, sdk)
    monkeypatch.setattr(vision_client, "PROMPT_VERSION", vision_client.PROMPT_VERSION + 1)
    second = ask(config, store, sdk)
    assert not second.cached and second.key != first.key and len(sdk.sent) == 2


def test_an_answer_cached_under_the_old_key_is_simply_a_miss(store):
    """Before the endpoint and prompt version were in the key, it was the hash of the body alone."""
    sdk = CountingSDK()
    config = VisionConfig(model="llava", base_url="http://127.0.0.1:11434/v1")
    body = body_for(config)
    old_key = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    store.put_answer(old_key, {"content": "stale", "refusal": None, "finish_reason": "stop"})
    asked = ask(config, store, sdk)
    assert not asked.cached and asked.key != old_key and len(sdk.sent) == 1


def test_a_trailing_slash_on_the_endpoint_is_the_same_key():
    config = VisionConfig(model="llava")
    body = body_for(config)
    assert request_key(body, "http://127.0.0.1:11434/v1/") == request_key(body, "http://127.0.0.1:11434/v1")


def test_vision_replay_reads_the_config_as_the_bot_does_variables_included(tmp_path, monkeypatch):
    """The endpoint is part of the key: `gobot vision replay` must see GOBOT_PLUGINS__VISION__BASE_URL
    and GOBOT_STATE_DIR as `gobot start` does, or it would look up (and ask) the wrong thing."""
    from click.testing import CliRunner

    from gobot.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOBOT_CONFIG", raising=False)
    (tmp_path / "config.toml").write_text('[plugins]\nenable = ["charts", "vision"]\n[plugins.vision]\nmodel = '
                                          '"llava"\n', encoding="utf-8")
    monkeypatch.setenv("GOBOT_PLUGINS__VISION__BASE_URL", "http://127.0.0.1:11434/v1/")
    monkeypatch.setenv("GOBOT_STATE_DIR", str(tmp_path / "elsewhere"))
    result = CliRunner().invoke(cli, ["vision", "replay", "--list"])
    assert result.exit_code != 0
    assert f"no vision requests recorded in {tmp_path / 'elsewhere' / 'vision'}" in result.output

    from gobot_plugins.vision import cli as vision_cli

    config, root = vision_cli._load(None)
    assert (config.model, config.base_url, root) == ("llava", "http://127.0.0.1:11434/v1",
                                                     tmp_path / "elsewhere" / "vision")
