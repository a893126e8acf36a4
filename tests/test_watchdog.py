"""`gobot watchdog` as real processes: a bot killed with SIGKILL is reported through Telegram within the
watchdog's interval; `--once` answers with its exit status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from alert_servers import TelegramApiServer
from gobot.cli import cli

GOBOT = str(Path(sys.executable).parent / "gobot")
TOKEN = "555000555:AAWatchdogTestToken-0123456789abcdef"
STALE_AFTER, CHECK_INTERVAL = 1.5, 0.25


def write_config(folder: Path, api_url: str) -> Path:
    config = folder / "config.toml"
    config.write_text(f"""
state_dir = "state"
[orchestrator]
loop_interval = 1
max_iterations = 0
[watchdog]
heartbeat_interval = 0.2
stale_after = {STALE_AFTER}
check_interval = {CHECK_INTERVAL}
[plugins]
enable = ["telegram"]
disable = ["replay", "archiver"]
[plugins.console]
cycle_lines = false
[plugins.telegram]
api_url = "{api_url}"
poll_timeout = 1
timeout = 2
retry_initial = 0.1
retry_max = 0.5
""")
    return config


@pytest.mark.slow
def test_the_watchdog_alerts_within_its_interval_after_the_bot_is_killed(tmp_path):
    env = {**os.environ, "TELEGRAM_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "-100777"}
    with TelegramApiServer(TOKEN) as server:
        config = write_config(tmp_path, server.url)
        bot = subprocess.Popen([GOBOT, "start", "--config", str(config)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        watchdog = None
        try:
            server.wait_for(lambda: any("started" in t for t in server.texts()), timeout=30,
                            what="the bot's run_started")
            watchdog = subprocess.Popen([GOBOT, "watchdog", "--config", str(config)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            assert "watching" in watchdog.stderr.readline()
            assert "fresh" in watchdog.stderr.readline(), "the watchdog sees the running bot's heartbeat"
            bot.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            bot.wait(timeout=10)
            text = server.wait_for(lambda: next((t for t in server.texts() if "gobot is silent" in t), None),
                                   timeout=15, what="the watchdog's alert")
            delay = time.monotonic() - killed
            assert delay <= STALE_AFTER + 2 * CHECK_INTERVAL + 1.0, f"alerted {delay:.2f} s after the kill"
            assert "not running on this host" in text and "watchdog_stale" in text
            assert not any("gobot stopped" in t for t in server.texts()), (
                "SIGKILL: the bot could not say goodbye itself")
            watchdog.send_signal(signal.SIGTERM)
            assert watchdog.wait(timeout=15) == 0, watchdog.stderr.read()
        finally:
            for process in (bot, watchdog):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()


def test_watchdog_once_exits_0_when_fresh_and_1_when_stale(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('state_dir = "state"\n[watchdog]\nheartbeat_interval = 1\nstale_after = 5\n')
    state = tmp_path / "state"
    state.mkdir()
    now = datetime.now(timezone.utc)
    (state / "heartbeat.json").write_text(json.dumps({"time": now.isoformat(), "pid": os.getpid(), "run_id": "r1",
                                                      "iteration": 3}))
    fresh = CliRunner().invoke(cli, ["watchdog", "--config", str(config), "--once"])
    assert fresh.exit_code == 0, fresh.output
    (state / "heartbeat.json").write_text(json.dumps({"time": (now - timedelta(seconds=60)).isoformat(),
                                                      "pid": os.getpid(), "run_id": "r1", "iteration": 3}))
    stale = CliRunner().invoke(cli, ["watchdog", "--config", str(config), "--once"])
    assert stale.exit_code == 1 and "gobot is silent: no heartbeat for 60 s" in stale.output
