"""The telegram plugin against a loopback Telegram Bot API server: alert texts, escaping, splitting,
429, outages and the outbox, commands with roles, confirm-first orders, and no token anywhere."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import time

import pytest
from click.testing import CliRunner

from alert_servers import TelegramApiServer, visible_text
from gobot.cli import cli
from gobot.config import settings_from_dict
from gobot.errors import PluginError
from gobot.host.plugin_manager import build_plugin_set
from gobot.run.alerting import AlertChannels, sample_alerts
from gobot_hookspecs import ALERT_KINDS, Action, Alert, RiskVerdict, Severity, Signal, hookimpl

TOKEN = "987654321:AAFakeTokenForTests-abcdefghijklmnop"
CHAT = -1001234
OPERATOR, VIEWER, STRANGER = 111111, 222222, 333333
QUIET = {"console": {"cycle_lines": False, "min_severity": "CRITICAL"}}


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_CHAT_ID", str(CHAT))
    with TelegramApiServer(TOKEN) as api:
        yield api


def telegram(server, **overrides):
    section = {"api_url": server.url, "operators": [OPERATOR], "viewers": [VIEWER], "poll_timeout": 1, "timeout": 2,
               "retry_initial": 0.05, "retry_max": 0.2, "drain_timeout": 3, "fold_window": 0}
    section.update(overrides)
    return {"plugins": {"enable": ["telegram"], "disable": ["archiver"], "telegram": section, **QUIET}}


class ApproveAll:
    """The only risk check: these tests are about alerts, not about the built-in risk rules."""

    @hookimpl
    def gobot_risk_check(self, intent):
        return RiskVerdict(approved=True, reason="test: approve all")


def make_bot(replay_bot, config, plugins=(), disable=()):
    return replay_bot(config=config, plugins=[("approve_all", ApproveAll()), *plugins],
                      disable=["archiver", "risk_limits", "circuit_breaker", "kelly_size", *disable])


def channels(server, tmp_path, **overrides) -> AlertChannels:
    data = {"state_dir": str(tmp_path / "state"), **telegram(server, **overrides)}
    data["plugins"]["disable"] = ["console"]
    settings = settings_from_dict(data, "test.toml", base_dir=str(tmp_path))
    return AlertChannels(settings, build_plugin_set(enable=["telegram"], disable=["console"]))


def send(chans: AlertChannels, *alerts: Alert) -> None:
    async def go():
        for alert in alerts:
            await chans.send(alert)
        await chans.close()

    asyncio.run(go())


def audit(bot) -> list[dict]:
    return [json.loads(line) for line in bot.audit_log.path.read_text().splitlines()]


class Scenario:
    """Plays the Telegram users: at the end of cycle ``at`` the bot waits (without blocking its loop)
    while ``script(server)`` pushes updates and waits for the bot's answers."""

    def __init__(self, server, script, at=2):
        self.server, self.script, self.at = server, script, at
        self.error = None

    @hookimpl
    async def gobot_on_cycle_end(self, ctx, report):
        if report.iteration == self.at:
            try:
                await asyncio.to_thread(self.script, self.server, ctx)
            except BaseException as exc:  # reported by the test, not swallowed by hook isolation
                self.error = exc


# -- alert texts ---------------------------------------------------------------------------------


def test_gobot_alerts_test_delivers_every_kind_with_its_text(server, tmp_path):
    config = tmp_path / "config.toml"
    section = "\n".join(f"{k} = {json.dumps(v)}" for k, v in telegram(server)["plugins"]["telegram"].items())
    config.write_text('state_dir = "state"\n[plugins]\nenable = ["telegram"]\ndisable = '
                      f'["console"]\n[plugins.telegram]\n{section}\n')
    result = CliRunner().invoke(cli, ["alerts", "test", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["channels"]["telegram"]
    assert sorted(item["kind"] for item in report["delivered"]) == sorted(ALERT_KINDS)
    texts = [visible_text(c.params["text"]) for c in server.delivered("sendMessage")]
    for sample in sample_alerts():
        message = next(t for t in texts if f"[test] {sample.title}" in t)
        assert sample.text in message and f"\n{sample.kind} · " in message, sample.kind
    photos = server.delivered("sendPhoto")
    assert len(photos) == 1 and photos[0].files["photo"].startswith(b"\x89PNG"), "the daily summary's equity curve"
    assert "Daily summary" in visible_text(photos[0].params["caption"])


def test_hostile_symbol_and_rationale_text_is_escaped_and_arrives_verbatim(server, tmp_path):
    title = "Opened long <b>EVIL</b>/USDT & co </i>"
    text = 'rationale: <script>alert("x")</script> & &amp; 5 > 3 < 4 <tg-spoiler> *bold* _it_ [link](http://x)'
    send(channels(server, tmp_path), Alert(kind="trade_opened", title=title, text=text))
    [message] = server.delivered("sendMessage")
    assert message.params["parse_mode"] == "HTML"
    shown = visible_text(message.params["text"])  # the server parses like Telegram: it refused nothing
    assert title in shown and text in shown


def test_a_long_alert_is_split_below_telegrams_limit_and_nothing_is_lost(server, tmp_path):
    lines = [f"line {i:04d}: " + "détail ✓ " * 12 for i in range(120)]
    body = "\n".join(lines)
    send(channels(server, tmp_path), Alert(kind="risk_veto", title="Risk veto: many reasons", text=body,
                                           severity=Severity.WARNING))
    parts = server.texts()
    assert len(parts) >= 3
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    assert [p.splitlines()[0] for p in parts] == [f"⚠️ Risk veto: many reasons ({i}/{len(parts)})"
                                                  for i in range(1, len(parts) + 1)]
    rebuilt = "".join("\n".join(p.splitlines()[1:-1]) + "\n" for p in parts)
    assert rebuilt.split() == body.split()


def test_429_retry_after_is_honoured_and_the_alert_sent_once(server, tmp_path):
    server.fail("sendMessage", status=429, retry_after=1)
    send(channels(server, tmp_path), Alert(kind="kill_switch", title="Kill switch", severity=Severity.CRITICAL))
    calls = [c for c in server.calls if c.method == "sendMessage"]
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].time - calls[0].time >= 1.0


def test_identical_alerts_are_folded_into_one_with_a_count(server, tmp_path):
    veto = Alert(kind="risk_veto", title="Risk veto: buy BTC/USDT", text="risk_limits: exposure",
                 severity=Severity.WARNING)
    send(channels(server, tmp_path, fold_window=30), *[veto] * 5,
         Alert(kind="paused", title="Paused", severity=Severity.WARNING))
    texts = server.texts()
    assert len(texts) == 3
    assert texts[0].startswith("⚠️ Risk veto: buy BTC/USDT") and texts[1].startswith("⚠️ Paused")
    assert texts[2].startswith("⚠️ 🔁 ×4 more in the last 30 s: Risk veto: buy BTC/USDT")


def test_a_token_telegram_refuses_is_reported_not_retried(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TELEGRAM_TOKEN", "123:wrong-token-xyz")
    chans = channels(server, tmp_path)
    send(chans, Alert(kind="paused", title="Paused", severity=Severity.WARNING))
    [receipt] = chans.receipts()
    assert receipt["delivered"] is False and "401" in receipt["detail"] and "wrong-token" not in receipt["detail"]
    assert len(server.calls) == 1


# -- a running bot ---------------------------------------------------------------------------------


def test_an_outage_does_not_stop_trading_and_the_alerts_arrive_later(server, replay_bot, run_bot):
    server.set_down(503)

    class Recover:
        @hookimpl
        def gobot_on_cycle_end(self, report):
            if report.iteration == 15:
                server.set_down(None)

    bot = make_bot(replay_bot, telegram(server), plugins=[("recover", Recover())])
    started = time.perf_counter()
    run_bot(bot, 20)
    assert bot.state.iteration == 20 and bot.state.trades, "trading went on during the outage"
    assert time.perf_counter() - started < 15
    texts = server.texts()
    assert any(f"run {bot.state.run_id} started" in t for t in texts), "raised while Telegram was down, delivered later"
    assert sum("Opened" in t for t in texts) >= 1
    assert any(c.status == 503 for c in server.calls)
    receipts = [e for e in audit(bot) if e["event"] == "alert_delivery" and e["channel"] == "telegram"]
    assert receipts and all(r["delivered"] for r in receipts)


def test_a_hanging_api_times_out_and_the_loop_goes_on(server, replay_bot, run_bot):
    server.fail("sendMessage", status=504, hang=4, times=2)
    bot = make_bot(replay_bot, telegram(server, timeout=0.5))
    started = time.perf_counter()
    run_bot(bot, 8)
    assert bot.state.iteration == 8
    assert time.perf_counter() - started < 8
    assert any(f"run {bot.state.run_id} started" in t for t in server.texts())


def test_undelivered_alerts_wait_in_the_outbox_and_go_out_after_a_restart(server, replay_bot, run_bot, tmp_path):
    server.set_down(502)
    first = make_bot(replay_bot, telegram(server, drain_timeout=0.3))
    run_bot(first, 5)
    outbox = tmp_path / "state" / "telegram-outbox.json"
    kept = json.loads(outbox.read_text())["entries"]
    assert kept and stat.S_IMODE(outbox.stat().st_mode) == 0o600
    assert TOKEN not in outbox.read_text()
    assert not server.texts()

    server.set_down(None)
    second = make_bot(replay_bot, telegram(server))
    run_bot(second, 1)
    texts = server.texts()
    assert f"run {first.state.run_id} started" in texts[0], "the first run's alerts go first"
    assert any(f"run {second.state.run_id} started" in t for t in texts)
    assert json.loads(outbox.read_text())["entries"] == []


def test_enabling_telegram_without_a_token_is_a_clear_start_up_error(replay_bot, run_bot, monkeypatch):
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    bot = replay_bot(config={"plugins": {"enable": ["telegram"], "telegram": {"chat_id": "42"}}})
    with pytest.raises(PluginError) as error:
        run_bot(bot, 1)
    assert ("telegram" in str(error.value) and "TELEGRAM_TOKEN is not set" in str(error.value)
            and "BotFather" in str(error.value))


# -- commands ----------------------------------------------------------------------------------------


def replies(server, after=0):
    return [c for c in server.delivered("sendMessage")[after:] if str(c.params.get("chat_id")) == str(CHAT)]


def test_operator_pauses_and_kills_only_after_confirming(server, replay_bot, run_bot, tmp_path):
    state = tmp_path / "state"

    def script(api, ctx):
        api.push_message(OPERATOR, CHAT, "/pause checking the exchange")
        api.wait_for(lambda: any("Paused: no new positions" in visible_text(c.params["text"]) for c in replies(api)),
                     what="pause reply")
        assert (state / "PAUSED").exists()
        api.push_message(OPERATOR, CHAT, "/kill@gobot_test_bot")
        question = api.wait_for(lambda: [c for c in replies(api) if "reply_markup" in c.params],
                                what="kill question")[0]
        assert not (state / "KILL").exists(), "a kill waits for its confirmation"
        ok = question.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        api.push_button(OPERATOR, CHAT, ok, 1)
        api.wait_for(lambda: any("Kill switch engaged" in visible_text(c.params["text"]) for c in replies(api)),
                     what="kill reply")
        assert (state / "KILL").exists()

    scenario = Scenario(server, script)
    bot = make_bot(replay_bot, telegram(server), plugins=[("scenario", scenario)])
    outcome = run_bot(bot, 10)
    assert scenario.error is None, scenario.error
    assert "kill switch" in outcome.reason and bot.state.iteration == 2
    commands = [(e["command"], e["role"]) for e in audit(bot) if e["event"] == "telegram_command"]
    assert commands == [("pause", "operator"), ("kill", "operator")]
    assert any(c.method == "answerCallbackQuery" for c in server.calls)


def test_repeating_kill_within_the_window_confirms_it(server, replay_bot, run_bot, tmp_path):
    def script(api, ctx):
        api.push_message(OPERATOR, CHAT, "/kill")
        api.wait_for(lambda: [c for c in replies(api) if "reply_markup" in c.params], what="kill question")
        api.push_message(OPERATOR, CHAT, "/kill")
        api.wait_for(lambda: any("Kill switch engaged" in visible_text(c.params["text"]) for c in replies(api)),
                     what="kill reply")

    scenario = Scenario(server, script)
    outcome = run_bot(make_bot(replay_bot, telegram(server), plugins=[("scenario", scenario)]), 10)
    assert scenario.error is None, scenario.error
    assert "kill switch" in outcome.reason


def test_a_viewer_and_a_stranger_in_the_same_group_change_nothing(server, replay_bot, run_bot, tmp_path):
    state = tmp_path / "state"

    def script(api, ctx):
        for user in (STRANGER, VIEWER):
            for text in ("/pause", "/kill", "/kill", "/resume", "/close all"):
                api.push_message(user, CHAT, text)
        api.push_message(STRANGER, CHAT, "/status")
        api.push_message(OPERATOR, CHAT, "/kill")  # a real question ...
        question = api.wait_for(lambda: [c for c in replies(api) if "reply_markup" in c.params],
                                what="kill question")[0]
        ok = question.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        api.push_button(VIEWER, CHAT, ok, 1)  # ... that a viewer and a stranger try to confirm
        api.push_button(STRANGER, CHAT, ok, 1)
        api.push_message(OPERATOR, CHAT, "hello bot")
        api.push_message(VIEWER, CHAT, "/status")  # answered last: everything before was handled
        api.wait_for(lambda: any("gobot status" in visible_text(c.params["text"]) for c in replies(api)),
                     what="status reply")

    scenario = Scenario(server, script)
    bot = make_bot(replay_bot, telegram(server, confirm_window=60), plugins=[("scenario", scenario)])
    outcome = run_bot(bot, 4)
    assert scenario.error is None, scenario.error
    assert not (state / "PAUSED").exists() and not (state / "KILL").exists()
    assert "max_iterations" in outcome.reason
    events = audit(bot)
    ignored = [(e["reason"], e["text"]) for e in events if e["event"] == "telegram_ignored"]
    assert sum(1 for reason, _ in ignored if reason == "unknown user") == 6
    assert sum(1 for reason, _ in ignored if reason == "needs the operator role") == 5
    assert sum(1 for reason, _ in ignored if reason == "button: needs the operator role") == 2
    assert ("not a command", "hello bot") in ignored
    shown = [visible_text(c.params["text"]) for c in replies(server)]
    assert sum("needs the operator role" in text for text in shown) == 5, (
        "the viewer is told; the stranger gets nothing")
    assert sum("gobot status" in text for text in shown) == 1, "the stranger's /status went unanswered"


def test_read_commands_answer_viewers(server, replay_bot, run_bot):
    def script(api, ctx):
        for text in ("/status", "/balance", "/positions", "/performance", "/help"):
            api.push_message(VIEWER, VIEWER, text, chat_type="private")  # a private chat with the bot
        api.wait_for(lambda: any("gobot commands" in visible_text(c.params.get("text", ""))
                                 for c in api.delivered("sendMessage")),
                     what="help reply")

    scenario = Scenario(server, script, at=30)
    run_bot(make_bot(replay_bot, telegram(server), plugins=[("scenario", scenario)]), 30)
    assert scenario.error is None, scenario.error
    private = [c for c in server.delivered() if str(c.params.get("chat_id")) == str(VIEWER)]
    shown = [visible_text(c.params["text"]) if c.method == "sendMessage" else visible_text(c.params["caption"])
             for c in private]
    assert any("Equity" in s and "Kill switch off" in s for s in shown)
    assert any("Balance" in s for s in shown) and any("Performance" in s for s in shown)
    assert any(c.method == "sendPhoto" for c in private), "the cumulative P&L chart"
    assert "/kill" not in shown[-1], "a viewer's /help lists read commands only"


def test_a_huge_command_is_audited_in_brief(server, replay_bot, run_bot):
    """Found by the red team: /close with 250 KB of arguments wrote a 250 KB audit line (and its
    reply, echoing them, was too long for Telegram)."""
    def script(api, ctx):
        api.push_message(OPERATOR, CHAT, "/close " + " ".join(["BTC/USDT" * 500] * 60))
        api.wait_for(lambda: [c for c in replies(api) if "Nothing to close" in c.params.get("text", "")],
                     what="close reply")

    scenario = Scenario(server, script)
    bot = make_bot(replay_bot, telegram(server), plugins=[("scenario", scenario)])
    run_bot(bot, 3)
    assert scenario.error is None, scenario.error
    [line] = [raw for raw in bot.audit_log.path.read_text().splitlines() if '"telegram_command"' in raw]
    assert len(line) < 1200
    [event] = [e for e in audit(bot) if e["event"] == "telegram_command"]
    assert (len(event["args"]) == 9 and event["args"][-1] == "…(+52 more)"
            and event["args"][0].endswith("…(+3936 chars)"))


# -- confirm-first -------------------------------------------------------------------------------------


class Ideas:
    """LONG BTC at cycle 1 (with a hostile rationale), LONG ETH at cycles 2 and 3, nothing else."""

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        wanted = {1: "BTC/USDT", 2: "ETH/USDT", 3: "ETH/USDT"}.get(ctx.iteration)
        return [Signal(symbol=s.symbol, action=Action.LONG, confidence=0.9, rationale="<b>breakout</b> & RSI < 30")
                for s in snapshots if s.symbol == wanted]


def test_confirm_first_sends_only_what_an_operator_confirmed(server, replay_bot, run_bot):
    def script(api, ctx):
        def question(n):
            return api.wait_for(lambda: len([c for c in replies(api) if "reply_markup" in c.params]) >= n and
                                [c for c in replies(api) if "reply_markup" in c.params][n - 1], what=f"proposal {n}")

        first = question(1)
        assert ("BUY BTC/USDT" in visible_text(first.params["text"])
                and "<b>breakout</b> & RSI < 30" in visible_text(first.params["text"]))
        yes, no = (b["callback_data"] for b in first.params["reply_markup"]["inline_keyboard"][0])
        api.push_button(VIEWER, CHAT, yes, 1)  # not an operator: ignored
        api.push_button(OPERATOR, CHAT, yes, 1)
        second = question(2)
        api.push_button(OPERATOR, CHAT, second.params["reply_markup"]["inline_keyboard"][0][1]["callback_data"], 2)
        question(3)  # nobody answers: it times out

    class Start:  # the users act beside the cycles: start them before the first one
        error = None

        @hookimpl
        async def gobot_startup(self, ctx):
            self.task = asyncio.get_running_loop().create_task(asyncio.to_thread(script, server, ctx))

        @hookimpl
        async def gobot_shutdown(self):
            try:
                await self.task
            except BaseException as exc:
                Start.error = exc

    config = telegram(server, confirm_timeout=1.5)
    config["trading"] = {"auto_execute": False}
    bot = make_bot(replay_bot, config, plugins=[("ideas", Ideas()), ("start", Start())],
                   disable=["sma_rsi", "adjuster", "validator"])
    run_bot(bot, 4)
    assert Start.error is None, Start.error
    assert set(bot.state.positions) == {"BTC/USDT"}, "only the confirmed order was sent (and filled)"
    events = audit(bot)
    assert [e["intent"]["symbol"] for e in events if e["event"] == "order_confirmed"] == ["BTC/USDT"]
    proposed = [(e["order"]["symbol"], e["confirmed"]) for e in events if e["event"] == "order_proposed"]
    assert proposed == [("ETH/USDT", False), ("ETH/USDT", None)]
    edits = [visible_text(c.params["text"]) for c in server.delivered("editMessageText")]
    assert any("confirmed by telegram user 111111" in e for e in edits)
    assert any("rejected by telegram user 111111" in e for e in edits)
    assert any("not confirmed within 1.5 s" in e for e in edits)


# -- secrets -------------------------------------------------------------------------------------------


def test_the_token_never_appears_in_logs_output_or_files(server, replay_bot, run_bot, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    server.fail("sendMessage", status=500, times=2)
    server.fail("sendMessage", status=429, retry_after=0)
    server.fail("getUpdates", status=502, times=1)
    server.fail("sendMessage", status=504, hang=3, times=1)
    bot = make_bot(replay_bot, telegram(server, timeout=0.5, drain_timeout=0.5))
    run_bot(bot, 10)
    chans = channels(server, tmp_path / "standalone")
    send(chans, Alert(kind="paused", title="Paused", severity=Severity.WARNING))
    captured = capfd.readouterr()
    logs = "\n".join(f"{r.name}: {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "HTTP Request: POST" in logs and "/bot***/sendMessage" in logs, "httpx logged its requests, masked"
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    for where, text in ([("logs", logs), ("stdout", captured.out), ("stderr", captured.err)]
                        + [(str(p), p.read_text(errors="replace")) for p in files]):
        assert TOKEN not in text and TOKEN.split(":")[1] not in text, f"the token leaked into {where}"


def test_a_token_telegram_refuses_at_start_up_stops_the_start_without_showing_it(server, replay_bot, run_bot,
                                                                                 monkeypatch):
    monkeypatch.setenv("TELEGRAM_TOKEN", "123456:revoked-token-abcdef")
    bot = make_bot(replay_bot, telegram(server))
    with pytest.raises(PluginError) as error:
        run_bot(bot, 1)
    assert "Telegram refused TELEGRAM_TOKEN" in str(error.value) and "401" in str(error.value)
    assert "revoked-token" not in str(error.value)
