"""The custom risk plugin example (examples/gobot-risk-max-spread), pip-installed by `make test` like
a user's plugin: found through its entry point, enabled by config, vetoing through the real plugin
manager with its reason, next to the built-in protections; and its own tests pass."""

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gobot.cli import cli

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gobot-risk-max-spread"


@pytest.fixture(autouse=True)
def installed():
    names = {ep.name: ep for ep in importlib.metadata.entry_points(group="gobot")}
    if "max_spread" not in names:
        message = f"the example is not installed: pip install --no-deps -e {EXAMPLE} (`make test` does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert names["max_spread"].dist.metadata["Name"] == "gobot-risk-max-spread"


def test_enabled_by_config_it_vetoes_with_its_reason(replay_bot, run_bot, tmp_path):
    bot = replay_bot(config={"plugins": {"enable": ["max_spread"], "max_spread": {"max_spread_pct": 0.05}}})
    assert bot.plugin_set.plugins["max_spread"].status == "enabled"
    assert bot.plugin_set.plugins["max_spread"].distribution == "gobot-risk-max-spread"
    run_bot(bot, 20)
    assert not bot.state.trades and not bot.state.positions  # the replay has no quotes: it fails closed
    reasons = [v["reasons"] for v in bot.state.vetoes]
    assert reasons and all("max_spread: no bid/ask quote for" in r for r in reasons)
    alerts = [json.loads(line)["alert"] for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()
              if '"event": "alert"' in line]
    assert any(a["kind"] == "risk_veto" and "max_spread: no bid/ask quote" in a["text"] for a in alerts)


def test_it_sits_beside_the_builtin_protections(tmp_path, synthetic_data_dir):
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "state"\n[plugins]\nenable = ["max_spread"]\n'
                      '[plugins.max_spread]\nmax_spread_pct = 0.2\n[plugins.replay]\ndata_dir = '
                      f'"{synthetic_data_dir}"\n')
    runner = CliRunner()
    check = runner.invoke(cli, ["config", "check", "--config", str(config)])
    assert check.exit_code == 0 and "max_spread" in check.output
    rows = {row["name"]: row for row in json.loads(runner.invoke(cli,
                                                                 ["plugins", "--json", "-p", "max_spread"]).output)}
    assert rows["max_spread"]["status"] == "enabled" and "gobot_risk_check" in rows["max_spread"]["hooks"]
    status = json.loads(runner.invoke(cli, ["risk", "status", "--config", str(config), "--json"]).output)
    assert {p["plugin"] for p in status["plugins"]} == {"circuit_breaker", "risk_limits", "max_spread"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[plugins]\nenable = ["max_spread"]\n[plugins.max_spread]\nmax_sprad_pct = 1\n')
    assert "did you mean 'max_spread_pct'?" in runner.invoke(cli, ["config", "check", "--config", str(bad)]).stderr


@pytest.mark.slow
def test_the_example_passes_its_own_tests():
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                          cwd=EXAMPLE, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout
