"""The drift plugin on replays (the paper executor's orders twinned with ``watch_paper``): the twin of a
paper trade is that trade to the cent, a healthy long replay raises no alarm, the paper-only breach
mode vetoes live entries and trades their twins until ``gobot risk reset``, and ``gobot drift report``
(issue 21)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gobot.cli import cli
from gobot.research.synthetic import DEMO_SYMBOLS, csv_name, generate, write_csv
from gobot.run.state import StateStore
from gobot_hookspecs import hookimpl
from gobot_plugins.drift import store

LONG_DAYS = 6


class Alerts:
    def __init__(self):
        self.alerts = []

    @hookimpl
    def gobot_send_alert(self, alert):
        self.alerts.append(alert)


def test_a_healthy_long_replay_raises_no_alarm_and_each_twin_is_its_paper_trade_to_the_cent(
        tmp_path, replay_bot, run_bot):
    data = tmp_path / "data"
    data.mkdir()
    for symbol, price in DEMO_SYMBOLS.items():
        write_csv(data / csv_name(symbol, "5m"), generate(symbol, price, LONG_DAYS * 288, seed=21))
    alerts = Alerts()
    bot = replay_bot(config={"orchestrator": {"loop_interval": 1800},
                             "plugins": {"replay": {"data_dir": str(data)},
                                         "drift": {"watch_paper": True, "on_breach": "alert"},
                                         "circuit_breaker": {"max_consecutive_losses": 1000,
                                                             "circuit_breaker_threshold": 1000,
                                                             "max_drawdown_pct": 100}}},
                     enable=["drift", "fixed_size"], disable=["adjuster", "validator", "archiver", "kelly_size"],
                     plugins=[("alerts", alerts)])  # a fixed size: Kelly stops trading a strategy without an edge
    run_bot(bot, LONG_DAYS * 48)
    state = bot.state.plugin_state["drift"]
    watched = state["cusum"]["sma_rsi@v1"]
    assert watched["trades"] >= 60, "a long replay: many trades of one strategy version against its band"
    assert [a for a in alerts.alerts if a.kind == "drift_breach"] == [] and state["breach"] is None  # 0 false alarms
    summaries = [a for a in alerts.alerts if a.kind == "daily_summary"]
    assert len(summaries) == LONG_DAYS - 1
    for summary in summaries:
        [line] = [line["text"] for line in summary.data["lines"] if line["plugin"] == "drift"]
        assert line.startswith("drift: ") and "live - paper twin +0.00 USDT" in line and line in summary.text
    rows = {row["coid"]: row for row in store.trades(bot.settings.state_path)}
    trades = bot.state.trades
    assert len(rows) == len(trades) >= 60 and all(row["mode"] == "paper" for row in rows.values())
    for trade in trades:
        if trade.client_order_id in rows:
            row = rows[trade.client_order_id]
            assert row["kind"] == "matched" and abs(row["gap"]) < 0.005 and abs(row["live_pnl"] - trade.pnl) < 1e-9


def test_a_paper_breach_vetoes_live_entries_trades_the_twin_only_and_clears_with_a_risk_reset(
        tmp_path, replay_bot, run_bot, synthetic_data_dir):
    alerts = Alerts()
    hair_trigger = {"watch_paper": True, "on_breach": "paper", "false_alarm_rate": 0.99, "allowance": 0.0,
                    "horizon_trades": 10, "min_band_trades": 5}
    bot = replay_bot(config={"plugins": {"drift": hair_trigger}}, enable=["drift"], disable=["adjuster"],
                     plugins=[("alerts", alerts)])
    run_bot(bot, 120)
    state = bot.state.plugin_state["drift"]
    assert state["breach"] and state["breach"]["action"] == "paper"
    [alert] = [a for a in alerts.alerts if a.kind == "drift_breach"]
    assert "paper twin only" in alert.text
    breach_time = state["breach"]["time"]
    after = [t for t in bot.state.trades if t.opened_at.isoformat() > breach_time]
    assert after == [], "no live entry after the breach"
    vetoes = [a for a in alerts.alerts if a.kind == "risk_veto" and "the paper twin trades it" in a.text]
    assert vetoes, "entries after the breach were vetoed by drift"
    rows = store.trades(bot.settings.state_path)
    paper_only = [r for r in rows if r["kind"] == "paper_only"]
    assert paper_only or [t for t in state["twins"].values() if t["paper_only"]], "the twin trades the vetoed entries"
    assert all(r["live_pnl"] is None and r["twin_pnl"] is not None for r in paper_only)
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "{bot.settings.state_path}"\n[plugins]\nenable = ["drift"]\n'
                      f'disable = ["adjuster"]\n[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n'
                      '[plugins.drift]\non_breach = "paper"\n', encoding="utf-8")
    reset = CliRunner().invoke(cli, ["risk", "reset", "--reason", "reviewed the drift", "--config", str(config)])
    assert reset.exit_code == 0, reset.output
    assert "drift: breach cleared; CUSUM and the rolling gate window back to zero" in reset.output
    assert StateStore(bot.settings.state_path).load().plugin_state["drift"]["breach"] is None
    events = [e["kind"] for e in store.events(bot.settings.state_path)]
    assert events == ["breach", "reset"]


def test_drift_report_per_day_symbol_and_all_in_quote_and_r(tmp_path, replay_bot, run_bot, monkeypatch):
    bot = replay_bot(config={"plugins": {"drift": {"watch_paper": True}}}, enable=["drift"], disable=["adjuster"])
    run_bot(bot, 100)
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "{bot.settings.state_path}"\n[plugins]\nenable = ["drift"]\n', encoding="utf-8")
    monkeypatch.setenv("GOBOT_CONFIG", str(config))
    runner = CliRunner()
    for by in ("day", "symbol", "all"):
        result = runner.invoke(cli, ["drift", "report", "--config", str(config), "--by", by, "--json"])
        assert result.exit_code == 0, result.output
        lines = json.loads(result.output)["lines"]
        assert sum(line["trades"] for line in lines) == len(store.trades(bot.settings.state_path)) > 0
        assert abs(lines[-1]["cumulative"]) < 0.01 and all(line["gap_r"] is not None for line in lines)
    table = runner.invoke(cli, ["drift", "report", "--config", str(config)])
    assert table.exit_code == 0 and "Live - paper twin, in USDT" in table.output and "entry_slippage" in table.output
