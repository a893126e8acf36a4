"""The core's side of alerts: one list of kinds, redaction before any channel, the daily summary,
confirm-first, a crash that is not silent, `gobot alerts test`, and the watchdog's decisions."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot.config import WatchdogConfig
from gobot.ops.watchdog import Watchdog
from gobot.run.alerting import sample_alerts
from gobot_hookspecs import ALERT_KINDS, Action, Alert, RiskVerdict, Severity, Signal, hookimpl

ROOT = Path(__file__).resolve().parent.parent
RAISED = re.compile(r"\bAlert\((?:[^()]|\([^()]*\))*?\bkind=\"(\w+)\"", re.DOTALL)


class Recorder:
    """An alert channel that keeps what it gets."""

    def __init__(self):
        self.alerts: list[Alert] = []

    @hookimpl
    def gobot_send_alert(self, alert):
        self.alerts.append(alert)

    def kinds(self) -> list[str]:
        return [a.kind for a in self.alerts]


def test_every_alert_kind_is_described_in_one_place():
    for kind, info in ALERT_KINDS.items():
        assert re.fullmatch(r"[a-z_]+", kind) and info.severity in Severity and info.raised_by and info.description


def test_every_alert_the_core_raises_is_a_listed_kind():
    raised = {}
    for path in ROOT.joinpath("gobot").rglob("*.py"):
        for kind in RAISED.findall(path.read_text(encoding="utf-8")):
            raised.setdefault(kind, str(path.relative_to(ROOT)))
    unlisted = {kind: path for kind, path in raised.items() if kind not in ALERT_KINDS}
    assert not unlisted, f"add these kinds to gobot_hookspecs.ALERT_KINDS (models.py): {unlisted}"
    assert {"run_started", "trade_closed", "daily_summary", "watchdog_stale"} <= set(raised)


def test_the_kinds_every_channel_should_carry_are_listed():
    named = {"trade_opened", "trade_closed", "risk_veto", "circuit_breaker", "kill_switch", "execution_error",
             "exchange_ban", "rate_limited", "run_started", "run_stopped", "run_completed", "daily_summary",
             "watchdog_stale"}
    assert named <= set(ALERT_KINDS)


def test_the_samples_cover_every_kind_once():
    assert sorted(a.kind for a in sample_alerts()) == sorted(ALERT_KINDS)


def test_secrets_are_masked_before_any_channel_sees_an_alert(replay_bot, run_bot, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-very-secret-123")

    class Leaky:
        @hookimpl
        def gobot_on_cycle_end(self, ctx, report):
            ctx.alert(Alert(kind="execution_error", title="failed with sk-test-very-secret-123",
                            text="key sk-test-very-secret-123", data={"key": "sk-test-very-secret-123"}))

    recorder = Recorder()
    run_bot(replay_bot(plugins=[("leaky", Leaky()), ("recorder", recorder)]), 1)
    leaked = [a for a in recorder.alerts if a.kind == "execution_error"]
    assert leaked and all("sk-test" not in a.model_dump_json() and "***" in a.title for a in leaked)


def test_a_daily_summary_follows_each_day_with_its_equity_curve(replay_bot, run_bot):
    recorder = Recorder()
    bot = replay_bot(config={"orchestrator": {"loop_interval": 3600, "daily_profit_target": 1000,
                                              "max_daily_loss": 1000}},
                     plugins=[("recorder", recorder)])
    run_bot(bot, 40)
    days = sorted({row.time.date() for row in bot.state.cycles})
    summaries = [a for a in recorder.alerts if a.kind == "daily_summary"]
    assert [s.data["day"] for s in summaries] == [d.isoformat() for d in days[:-1]], "one per completed day"
    first = summaries[0]
    rows = [row for row in bot.state.cycles if row.time.date() == days[0]]
    assert [point[1] for point in first.data["equity_curve"]] == [round(r.equity, 4) for r in rows]
    closed = [t for t in bot.state.trades if t.closed_at.date() == days[0]]
    assert first.data["trades"] == len(closed) and f"{len(closed)} trades closed" in first.text


class Confirmer:
    """Confirms BTC, rejects ETH: a stand-in for a human (gobot_confirm_order)."""

    def __init__(self):
        self.asked = []

    @hookimpl
    async def gobot_confirm_order(self, intent):
        self.asked.append(intent.symbol)
        await asyncio.sleep(0)  # an answer that arrives later, as a human's would
        return intent.symbol == "BTC/USDT"


class ApproveAll:
    @hookimpl
    def gobot_risk_check(self, intent):
        return RiskVerdict(approved=True, reason="test: approve all")


ONLY_TEST_RISK = ["sma_rsi", "risk_limits", "circuit_breaker", "kelly_size", "archiver"]


class LongBoth:
    @hookimpl
    def gobot_generate_ideas(self, snapshots):
        return [Signal(symbol=s.symbol, action=Action.LONG, confidence=0.9) for s in snapshots]


def test_confirm_first_sends_confirmed_orders_and_proposes_the_rest(replay_bot, run_bot):
    confirmer = Confirmer()
    bot = replay_bot(config={"trading": {"auto_execute": False}},
                     plugins=[("ideas", LongBoth()), ("confirmer", confirmer), ("approve", ApproveAll())],
                     disable=ONLY_TEST_RISK)
    run_bot(bot, 3)
    assert confirmer.asked[:2] == ["BTC/USDT", "ETH/USDT"]
    assert set(bot.state.positions) == {"BTC/USDT"}
    events = [json.loads(line) for line in bot.audit_log.path.read_text().splitlines()]
    assert any(e["event"] == "order_confirmed" and e["plugin"] == "confirmer" for e in events)
    assert any(e["event"] == "order_proposed" and e["order"]["symbol"] == "ETH/USDT" and e["confirmed"] is False
               for e in events)


def test_without_a_confirmer_orders_are_only_proposed_as_before(replay_bot, run_bot):
    bot = replay_bot(config={"trading": {"auto_execute": False}},
                     plugins=[("ideas", LongBoth()), ("approve", ApproveAll())], disable=ONLY_TEST_RISK)
    run_bot(bot, 3)
    assert not bot.state.positions and not bot.state.open_orders


def test_a_kill_switch_engaged_while_waiting_for_confirmation_stops_the_order(replay_bot, run_bot):
    class KillWhileAsking:
        @hookimpl
        async def gobot_confirm_order(self, ctx, intent):
            ctx.kill("operator pressed /kill meanwhile")
            return True

    bot = replay_bot(config={"trading": {"auto_execute": False}},
                     plugins=[("ideas", LongBoth()), ("c", KillWhileAsking()), ("approve", ApproveAll())],
                     disable=ONLY_TEST_RISK)
    run_bot(bot, 3)
    assert not bot.state.positions and not bot.state.open_orders and not bot.state.intents


def test_a_crash_is_a_critical_alert(replay_bot, run_bot):
    recorder = Recorder()
    bot = replay_bot(plugins=[("recorder", recorder)])
    save = bot.store.save

    def broken(state):  # an unexpected failure inside the core, at the end of cycle 2
        if state.iteration == 2:
            raise RuntimeError("the state could not be encoded")
        save(state)

    bot.store.save = broken
    with pytest.raises(RuntimeError):
        run_bot(bot, 5)
    stopped = [a for a in recorder.alerts if a.kind == "run_stopped"]
    assert (stopped[-1].severity is Severity.CRITICAL
            and "crashed: RuntimeError: the state could not be encoded" in stopped[-1].title)


def test_a_run_that_ends_in_order_marks_its_heartbeat_stopped(replay_bot, run_bot, tmp_path):
    run_bot(replay_bot(), 2)
    beat = json.loads((tmp_path / "state" / "heartbeat.json").read_text())
    assert beat["stopped"] == "max_iterations (2) reached"


def test_gobot_alerts_test_reports_per_channel(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('state_dir = "state"\n[plugins.console]\nmin_severity = "WARNING"\n')
    result = CliRunner().invoke(cli, ["alerts", "test", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["channels"]
    console = report["console"]
    warned = {k for k, v in ALERT_KINDS.items() if v.severity is not Severity.INFO}
    assert {item["kind"] for item in console["delivered"]} <= set(ALERT_KINDS)
    assert {"kill_switch", "risk_veto"} <= {item["kind"] for item in console["delivered"]} and warned
    assert "run_started" in console["unreported"], "below min_severity: not sent"
    table = CliRunner().invoke(cli, ["alerts", "test", "--config", str(config), "--kind", "kill_switch"])
    assert table.exit_code == 0 and "console" in table.output and "delivered" in table.output


def test_gobot_alerts_test_names_an_unknown_kind():
    result = CliRunner().invoke(cli, ["alerts", "test", "--kind", "nope"])
    assert result.exit_code == 2 and "gobot alerts kinds" in result.output


# -- the watchdog's decisions, on a clock the test moves ------------------------------------------------


def watchdog(tmp_path, **config):
    sent: list[Alert] = []
    now = [datetime(2026, 1, 2, tzinfo=timezone.utc)]

    async def send(alert):
        sent.append(alert)

    dog = Watchdog(tmp_path, WatchdogConfig(heartbeat_interval=1, stale_after=10, check_interval=1, **config), send,
                   clock=lambda: now[0])
    return dog, sent, now


def beat(tmp_path, when, **extra):
    (tmp_path / "heartbeat.json").write_text(json.dumps({"time": when.isoformat(), "pid": 999999, "run_id": "r1",
                                                         "iteration": 7, **extra}))


def test_the_watchdog_alerts_once_when_stale_and_again_when_fresh(tmp_path):
    dog, sent, now = watchdog(tmp_path, repeat_after=0)
    beat(tmp_path, now[0])
    for step in (5, 11, 30, 60):
        now[0] += timedelta(seconds=step - (now[0] - datetime(2026, 1, 2, tzinfo=timezone.utc)).total_seconds())
        asyncio.run(dog.check())
    assert [a.kind for a in sent] == ["watchdog_stale"]
    assert sent[0].severity is Severity.CRITICAL and "no heartbeat for 11 s" in sent[0].title
    assert "not running on this host" in sent[0].text and "cycle 7" in sent[0].text
    beat(tmp_path, now[0])
    asyncio.run(dog.check())
    assert [a.kind for a in sent] == ["watchdog_stale", "watchdog_recovered"]


def test_the_watchdog_repeats_while_stale_and_is_quiet_after_a_clean_stop(tmp_path):
    dog, sent, now = watchdog(tmp_path, repeat_after=100)
    beat(tmp_path, now[0] - timedelta(seconds=50))
    for _ in range(3):
        asyncio.run(dog.check())
        now[0] += timedelta(seconds=60)
    assert [a.kind for a in sent] == ["watchdog_stale", "watchdog_stale"]
    beat(tmp_path, now[0] - timedelta(hours=5), stopped="max_iterations (50) reached")
    asyncio.run(dog.check())
    now[0] += timedelta(hours=1)
    asyncio.run(dog.check())
    assert len(sent) == 2


def test_the_watchdog_alerts_when_no_heartbeat_ever_appears(tmp_path):
    dog, sent, now = watchdog(tmp_path)
    asyncio.run(dog.check())
    assert not sent, "the bot may still be starting"
    now[0] += timedelta(seconds=11)
    asyncio.run(dog.check())
    assert [a.kind for a in sent] == ["watchdog_stale"] and "no heartbeat in" in sent[0].title
