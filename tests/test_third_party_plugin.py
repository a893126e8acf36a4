"""A third-party signal plugin as a user meets it: built, pip-installed into a fresh virtual
environment beside gobot, listed, used by a replay with nothing but ``enable``, uninstalled cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "gobot-signal-bollinger"

pytestmark = pytest.mark.slow


def plugin_rows(venv, cwd) -> dict[str, dict]:
    done = venv.gobot("plugins", "--json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return {row["name"]: row for row in json.loads(done.stdout)}


@pytest.fixture
def bot_folder(tmp_path):
    """A folder as a user has it: a config that only enables the plugin, no data (the bundled market is replayed)."""
    folder = tmp_path / "bot"
    folder.mkdir()
    (folder / "config.toml").write_text('[plugins]\nenable = ["bollinger"]\n', encoding="utf-8")
    return folder


def test_the_example_plugin_installs_trades_in_a_replay_and_uninstalls_cleanly(plugin_venv, bot_folder, tmp_path):
    before = plugin_rows(plugin_venv, tmp_path)
    assert "bollinger" not in before

    plugin_venv.build_and_install(EXAMPLE, tmp_path)
    row = plugin_rows(plugin_venv, tmp_path)["bollinger"]
    assert (row["distribution"], row["version"], row["status"]) == ("gobot-signal-bollinger", "0.1.0", "disabled")
    assert "not enabled" in row["reason"]
    assert plugin_rows(plugin_venv, bot_folder)["bollinger"]["status"] == "enabled"

    # `gobot start` with the defaults: replay of the bundled data, paper fills, 50 cycles.
    done = plugin_venv.gobot("start", "--quiet", cwd=bot_folder)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "bollinger" in done.stdout.splitlines()[0]  # "Run ...: paper mode, plugins: ..., bollinger, ..."
    audit = [json.loads(line) for line in (bot_folder / "gobot_state" / "audit.jsonl").read_text().splitlines()]
    signals = [e["signal"] for e in audit if e["event"] == "signal" and e["signal"]["source"] == "bollinger"]
    assert len(signals) == 50 * 2  # an idea per symbol in every cycle, recorded with its source
    assert {s["strategy"] for s in signals} == {"bollinger"} and any(s["action"] != "HOLD" for s in signals)
    # Its LONG/SHORT ideas became orders the risk plugins judged (and, where they approved, trades):
    judged = [e for e in audit if e["event"] == "risk_verdicts"
              and (e["intent"]["signal"] or {}).get("source") == "bollinger"]
    assert judged, "no idea of the plugin reached the risk checks"

    plugin_venv.pip("uninstall", "-y", "gobot-signal-bollinger", cwd=tmp_path)
    assert plugin_rows(plugin_venv, tmp_path) == before
    left = [p.name for p in plugin_venv.site_packages.iterdir() if "bollinger" in p.name]
    assert left == [], f"uninstall left {left} behind"
    enabled_but_gone = plugin_venv.gobot("start", "--quiet", cwd=bot_folder)
    assert enabled_but_gone.returncode == 2
    assert "plugin 'bollinger': enabled but not installed" in enabled_but_gone.stderr


def test_the_example_plugin_passes_its_own_tests_when_installed(plugin_venv, tmp_path):
    plugin_venv.build_and_install(EXAMPLE, tmp_path)
    try:
        done = plugin_venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests"), cwd=tmp_path)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        assert "5 passed" in done.stdout
    finally:
        plugin_venv.pip("uninstall", "-y", "gobot-signal-bollinger", cwd=tmp_path)
