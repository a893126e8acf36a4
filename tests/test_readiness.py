"""`gobot validate`: the go-live readiness report from the audit log and the trade history, and the
gate in `gobot start --live` (refused while it fails, unless --skip-validation, which is audited)."""

import json
from datetime import datetime, timedelta, timezone

from click.testing import CliRunner

from gobot.cli import cli
from gobot.errors import StartRefused
from gobot.ops.readiness import REQUIRED_ALERT_KINDS, readiness_report
from gobot.run.audit import AuditLog
from gobot.run.state import BotState, StateStore
from gobot_hookspecs import Action, Trade, hookimpl
from gobot_plugins.paper import Paper

EXCHANGE = '''
from gobot_hookspecs import hookimpl
from gobot_plugins.paper import Paper


class Exchange(Paper):
    """The paper executor standing in for an exchange (tests only): fills at the next candle's open."""

    @hookimpl
    def gobot_environment(self, ctx):
        return "testnet" if ctx.plugin_config("exchange").testnet else "live"

    @hookimpl
    def gobot_config_model(self):
        from pydantic import BaseModel

        class ExchangeConfig(BaseModel):
            testnet: bool = False
            fee_percent: float = 0.1
            slippage_percent: float = 0.05

        return ExchangeConfig
'''


class TestnetExchange(Paper):
    """The paper executor standing in for an exchange's test network."""

    @hookimpl
    def gobot_environment(self):
        return "testnet"


def test_a_testnet_run_builds_the_evidence_line_by_line(replay_bot, run_bot, tmp_path):
    class Drills:
        @hookimpl
        def gobot_on_cycle_end(self, ctx, report):
            if report.iteration == 20:
                ctx.kill("drill: kill switch")

    config = {"orchestrator": {"loop_interval": 3600}}
    first = replay_bot(config=config, live=True, plugins=[("exchange", TestnetExchange()), ("drills", Drills())])
    assert first.environment == "testnet" and "paper" not in first.plugin_set.enabled
    assert "kill switch" in run_bot(first, 100).reason
    first.settings.kill_switch_path.unlink()  # `gobot resume`
    again = replay_bot(config=config, live=True, plugins=[("exchange", TestnetExchange())])
    run_bot(again, 40)

    report = readiness_report(tmp_path / "state")
    lines = {line.name: line for line in report.lines}
    assert not report.passed
    assert not lines["days run on testnet"].passed and lines["days run on testnet"].evidence.startswith(
        "3 days with completed cycles (2026-01-01 .. 2026-01-03); 1 testnet run(s) in")
    trades = len(again.state.trades)
    assert lines["trades on testnet"].evidence == f"{trades} closed trades" and not lines["trades on testnet"].passed
    assert lines["kill switch exercised"].passed
    assert lines["a restart recovered"].passed and lines["a restart recovered"].evidence.startswith(
        f"run {again.state.run_id} resumed after cycle 20 and completed cycle 21")
    assert lines["audit log complete"].passed, lines["audit log complete"].evidence
    assert "never delivered: " in lines["every alert kind delivered"].evidence


def write_passing_evidence(state_dir, days=8, trades=110, wins=70):
    """An audit log and trade history that pass every line (the shapes the core writes)."""
    log = AuditLog(state_dir / "audit.jsonl")
    run = "r-testnet"
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    log.write("run_started", sim_time=t0, run_id=run, iteration=1, mode="testnet", resumed_from=None)
    cycles = days * 24
    for i in range(1, cycles + 1):
        when = t0 + timedelta(hours=i)
        if i == cycles // 2:
            log.write("kill_switch", sim_time=when, run_id=run, iteration=i, reason="drill")
            log.write("run_started", sim_time=when, run_id=run, iteration=i, mode="testnet", resumed_from=i - 1)
        log.write("cycle_completed", sim_time=when, run_id=run, iteration=i)
    log.write("risk_verdicts", sim_time=t0, run_id=run, iteration=1, intent={"id": "1-BTC/USDT-open"}, verdicts=[])
    log.write("order", sim_time=t0, run_id=run, iteration=1, order={"purpose": "open"}, intent_id="1-BTC/USDT-open")
    closed = []
    for n in range(trades):
        opened = t0 + timedelta(hours=n)
        trade = Trade(symbol="BTC/USDT", direction=Action.LONG, amount=0.001, entry_price=100, exit_price=101,
                      opened_at=opened, closed_at=opened + timedelta(minutes=30), fees=0.0,
                      pnl=1.0 if n < wins else -1.0, exit_reason="take_profit")
        closed.append(trade)
        log.write("trade_closed", sim_time=opened, run_id=run, iteration=n + 1, trade=trade)
    for kind in REQUIRED_ALERT_KINDS:
        log.write("alert", sim_time=t0, run_id=run, iteration=1, alert={"kind": kind, "title": kind})
    log.close()
    store = StateStore(state_dir)
    store.save(BotState(run_id=run, cash=1000, initial_capital=1000, trades=closed, finished=True, iteration=cycles))


def test_every_line_passes_on_complete_evidence(tmp_path):
    write_passing_evidence(tmp_path)
    report = readiness_report(tmp_path)
    assert report.passed, [(line.name, line.evidence) for line in report.failing]
    evidence = {line.name: line.evidence for line in report.lines}
    assert evidence["win rate"] == "63.6% (70 of 110 trades won)"
    assert evidence["audit log complete"] == ("192 cycles, every opening order with its risk verdicts, "
                                              "trade history agrees")


def test_a_gap_or_a_disagreement_fails_the_audit_line(tmp_path):
    write_passing_evidence(tmp_path)
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    kept = [line for line in lines if not ('"cycle_completed"' in line and '"iteration": 7,' in line)]
    (tmp_path / "audit.jsonl").write_text("\n".join(kept) + "\n")
    line = {line.name: line for line in readiness_report(tmp_path).lines}["audit log complete"]
    assert not line.passed and line.evidence == "run r-testnet: cycles [7] missing"


def test_an_undelivered_alert_kind_fails(tmp_path):
    write_passing_evidence(tmp_path)
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write("alert_undelivered", sim_time=None, run_id="r-testnet", iteration=1, kind="risk_veto", title="x",
              failed=["telegram"])
    log.close()
    line = {line.name: line for line in readiness_report(tmp_path).lines}["every alert kind delivered"]
    assert not line.passed and line.evidence.endswith("never delivered: risk_veto")


def test_validate_prints_each_line_and_exits_1_until_ready(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["validate"])
    assert result.exit_code == 1 and "Not ready: 7 of 7 checks fail" in " ".join(result.output.split())
    write_passing_evidence(tmp_path / "gobot_state")
    result = runner.invoke(cli, ["validate", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["ready"] is True


# -- the gate in `gobot start --live` ---------------------------------------------------------------


def live_config(tmp_path, synthetic_data_dir, installed_plugin, monkeypatch, testnet=False):
    installed_plugin("exchange", EXCHANGE, attr="Exchange")
    monkeypatch.setenv("BINANCE_API_KEY", "test-key-0000")
    monkeypatch.setenv("BINANCE_API_SECRET", "test-secret-0000")
    path = tmp_path / "config.toml"
    path.write_text(f'state_dir = "state"\n[plugins]\nenable = ["exchange"]\n'
                    f'[plugins.exchange]\ntestnet = {"true" if testnet else "false"}\n'
                    f'[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n')
    return str(path)


def test_start_live_refuses_while_the_report_fails(tmp_path, synthetic_data_dir, installed_plugin, monkeypatch):
    config = live_config(tmp_path, synthetic_data_dir, installed_plugin, monkeypatch)
    result = CliRunner().invoke(cli, ["start", "--config", config, "--live", "--max-iterations", "1"])
    assert isinstance(result.exception, StartRefused)
    assert str(result.exception).startswith("--live: the go-live readiness report fails 7 of 7 checks "
                                            "(run `gobot validate` for the evidence, or pass --skip-validation): "
                                            "days run on testnet: 0 days")


def test_skip_validation_is_audited_and_alerted(tmp_path, synthetic_data_dir, installed_plugin, monkeypatch):
    config = live_config(tmp_path, synthetic_data_dir, installed_plugin, monkeypatch)
    result = CliRunner().invoke(cli, ["start", "--config", config, "--live", "--skip-validation", "--max-iterations",
                                      "1", "--quiet"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    [skipped] = [e for e in events if e["event"] == "validation_skipped"]
    assert len(skipped["failing"]) == 7
    [alert] = [e["alert"] for e in events if e["event"] == "alert" and e["alert"]["kind"] == "validation_skipped"]
    assert (alert["severity"] == "CRITICAL"
            and alert["title"] == "LIVE without a passing readiness report (--skip-validation)")
    assert [e["mode"] for e in events if e["event"] == "run_started"] == ["live"]


def test_a_testnet_run_is_not_gated(tmp_path, synthetic_data_dir, installed_plugin, monkeypatch):
    config = live_config(tmp_path, synthetic_data_dir, installed_plugin, monkeypatch, testnet=True)
    result = CliRunner().invoke(cli, ["start", "--config", config, "--live", "--max-iterations", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    assert [e["mode"] for e in events if e["event"] == "run_started"] == ["testnet"]


def test_start_live_runs_once_the_report_passes(tmp_path, synthetic_data_dir, installed_plugin, monkeypatch):
    config = live_config(tmp_path, synthetic_data_dir, installed_plugin, monkeypatch)
    write_passing_evidence(tmp_path / "state")
    result = CliRunner().invoke(cli, ["start", "--config", config, "--live", "--max-iterations", "1", "--quiet"])
    assert result.exit_code == 0, result.output


def test_start_live_needs_risk_limits_or_circuit_breaker(tmp_path, synthetic_data_dir, installed_plugin, monkeypatch):
    config = live_config(tmp_path, synthetic_data_dir, installed_plugin, monkeypatch)
    installed_plugin("my_risk", "from gobot_hookspecs import RiskVerdict, hookimpl\n\n@hookimpl\n"
                                "def gobot_risk_check():\n    return RiskVerdict(approved=True)\n")
    args = ["start", "--config", config, "--live", "-p", "my_risk", "--disable", "risk_limits", "--max-iterations", "1"]
    alone = CliRunner().invoke(cli, [*args, "--disable", "circuit_breaker"])
    assert str(alone.exception) == ("--live needs risk_limits or circuit_breaker enabled: a replacement may take "
                                    "the place of one of them, never of both")
    either = CliRunner().invoke(cli, args)  # the breaker alone is enough to pass this check (the gate comes next)
    assert "readiness report fails" in str(either.exception)
