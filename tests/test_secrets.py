"""The one redaction rule (issue 16, finding 2): a secret is masked as a whole value where it stands on
its own, never as a piece of a longer word or number; a JSON document keeps its keys, numbers and
layout; a chat id is not a secret; a secret that could equal data is refused, not masked."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from gobot.run.alerting import redacted
from gobot.secrets import MASK, SECRET_ENV_VARS, redact, redact_data, secret_problems, secret_values
from gobot_hookspecs import Alert
from gobot_plugins.archiver.records import Redactor

TOKEN = "dash-Token-7f3a9c21e4"


@pytest.fixture
def token(monkeypatch):
    for name in SECRET_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOBOT_DASHBOARD_TOKEN", TOKEN)
    return TOKEN


def test_a_chat_id_is_not_a_secret():
    assert "TELEGRAM_CHAT_ID" not in SECRET_ENV_VARS
    assert secret_values({"TELEGRAM_CHAT_ID": "-1001234567890123"}) == []


def test_a_secret_is_masked_where_it_stands_whole(token):
    assert redact(f"Authorization: Bearer {token}") == f"Authorization: Bearer {MASK}"
    assert redact(f"GET /x?token={token}&a=1 failed") == f"GET /x?token={MASK}&a=1 failed"
    assert redact(f'{{"error": "bad token {token}."}}') == f'{{"error":"bad token {MASK}."}}'


def test_a_secret_inside_a_longer_word_or_number_is_left_alone(token):
    for text in (f"x{token}", f"{token}9", f"abc{token}def"):
        assert redact(text) == text


def test_a_json_document_keeps_its_keys_numbers_and_layout(token, monkeypatch):
    state = {"run_id": "r1", "time": "2026-01-01T00:15:00+00:00", "equity": 100.5, TOKEN: 1,
             "learnings": [{"text": f"leaked {token}", "n": 3}], "note": token}
    text = json.dumps(state, indent=1)
    masked = json.loads(redact(text))
    assert masked == {**state, "learnings": [{"text": f"leaked {MASK}", "n": 3}], "note": MASK}  # the key is untouched
    assert redact(text).splitlines()[1].startswith(' "run_id"')  # indent=1 kept


def test_an_alert_keeps_its_time_whatever_the_secrets(monkeypatch):
    """The reported crash: GOBOT_DASHBOARD_TOKEN=2026 turned 2026-01-01 into ***-01-01 and Alert failed to validate."""
    monkeypatch.setenv("GOBOT_DASHBOARD_TOKEN", "2026")
    monkeypatch.setenv("TELEGRAM_CHAT_ID", "2026")
    alert = Alert(kind="trade_opened", title="Opened 2026 long", time=datetime(2026, 1, 1, tzinfo=timezone.utc),
                  data={"year": 2026, "text": "2026-01-01"})
    assert redacted(alert) == alert


@pytest.mark.parametrize("value, problem", [
    ("2026", "is 4 characters long; a secret shorter than 12 characters cannot be masked"),
    ("hunter2", "is 7 characters long"),
    ("202601011200", "is a number or a date"),
    ("2026-01-01T00:00", "is a number or a date"),
    ("1e1234567890", "is a number or a date"),
    ("-100123456789012", "is a number or a date"),
])
def test_a_secret_that_could_equal_data_is_refused_naming_the_variable_and_the_fix(value, problem):
    [refusal] = secret_problems({"GOBOT_DASHBOARD_TOKEN": value})
    assert str(refusal).startswith(f"(environment):GOBOT_DASHBOARD_TOKEN: {problem}")
    assert str(refusal).endswith("— fix: use a random value of at least 12 characters with letters in it, e.g. "
                                 "`openssl rand -hex 16`")
    assert value not in str(refusal)
    assert secret_values({"GOBOT_DASHBOARD_TOKEN": value}) == []  # and never masked: data stays data


def test_real_secrets_pass():
    env = {"BINANCE_API_KEY": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
           "TELEGRAM_TOKEN": "123456789:AAFakeTokenForTests-abcdefghijklmnop",
           "GOBOT_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
           "GOBOT_DASHBOARD_TOKEN": "0f3c9a5e1b7d2c8e4a6f"}
    assert secret_problems(env) == [] and len(secret_values(env)) == 4


def test_redact_data_masks_inside_strings_only(token):
    data = {"a": [token, f"x {token} y", 1, None, True], token: "k"}
    assert redact_data(data) == {"a": [MASK, f"x {MASK} y", 1, None, True], token: "k"}


def test_the_archiver_follows_the_same_rule():
    redactor = Redactor({"GOBOT_DASHBOARD_TOKEN": "2026", "SOME_TOKEN": "true", "PGPASSWORD": "2026-01-01T00:00",
                         "BINANCE_API_KEY": "SECRET-binance-key-1234567890"})
    assert redactor.values == ["SECRET-binance-key-1234567890"]
    row = {"time": "2026-01-01T00:00:00+00:00", "approved": "true", "text": "key SECRET-binance-key-1234567890 used",
           "id": "xSECRET-binance-key-1234567890"}
    assert redactor.data(row) == {**row, "text": "key *** used"}
    assert redactor("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
