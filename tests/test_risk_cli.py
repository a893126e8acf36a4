"""`gobot risk status` and `gobot risk reset`: any risk plugin's state, read from the persisted state;
resets applied offline or by the running bot at its next cycle, always audited."""

import json

from click.testing import CliRunner

from gobot.cli import cli
from gobot_hookspecs import hookimpl
from risk_helpers import DESIGN_BREAKER, notify, trade


def config_file(tmp_path, data_dir):
    path = tmp_path / "config.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n[plugins.replay]\ndata_dir = "{data_dir}"\n'
                    "[plugins.risk_limits]\nvolatility_multiplier = 0\nmax_correlation = 1\n")
    return str(path)


def hard_stopped(replay_bot):
    bot = replay_bot(config={"plugins": {"circuit_breaker": DESIGN_BREAKER,
                                         "risk_limits": {"volatility_multiplier": 0}}})
    for _ in range(5):
        notify(bot, "gobot_on_trade_closed", trade=trade(pnl=-1.0, closed_at=bot.clock.now()))
    bot.persist()
    return bot


def status(config, *args):
    result = CliRunner().invoke(cli, ["risk", "status", "--config", config, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_status_with_no_run_yet(tmp_path, synthetic_data_dir):
    data = json.loads(status(config_file(tmp_path, synthetic_data_dir), "--json"))
    assert data["run"] is None and data["trading_allowed"] is True and data["breaker"] == "CLOSED"
    assert {p["plugin"] for p in data["plugins"]} == {"circuit_breaker", "risk_limits"}


def test_status_shows_the_breaker_every_counter_and_why_not(tmp_path, synthetic_data_dir, replay_bot):
    config = config_file(tmp_path, synthetic_data_dir)
    bot = hard_stopped(replay_bot)
    data = json.loads(status(config, "--json"))
    assert data["run"] == bot.state.run_id and data["breaker"] == "HARD_STOP" and data["trading_allowed"] is False
    assert data["why"] == ["circuit_breaker: breaker HARD_STOP since 01-01 16:40 UTC (hard stop: 5 consecutive losing "
                           "trades (last: BTC/USDT -1.00 USDT), max_consecutive_losses 5): run `gobot risk reset` to "
                           "trade again"]
    plugins = {p["plugin"]: p for p in data["plugins"]}
    streak = next(c for c in plugins["circuit_breaker"]["counters"] if c["name"] == "consecutive losing trades")
    assert (streak["value"], streak["limit"], streak["blocking"]) == (5, 3, True)
    names = [c["name"] for c in plugins["risk_limits"]["counters"]]
    assert names[:5] == ["exposure (positions + pending)", "positions opened today (2026-01-01 UTC)",
                         "loss today (2026-01-01)", "loss this week (2026-W01)", "low-liquidity hours (UTC)"]
    human = " ".join(status(config).split())
    assert "Circuit breaker: HARD_STOP" in human and "No new positions now: circuit_breaker: breaker HARD_STOP" in human
    assert "consecutive losing trades 5 trades 3 trades hard stop at 5" in human


def test_kill_switch_and_pause_are_reasons_too(tmp_path, synthetic_data_dir):
    config = config_file(tmp_path, synthetic_data_dir)
    CliRunner().invoke(cli, ["pause", "--config", config])
    data = json.loads(status(config, "--json"))
    assert data["trading_allowed"] is False and data["why"][0] == "paused (`gobot unpause`)"


def test_reset_with_no_bot_running_is_applied_to_the_state_and_audited(tmp_path, synthetic_data_dir, replay_bot):
    config = config_file(tmp_path, synthetic_data_dir)
    hard_stopped(replay_bot)
    result = CliRunner().invoke(cli, ["risk", "reset", "--config", config, "--reason", "reviewed the five losses"])
    assert result.exit_code == 0, result.output
    assert "circuit_breaker: HARD_STOP -> CLOSED; losing streak 5 -> 0" in result.output
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["plugin_state"]["circuit_breaker"]["state"] == "CLOSED"
    events = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    [reset] = [e for e in events if e["event"] == "risk_reset"]
    assert reset["reason"] == "reviewed the five losses" and "circuit_breaker" in reset["reset"]
    assert "risk_reset" in [e["alert"]["kind"] for e in events if e["event"] == "alert"]
    assert json.loads(status(config, "--json"))["trading_allowed"] is True


def test_reset_needs_a_reason(tmp_path, synthetic_data_dir):
    result = CliRunner().invoke(cli, ["risk", "reset", "--config", config_file(tmp_path, synthetic_data_dir)])
    assert result.exit_code == 2 and "--reason" in result.output


def test_reset_through_a_running_bot_at_its_next_cycle(tmp_path, synthetic_data_dir, replay_bot, run_bot):
    config = config_file(tmp_path, synthetic_data_dir)
    said, seen = [], []

    class Operator:
        @hookimpl
        def gobot_on_cycle_end(self, ctx, report):
            seen.append(ctx.plugin_state("circuit_breaker")["state"])
            if report.iteration == 2:
                result = CliRunner().invoke(cli, ["risk", "reset", "--config", config, "--reason", "operator says go"])
                said.append(result.output)

    bot = hard_stopped(replay_bot)
    bot.plugin_set.pm.register(Operator(), name="operator")
    run_bot(bot, 4)
    assert said == ["A bot is running: it resets its risk state at the start of its next cycle (see its alerts).\n"]
    assert seen == ["HARD_STOP", "HARD_STOP", "CLOSED", "CLOSED"]
    assert not (tmp_path / "state" / "RISK_RESET").exists()
    events = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    [reset] = [e for e in events if e["event"] == "risk_reset"]
    assert (reset["iteration"], reset["source"], reset["reason"]) == (3, "request file", "operator says go")
