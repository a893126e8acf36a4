"""Secrets never leak: a full ``gobot start`` replay as a real process with a recognisable fake value in
every ``SECRET_ENV_VARS`` variable, the archiver on, alerts sent to the Telegram loopback server and
to the webhook loopback server, then ``gobot report --html``. Every byte of stdout/stderr, every file
the run left (state, audit log, progress, outboxes, the SQLite archive's rows) and every alert body
the two servers received is scanned: zero occurrences. The state directory and archive are owner-only.
The chat id (``TELEGRAM_CHAT_ID``) is set too; it is not a secret and is not looked for.

Covered elsewhere (not repeated here): the dashboard refuses controls without its token
(tests/test_server.py), Telegram commands only from allowed user ids and roles (tests/test_telegram.py),
the state directory's files are owner-only (tests/test_runner.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from alert_servers import TelegramApiServer, WebhookServer
from chaos_support import record_figures
from gobot.config import SECRET_ENV_VARS

GOBOT = str(Path(sys.executable).parent / "gobot")


@pytest.mark.slow
def test_a_full_replay_leaks_no_secret_anywhere(tmp_path, synthetic_data_dir):
    fakes = {name: f"FAKE{name.replace('_', '')}zq{i}x7Secret" for i, name in enumerate(SECRET_ENV_VARS)}
    with TelegramApiServer(fakes["TELEGRAM_TOKEN"]) as telegram, WebhookServer() as webhook:
        fakes["GOBOT_WEBHOOK_URL"] = webhook.url  # .../hooks/T000/B000/secretpart: the URL is the secret
        config = tmp_path / "config.toml"
        config.write_text(
            f'state_dir = "state"\n[plugins]\nenable = ["telegram", "webhook"]\n'
            f'[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n'
            f'[plugins.telegram]\napi_url = "{telegram.url}"\ncommands = false\ncharts = false\n'
            f'[plugins.webhook]\nmin_severity = "INFO"\nretry_initial = 0.05\n'
        )
        env = ({k: v for k, v in os.environ.items() if k not in SECRET_ENV_VARS} | fakes
               | {"TELEGRAM_CHAT_ID": "-1009876543210777"})
        run = subprocess.run([GOBOT, "start", "--config", str(config), "--max-iterations", "40", "-v"], env=env,
                             capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-2000:]
        report = subprocess.run([GOBOT, "report", "--config", str(config), "--html", str(tmp_path / "report.html")],
                                env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert report.returncode == 0, report.stderr[-2000:]
        sent = list(telegram.texts())
        hooks = [json.dumps(body, default=str) for body in webhook.delivered()]

    state = tmp_path / "state"
    haystacks: dict[str, str] = {"stdout": run.stdout + report.stdout, "stderr": run.stderr + report.stderr}
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file() and p != config):
        haystacks[str(path.relative_to(tmp_path))] = path.read_bytes().decode("utf-8", "replace")
    with sqlite3.connect(state / "archive.db") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"')]
    haystacks["archive rows"] = "\n".join(rows)
    haystacks["telegram messages"] = "\n".join(sent)
    haystacks["webhook bodies"] = "\n".join(hooks)
    assert rows and sent and hooks, "the run should have archived rows and sent alerts to scan"

    found = [(name, where) for name, value in fakes.items() for where, text in haystacks.items() if value in text]
    # The unique tail of each fake too: a secret cut or wrapped in a URL still counts.
    found += [(name, where) for name, value in fakes.items()
              for where, text in haystacks.items() if value[-14:] in text and (name, where) not in found]
    record_figures("secrets", places_scanned=len(haystacks), secrets=len(fakes), found=len(found))
    print(f"secrets: {len(fakes)} fake secrets, {len(haystacks)} places scanned ({len(rows)} database rows, "
          f"{len(sent)} Telegram messages, {len(hooks)} webhook bodies), found {len(found)}")
    assert found == []
    assert stat.S_IMODE(state.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE((state / "archive.db").stat().st_mode) & 0o077 == 0
