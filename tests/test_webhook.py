"""The webhook channel against a loopback receiver: payload formats, severity filter, retries, 429."""

from __future__ import annotations

import asyncio
import logging

import pytest

from alert_servers import WebhookServer
from gobot.config import settings_from_dict
from gobot.errors import PluginError
from gobot.host.plugin_manager import build_plugin_set
from gobot.run.alerting import AlertChannels
from gobot_hookspecs import Alert, Severity

VETO = Alert(kind="risk_veto", title="Risk veto: buy <!channel> BTC/USDT", text="risk_limits: *bold* & @everyone",
             severity=Severity.WARNING)


@pytest.fixture
def receiver(monkeypatch):
    with WebhookServer() as server:
        monkeypatch.setenv("GOBOT_WEBHOOK_URL", server.url)
        yield server


def channels(tmp_path, **section) -> AlertChannels:
    section = {"retry_initial": 0.05, "retry_max": 0.2, "drain_timeout": 3, "timeout": 2, **section}
    data = {"state_dir": str(tmp_path / "state"), "plugins": {"webhook": section}}
    settings = settings_from_dict(data, "test.toml", base_dir=str(tmp_path))
    return AlertChannels(settings, build_plugin_set(enable=["webhook"], disable=["console"]))


def send(chans, *alerts):
    async def go():
        for alert in alerts:
            await chans.send(alert)
        await chans.close()

    asyncio.run(go())


def test_json_payload_carries_the_alert_and_info_is_filtered_by_default(receiver, tmp_path):
    send(channels(tmp_path), Alert(kind="trade_opened", title="Opened long BTC/USDT"), VETO)
    [body] = receiver.delivered()
    assert body["source"] == "gobot" and body["kind"] == "risk_veto" and body["severity"] == "WARNING"
    assert body["title"] == VETO.title and body["text"] == VETO.text and body["time"]


def test_slack_and_discord_payloads_are_escaped(receiver, tmp_path):
    send(channels(tmp_path, format="slack"), VETO)
    send(channels(tmp_path, format="discord", min_severity="INFO"), VETO)
    slack, discord = receiver.delivered()
    assert "&lt;!channel&gt;" in slack["text"] and "<!channel>" not in slack["text"] and "&amp;" in slack["text"]
    assert (discord["allowed_mentions"] == {"parse": []} and "\\*bold\\*" in discord["content"]
            and "@everyone" not in discord["content"])


def test_a_long_discord_message_is_split_below_2000_characters(receiver, tmp_path):
    send(channels(tmp_path, format="discord"), Alert(kind="risk_veto", title="long", text="x" * 4500,
                                                     severity=Severity.WARNING))
    bodies = receiver.delivered()
    assert len(bodies) == 3 and all(len(b["content"]) <= 2000 for b in bodies)


def test_5xx_is_retried_and_429_retry_after_honoured(receiver, tmp_path):
    receiver.fail(503, times=2)
    receiver.fail(429, retry_after=1)
    chans = channels(tmp_path)
    send(chans, VETO)
    statuses = [status for _, _, _, status in receiver.posts]
    assert statuses == [503, 503, 429, 200]
    assert receiver.posts[3][0] - receiver.posts[2][0] >= 1.0
    [receipt] = chans.receipts()
    assert receipt["delivered"] and "after 3 failed tries" in receipt["detail"]


def test_an_alert_refused_for_good_is_dropped_and_the_url_never_logged(receiver, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.fail(400)
    chans = channels(tmp_path)
    send(chans, VETO, Alert(kind="kill_switch", title="Kill switch", severity=Severity.CRITICAL))
    assert [r["delivered"] for r in chans.receipts()] == [False, True]
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "secretpart" not in logs and "<webhook url>" in logs


def test_enabling_the_webhook_without_a_url_is_a_clear_start_up_error(replay_bot, run_bot, monkeypatch):
    monkeypatch.delenv("GOBOT_WEBHOOK_URL", raising=False)
    with pytest.raises(PluginError, match="GOBOT_WEBHOOK_URL"):
        run_bot(replay_bot(config={"plugins": {"enable": ["webhook"]}}), 1)


def test_a_running_bot_posts_its_warnings(receiver, replay_bot, run_bot):
    bot = replay_bot(config={"plugins": {"enable": ["webhook"], "webhook": {"min_severity": "INFO"}}})
    run_bot(bot, 5)
    kinds = [body["kind"] for body in receiver.delivered()]
    assert kinds[0] == "run_started" and kinds[-1] == "run_stopped"


def test_a_url_in_the_config_is_refused_with_the_fix(tmp_path, monkeypatch):
    """A webhook URL is a credential (Slack's and Discord's carry their key): it comes from GOBOT_WEBHOOK_URL only."""
    from gobot.errors import ConfigError

    monkeypatch.setenv("GOBOT_WEBHOOK_URL", "https://alerts.example.com/from-the-environment")
    with pytest.raises(ConfigError) as caught:
        channels(tmp_path, url="https://alerts.example.com/gobot")
    [problem] = caught.value.problems
    assert str(problem) == ("test.toml:plugins.webhook.url: a webhook URL is a credential (whoever has it can post to "
                            "the channel): it is read from GOBOT_WEBHOOK_URL in the environment only — fix: set "
                            "GOBOT_WEBHOOK_URL in the environment and remove this key")
