"""The kill switch halts new orders at once; `gobot kill --close-positions` also closes every open
position with CRITICAL priority — through a running bot, or by itself when none runs."""

import json

from click.testing import CliRunner

from gobot.cli import cli
from gobot_hookspecs import Action, Priority, Signal, hookimpl

ALWAYS_LONG_AND_SPY = '''
from gobot_hookspecs import Action, Signal, hookimpl

NAME = "long_spy"


@hookimpl
def gobot_generate_ideas(snapshots):
    return [Signal(symbol=s.symbol, action=Action.LONG, confidence=0.9) for s in snapshots]


@hookimpl(tryfirst=True)
def gobot_execute_order(ctx, intent):
    ctx.plugin_state(NAME).setdefault("sent", []).append(
        {"iteration": ctx.iteration, "symbol": intent.symbol, "purpose": intent.purpose,
         "priority": int(intent.priority), "reason": intent.reason})
'''


class AlwaysLong:
    @hookimpl
    def gobot_generate_ideas(self, snapshots):
        return [Signal(symbol=s.symbol, action=Action.LONG, confidence=0.9) for s in snapshots]


class Spy:
    def __init__(self, on_send=None):
        self.sent = []
        self.on_send = on_send

    @hookimpl(tryfirst=True)
    def gobot_execute_order(self, ctx, intent):
        self.sent.append((ctx.iteration, intent))
        if self.on_send:
            self.on_send(ctx, intent)


def write_config(tmp_path, data_dir, extra=""):
    """A config with the design's risk defaults, starting the replay a day and a half into its data."""
    path = tmp_path / "config.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n{extra}\n'
                    f'[plugins.replay]\ndata_dir = "{data_dir}"\nstart = 2026-01-02T12:00:00Z\n')
    return str(path)


def audit(tmp_path):
    return [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]


def test_the_kill_switch_halts_the_next_order_of_the_same_cycle(replay_bot, run_bot):
    def pull_the_plug(ctx, intent):
        ctx.config.kill_switch_path.write_text("operator pulled the plug\n")

    spy = Spy(on_send=pull_the_plug)
    bot = replay_bot(plugins=[("always_long", AlwaysLong()), ("spy", spy)], disable=["sma_rsi"])
    outcome = run_bot(bot, 5)
    assert [(i, intent.symbol) for i, intent in spy.sent] == [(1, "BTC/USDT")], (
        "ETH/USDT's order, after the switch, is never sent")
    assert "kill switch" in outcome.reason and bot.state.iteration == 1


def test_kill_close_positions_through_a_running_bot(replay_bot, run_bot, tmp_path, synthetic_data_dir):
    config = write_config(tmp_path, synthetic_data_dir)
    said = []

    class Operator:
        @hookimpl
        def gobot_on_cycle_end(self, ctx, report):
            if report.iteration == 3:
                assert ctx.positions(), "positions to close"
                result = CliRunner().invoke(cli, ["kill", "--close-positions", "--config", config, "--reason",
                                                  "operator: flatten"])
                said.append(result.output)

    spy = Spy()
    bot = replay_bot(plugins=[("always_long", AlwaysLong()), ("spy", spy), ("operator", Operator())],
                     disable=["sma_rsi"])
    outcome = run_bot(bot, 50)
    assert "A bot is running: it sends no new order from now on" in said[0]
    assert "kill switch" in outcome.reason and not bot.state.positions
    after = [(i, intent) for i, intent in spy.sent if i > 3]
    assert after and all(intent.purpose == "close" and intent.priority is Priority.CRITICAL
                         and intent.reason == "operator: flatten" for _, intent in after)
    assert {intent.symbol for _, intent in after} == {"BTC/USDT", "ETH/USDT"}
    assert bot.state.iteration == 5, "one cycle sends the closes, the next sees them filled, then the loop ends"
    assert not (tmp_path / "state" / "CLOSE_POSITIONS").exists()
    events = audit(tmp_path)
    [kill] = [e for e in events if e["event"] == "kill_switch"]
    assert kill["source"] == "gobot kill" and kill["close_positions"] is True and kill["reason"] == "operator: flatten"
    assert any(e["event"] == "close_out_complete" for e in events)
    assert "close_out_complete" in [e["alert"]["kind"] for e in events if e["event"] == "alert"]


def test_kill_close_positions_with_no_bot_running(tmp_path, synthetic_data_dir, installed_plugin):
    installed_plugin("long_spy", ALWAYS_LONG_AND_SPY)
    config = write_config(tmp_path, synthetic_data_dir, '[plugins]\nenable = ["long_spy"]\ndisable = ["sma_rsi"]')
    runner = CliRunner()
    started = runner.invoke(cli, ["start", "--config", config, "--max-iterations", "4", "--quiet"])
    assert started.exit_code == 0, started.output
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert set(state["positions"]) == {"BTC/USDT", "ETH/USDT"} and state["finished"]

    result = runner.invoke(cli, ["kill", "--close-positions", "--config", config])
    assert result.exit_code == 0, result.output
    assert ("No bot is running: closing BTC/USDT, ETH/USDT of run" in result.output
            and "(paper) with CRITICAL priority" in result.output)
    assert "Flat after 2 close-out cycles." in result.output
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["positions"] == {} and state["run_id"] == started.output.split()[1].rstrip(":")
    sent = state["plugin_state"]["long_spy"]["sent"]
    closes = [s for s in sent if s["iteration"] > 4]
    assert closes and all(s["purpose"] == "close" and s["priority"] == Priority.CRITICAL for s in closes)
    assert {s["symbol"] for s in closes} == {"BTC/USDT", "ETH/USDT"}
    assert [t["exit_reason"] for t in state["trades"][-2:]] == ["signal", "signal"]
    assert (tmp_path / "state" / "KILL").exists()
    refused = runner.invoke(cli, ["start", "--config", config, "--max-iterations", "2"])
    assert "the kill switch is on" in str(refused.exception)


def test_kill_close_positions_when_flat_says_so(tmp_path, synthetic_data_dir):
    config = write_config(tmp_path, synthetic_data_dir)
    result = CliRunner().invoke(cli, ["kill", "--close-positions", "--config", config])
    assert "No open positions: nothing to close." in result.output
    assert not (tmp_path / "state" / "CLOSE_POSITIONS").exists() and (tmp_path / "state" / "KILL").exists()


def test_a_second_bot_on_the_same_state_folder_is_refused(replay_bot, run_bot, tmp_path, synthetic_data_dir):
    from gobot.errors import StartRefused
    from gobot.run.state import StateStore

    holder = StateStore(tmp_path / "state")
    assert holder.acquire_run_lock() and holder.bot_running()
    try:
        result = CliRunner().invoke(cli, ["start", "--config", write_config(tmp_path, synthetic_data_dir),
                                          "--max-iterations", "1"])
        assert isinstance(result.exception, StartRefused) and "a bot is already running on" in str(result.exception)
        import pytest

        with pytest.raises(StartRefused, match="another gobot is running on"):
            run_bot(replay_bot(), 1)
    finally:
        holder.release_run_lock()
    assert not holder.bot_running()
