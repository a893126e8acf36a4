"""The bot's circuit breaker is whoever answers ``gobot_status`` with ``breaker=True``: the core reads no
plugin's private state, so a replacement under another name is shown everywhere the built-in is."""

from __future__ import annotations

import ast
import asyncio
import json
from importlib.metadata import entry_points
from pathlib import Path

from click.testing import CliRunner

from gobot.cli import cli
from gobot.ops.status import health
from gobot.run.counters import CoreCounters
from gobot.run.plugin_statuses import plugin_statuses

GOBOT = Path(__file__).resolve().parents[1] / "gobot"

STAND_IN = """
from gobot_hookspecs import PluginStatus, hookimpl


class StandIn:
    '''A breaker of its own make: trips after the second cycle, keeps its state in its own slot.'''

    @hookimpl
    def gobot_report(self, ctx):
        ctx.plugin_state("stand_in")["tripped"] = ctx.iteration >= 2

    @hookimpl
    def gobot_status(self, ctx):
        tripped = ctx.plugin_state("stand_in").get("tripped", False)
        return PluginStatus(breaker=True, state="TRIPPED" if tripped else "ARMED", healthy=not tripped,
                            reason="tripped" if tripped else "armed")
"""


def test_a_replacement_breaker_is_the_bots_breaker_in_progress_health_and_risk_status(tmp_path, synthetic_data_dir,
                                                                                      installed_plugin):
    installed_plugin("stand_in", STAND_IN, attr="StandIn")
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n[plugins]\nenable = ["stand_in"]\n'
                      f'disable = ["circuit_breaker"]\n[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n')
    runner = CliRunner()
    progress = tmp_path / "state" / "progress.json"
    started = runner.invoke(cli, ["start", "--config", str(config), "--max-iterations", "1", "--quiet"])
    assert started.exit_code == 0, started.output
    assert json.loads(progress.read_text())["breaker"] == "ARMED"
    started = runner.invoke(cli, ["start", "--config", str(config), "--max-iterations", "2", "--quiet"])  # a new run
    assert started.exit_code == 0, started.output
    assert json.loads(progress.read_text())["breaker"] == "TRIPPED"
    status = runner.invoke(cli, ["risk", "status", "--config", str(config), "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["breaker"] == "TRIPPED"


def test_health_follows_the_breakers_answer_and_without_one_says_not_installed(replay_bot, run_bot):
    from gobot_hookspecs import PluginStatus, hookimpl

    class Open:
        @hookimpl
        def gobot_status(self):
            return PluginStatus(breaker=True, state="OPEN", healthy=False, reason="three losses")

    bot = replay_bot(plugins=[("open", Open())], disable=["circuit_breaker"])
    run_bot(bot, 1)
    doc = health(bot, CoreCounters(), asyncio.run(plugin_statuses(bot)), stall_seconds=3600)
    assert doc["breaker"] == "OPEN" and doc["problems"] == ["circuit_breaker: circuit breaker OPEN: no new positions"]
    bare = replay_bot(disable=["circuit_breaker"], state_dir=bot.settings.state_path.parent / "bare")
    run_bot(bare, 1)
    doc = health(bare, CoreCounters(), asyncio.run(plugin_statuses(bare)), stall_seconds=3600)
    assert doc["breaker"] == "not installed" and doc["checks"]["circuit_breaker"]["ok"] is True
    assert json.loads(bare.store.progress_file.read_text())["breaker"] == "not installed"


def test_the_core_reads_no_plugins_state_by_name():
    plugins = {ep.name for ep in entry_points(group="gobot")}
    read = []
    for path in sorted(GOBOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            key = None
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "plugin_state" and isinstance(node.slice, ast.Constant):
                key = node.slice.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                    and isinstance(node.args[0], ast.Constant) and (
                        node.func.attr == "plugin_state" or (isinstance(node.func.value, ast.Attribute)
                                                             and node.func.value.attr == "plugin_state")):
                key = node.args[0].value
            if key in plugins:
                read.append(f"{path.relative_to(GOBOT.parent)}:{node.lineno}: plugin_state[{key!r}]")
    assert read == []
