"""The telegram plugin's cycle report (``report_every_cycle``) against the loopback Bot API server: one
message edited in place by quiet cycles, a new one when a cycle trades, alerts first, 429 merged, a
deleted message replaced, and continued after a restart."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest

from alert_servers import TelegramApiServer, visible_text
from gobot_hookspecs import Action, RiskVerdict, Sentiment, Signal, hookimpl

TOKEN = "987654321:AAFakeTokenForTests-abcdefghijklmnop"
CHAT = -1001234
QUIET = {"console": {"cycle_lines": False, "min_severity": "CRITICAL"}}
HOSTILE = "no <b>ETH</b> & co today: exposure > 30 %"


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_CHAT_ID", str(CHAT))
    with TelegramApiServer(TOKEN) as api:
        yield api


def config(server, **overrides):
    section = {"api_url": server.url, "commands": False, "timeout": 2, "retry_initial": 0.05, "retry_max": 0.2,
               "drain_timeout": 3, "fold_window": 0, "report_every_cycle": True, "report_edit_window": 48,
               "report_min_interval": 0}
    section.update(overrides)
    return {"plugins": {"enable": ["telegram"], "disable": ["archiver"], "telegram": section, **QUIET}}


class Risk:
    """Vetoes ETH/USDT (with a reason full of HTML), approves the rest."""

    @hookimpl
    def gobot_risk_check(self, intent):
        if intent.symbol == "ETH/USDT":
            return RiskVerdict(approved=False, reason=HOSTILE)
        return RiskVerdict(approved=True, reason="test: approve")


class Ideas:
    """LONG BTC and ETH at the cycles in ``longs``; a close of BTC asked at the cycles in ``closes``."""

    def __init__(self, longs=(), closes=()):
        self.longs, self.closes = set(longs), set(closes)

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        if ctx.iteration not in self.longs:
            return [Signal(symbol=s.symbol, action=Action.HOLD, confidence=0.1) for s in snapshots[:1]]
        return [Signal(symbol=s.symbol, action=Action.LONG, confidence=0.91, rationale="test") for s in snapshots]

    @hookimpl
    def gobot_on_scan_end(self, ctx):
        if ctx.iteration in self.closes and ctx.positions():
            ctx.close_positions("test: close")


class Mood:
    """A market-wide sentiment reading every cycle, and one for BTC that is past its time (stale)."""

    @hookimpl
    def gobot_scan_sentiment(self, ctx):
        return [Sentiment(source="fear_greed", time=ctx.now(), valid_until=ctx.now() + timedelta(days=1),
                          score=0.44, fields={"value": 72.0, "classification": "Greed"}, inputs={"value": 0.44}),
                Sentiment(source="market_sentiment", symbol="BTC/USDT", time=ctx.now() - timedelta(hours=2),
                          valid_until=ctx.now() - timedelta(hours=1), score=-0.12)]


class Recorder:
    """Keeps every cycle's report."""

    def __init__(self):
        self.reports = []

    @hookimpl
    def gobot_on_cycle_end(self, report):
        self.reports.append(report)


def is_report(call) -> bool:
    return call.method in ("sendMessage", "editMessageText") and call.params.get("text", "").startswith("📊")


def reports(server, method=None, status=200):
    return [c for c in server.calls if is_report(c) and c.status == status and (method is None or c.method == method)]


def header(call) -> int:
    return int(visible_text(call.params["text"]).split()[1].lstrip("#"))


class Pace:
    """Ends each cycle only once its report reached the server: the pace of a 15-minute loop, where the
    sender always catches up between two cycles. ``then(server, ctx, report)`` runs after that."""

    def __init__(self, server, until=10**9, then=None, wait=True):
        self.server, self.until, self.then, self.wait = server, until, then, wait
        self.error = None

    @hookimpl
    async def gobot_on_cycle_end(self, ctx, report):
        if report.iteration > self.until:
            return
        n = report.iteration
        try:
            await asyncio.to_thread(self.server.wait_for, lambda: any(header(c) == n for c in reports(self.server)),
                                    10, f"the report of cycle {n}")
            if self.then is not None:
                await asyncio.to_thread(self.then, self.server, ctx, report)
        except BaseException as exc:  # reported by the test, not swallowed by hook isolation
            self.error = self.error or exc


def make_bot(replay_bot, cfg, *plugins, disable=()):
    return replay_bot(config=cfg, plugins=[("risk", Risk()), *plugins],
                      disable=["archiver", "risk_limits", "circuit_breaker", "kelly_size", "sma_rsi", "adjuster",
                               "validator", *disable])


def audit(bot) -> list[dict]:
    return [json.loads(line) for line in bot.audit_log.path.read_text().splitlines()]


def page_starts(recorded) -> list[int]:
    """The cycles that start a new message under the documented policy (no window expiry here)."""
    starts, day, closing = [], None, set()
    for report in recorded:
        notable = report.orders or any(t.symbol not in closing for t in report.trades_closed)
        if not starts or notable or report.time.date() != day:
            starts.append(report.iteration)
            closing = set()
        closing |= {o.symbol for o in report.orders if o.purpose == "close"}
        day = report.time.date()
    return starts


# -- the policy ----------------------------------------------------------------------------------


def test_quiet_cycles_edit_one_message_and_trading_cycles_send_a_new_one(server, replay_bot, run_bot):
    recorder, pace = Recorder(), Pace(server)
    bot = make_bot(replay_bot, config(server), ("ideas", Ideas(longs={4}, closes={9})), ("mood", Mood()),
                   ("recorder", recorder), ("pace", pace))
    run_bot(bot, 12)
    assert pace.error is None, pace.error
    starts = page_starts(recorder.reports)
    assert 4 in starts and len(starts) <= 5, starts
    sends, edits = reports(server, "sendMessage"), reports(server, "editMessageText")
    assert [header(c) for c in sends] == starts
    assert len(edits) == 12 - len(starts), "every other cycle edits the live message"
    assert reports(server, status=400) == []
    notable = {r.iteration for r in recorder.reports if r.orders}
    assert [c.params["disable_notification"] for c in sends] == [header(c) not in notable for c in sends], (
        "a trading cycle's message notifies; a routine one is silent")
    by_id = {}
    for call in sends:
        by_id[header(call)] = call
    for edit in edits:  # each edit goes to the message its page started with
        first = max(s for s in starts if s <= header(edit))
        sent = server.messages[(str(CHAT), edit.params["message_id"])]
        assert sent["message_id"] == edit.params["message_id"] and first in by_id

    order_cycle = visible_text(by_id[4].params["text"])
    assert order_cycle.startswith("📊 #4 ") and "equity " in order_cycle and "% today" in order_cycle
    assert "P&L " in order_cycle and "signals: BTC/USDT LONG 0.91 · ETH/USDT LONG 0.91" in order_cycle
    assert f"🛑 ETH/USDT — risk: {HOSTILE}" in order_cycle, "the veto with its reason, escaped and intact"
    assert "#4 🟢 BUY" in order_cycle and "BTC/USDT" in order_cycle
    assert "🧭 sentiment: fear_greed +0.44 (Greed) · market_sentiment BTC/USDT -0.12 STALE" in order_cycle
    assert not any("💰" in c.params["text"] for c in sends), "a close ordered on a message is edited into it"
    closed = next(c for c in edits if "💰 closed BTC/USDT LONG" in c.params["text"])
    assert "#9 🟢 SELL" in visible_text(closed.params["text"]) and header(closed) == 10

    last = server.messages[(str(CHAT), edits[-1].params["message_id"])]
    assert last["text"].startswith("📊 #12 ") and "cycles #" in last["text"], "the live message shows the last cycle"

    texts = [(i, c) for i, c in enumerate(server.calls) if c.method == "sendMessage" and c.status == 200]
    veto = next(i for i, c in texts if "Risk veto" in visible_text(c.params["text"]))
    assert veto < server.calls.index(by_id[4]), "cycle 4's risk_veto alert goes before cycle 4's report"


def test_the_report_is_off_by_default(server, replay_bot, run_bot):
    cfg = config(server)
    for key in ("report_every_cycle", "report_edit_window", "report_min_interval"):
        del cfg["plugins"]["telegram"][key]
    bot = make_bot(replay_bot, cfg, ("ideas", Ideas(longs={2})))
    run_bot(bot, 6)
    assert not [c for c in server.calls if is_report(c)]
    assert not [c for c in server.calls if c.method == "editMessageText"]
    assert any("Opened" in t for t in server.texts()), "alerts are sent as before"
    assert "cycle_report" not in bot.state.plugin_state.get("telegram", {})


def test_an_old_message_is_left_for_a_new_one_after_the_edit_window(server, replay_bot, run_bot):
    pace = Pace(server)
    bot = make_bot(replay_bot, config(server, report_edit_window=0.75), ("pace", pace))
    run_bot(bot, 8)  # a 15-minute loop: a 45-minute window is 3 cycles
    assert pace.error is None, pace.error
    sends = reports(server, "sendMessage")
    assert [header(c) for c in sends] == [1, 4, 7]
    assert all(c.params["disable_notification"] is True for c in sends), "no trade: every message is silent"
    assert len(reports(server, "editMessageText")) == 5


def test_a_new_utc_day_starts_a_new_message_with_the_day_counted_afresh(server, replay_bot, run_bot):
    pace = Pace(server)
    cfg = config(server)
    cfg["plugins"]["replay"] = {"start": "2026-01-01T23:30:00Z"}
    bot = make_bot(replay_bot, cfg, ("ideas", Ideas(longs={1})), ("pace", pace))
    run_bot(bot, 5)  # BTC bought at 23:30, filled at 23:45, its take-profit at 00:15 (a closed trade: notable)
    assert pace.error is None, pace.error
    sends = reports(server, "sendMessage")
    assert [(header(c), visible_text(c.params["text"]).split()[2]) for c in sends] == [
        (1, "23:30"), (3, "00:00"), (4, "00:15")]
    assert [c.params["disable_notification"] for c in sends] == [False, True, False]
    assert "(+0.00 % today)" in visible_text(sends[1].params["text"]), "the day counts from its first cycle"
    assert "💰 closed BTC/USDT LONG +" in visible_text(sends[2].params["text"])


# -- errors ----------------------------------------------------------------------------------------


def test_a_deleted_report_message_is_replaced_by_a_new_one(server, replay_bot, run_bot):
    def delete_live_message(api, ctx, report):
        if report.iteration == 3:
            live = ctx.plugin_state("telegram")["cycle_report"]["message_id"]
            api.delete_message(CHAT, live)

    pace = Pace(server, then=delete_live_message)
    bot = make_bot(replay_bot, config(server), ("pace", pace))
    run_bot(bot, 6)
    assert pace.error is None, pace.error
    [gone] = reports(server, "editMessageText", status=400)
    assert header(gone) == 4
    assert [header(c) for c in reports(server, "sendMessage")] == [1, 4], "a new message for cycle 4"
    new_id = bot.state.plugin_state["telegram"]["cycle_report"]["message_id"]
    assert new_id != gone.params["message_id"]
    assert [(header(c), c.params["message_id"]) for c in reports(server, "editMessageText")] == [
        (2, gone.params["message_id"]), (3, gone.params["message_id"]), (5, new_id), (6, new_id)]


def test_429_holds_every_request_the_alert_goes_first_and_the_reports_merge(server, replay_bot, run_bot):
    def arm(api, ctx, report):
        if report.iteration == 3:
            api.fail("editMessageText", status=429, retry_after=1)

    class WaitFor429:
        @hookimpl
        async def gobot_on_cycle_end(self, report):
            if report.iteration == 4:
                await asyncio.to_thread(server.wait_for, lambda: [c for c in server.calls if c.status == 429], 10,
                                        "the 429")

    bot = make_bot(replay_bot, config(server), ("ideas", Ideas(longs={5})), ("pace", Pace(server, until=3, then=arm)),
                   ("wait429", WaitFor429()))
    run_bot(bot, 9)
    [limited] = [c for c in server.calls if c.status == 429]
    assert header(limited) == 4
    after = [c for c in server.calls if c.time > limited.time and c.method != "getUpdates"]
    assert after and all(c.time - limited.time >= 0.99 for c in after), "nothing at all before retry_after is over"
    assert not is_report(after[0]) and "Risk veto" in visible_text(after[0].params["text"]), (
        "the alert raised during the hold goes first")
    sent_headers = [header(c) for c in reports(server)]
    assert 4 not in sent_headers, "cycle 4's report was merged into a later one, not sent late"
    assert len(reports(server)) < 9 and sent_headers[-1] == 9
    receipts = [e for e in audit(bot) if e["event"] == "alert_delivery" and e["channel"] == "telegram"]
    alerts = [e for e in audit(bot) if e["event"] == "alert"]
    assert len(receipts) == len(alerts) and all(r["delivered"] for r in receipts), "no alert lost"
    final = server.messages[(str(CHAT), bot.state.plugin_state["telegram"]["cycle_report"]["message_id"])]
    assert final["text"].startswith("📊 #9 ") and "#5 🟢 BUY" in final["text"]


# -- limits and restarts ---------------------------------------------------------------------------


def test_a_crowded_cycle_is_folded_below_telegrams_limit(server, replay_bot, run_bot):
    class Veto:
        def __init__(self, n):
            self.n = n

        @hookimpl
        def gobot_risk_check(self, intent):
            return RiskVerdict(approved=False, reason=f"rule {self.n} <x> " + "détail ✓ " * 400)

    vetoes = [(f"veto{n}", Veto(n)) for n in range(9)]
    bot = make_bot(replay_bot, config(server), ("ideas", Ideas(longs={1, 2})), *vetoes, ("pace", Pace(server)))
    run_bot(bot, 2)
    [first] = reports(server, "sendMessage")
    shown = visible_text(first.params["text"])
    assert len(shown.encode("utf-16-le")) // 2 <= 4096
    assert "… and" in shown and "more vetoes" in shown
    assert all(len(line) <= 260 for line in shown.splitlines())


def test_a_restart_goes_on_editing_the_live_message(server, replay_bot, run_bot, tmp_path):
    class KillAt3:
        @hookimpl
        def gobot_on_cycle_end(self, ctx, report):
            if report.iteration == 3:
                ctx.kill("test: stop for a restart")

    first = make_bot(replay_bot, config(server), ("pace", Pace(server)), ("kill", KillAt3()))
    outcome = run_bot(first, 10)
    assert "kill switch" in outcome.reason
    live = first.state.plugin_state["telegram"]["cycle_report"]["message_id"]
    (tmp_path / "state" / "KILL").unlink()
    pace = Pace(server)
    second = make_bot(replay_bot, config(server), ("pace", pace))
    run_bot(second, 5)
    assert pace.error is None, pace.error
    assert second.state.run_id == first.state.run_id, "the same run, resumed"
    assert [header(c) for c in reports(server, "sendMessage")] == [1]
    assert [(header(c), c.params["message_id"]) for c in reports(server, "editMessageText")] == [
        (n, live) for n in (2, 3, 4, 5)]


def test_an_edit_telegram_finds_unchanged_is_not_an_error(server):
    """Telegram answers 400 "message is not modified" to an edit that changes nothing (a retry whose
    first try did arrive): the report counts as delivered, nothing new is sent."""
    from gobot_hookspecs import CycleReport
    from gobot_plugins.telegram.api import BotApi
    from gobot_plugins.telegram.report import CycleReporter

    async def go():
        api = BotApi(TOKEN, server.url, 2)
        reporter, state = CycleReporter(api, str(CHAT), 24), {}
        moment = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
        reporter.on_cycle(state, CycleReport(run_id="r", iteration=1, time=moment, equity=100.0), "USDT", [])
        await reporter.deliver()
        reporter.on_cycle(state, CycleReport(run_id="r", iteration=2, time=moment, equity=100.0), "USDT", [])
        await reporter.deliver()
        state["cycle_report"]["version"] += 1  # the same page again, as after a lost answer
        await reporter.deliver()
        await api.close()
        return reporter

    reporter = asyncio.run(go())
    assert [(c.method, c.status) for c in server.calls] == [
        ("sendMessage", 200), ("editMessageText", 200), ("editMessageText", 400)]
    assert not reporter.due() and (reporter.sent, reporter.edited) == (1, 1)


def test_cycles_within_the_min_interval_merge_and_the_last_one_goes_out_at_shutdown(server, replay_bot, run_bot):
    bot = make_bot(replay_bot, config(server, report_min_interval=600), ("ideas", Ideas(longs={2})))
    run_bot(bot, 5)  # the run_started alert was the last request: no report for 600 s, but the run ends first
    [only] = reports(server)
    shown = visible_text(only.params["text"])
    assert only.method == "sendMessage" and shown.startswith("📊 #5 "), "one message, the newest cycle, at shutdown"
    assert "#2 🟢 BUY" in shown and "#3 ✅ filled BUY" in shown, "the order's events are not lost in the merge"
    assert only.params["disable_notification"] is False, "it holds an order: it notifies"
    alerts = [i for i, c in enumerate(server.calls) if c.method == "sendMessage" and not is_report(c)]
    assert alerts and max(alerts) < server.calls.index(only), "every alert went before it"


def test_after_an_outage_one_report_carries_the_events_of_every_message_not_sent(server, replay_bot, run_bot):
    server.set_down(503)

    class Recover:
        @hookimpl
        def gobot_on_cycle_end(self, report):
            if report.iteration == 7:
                server.set_down(None)

    bot = make_bot(replay_bot, config(server), ("ideas", Ideas(longs={1, 5}, closes={3})), ("recover", Recover()))
    run_bot(bot, 8)
    delivered = reports(server)
    assert delivered, "reports go out once Telegram is back"
    first = visible_text(delivered[0].params["text"])
    for event in ("#1 🟢 BUY", "#2 ✅ filled BUY", "#3 🟢 SELL", "#4 💰 closed BTC/USDT", "#5 🟢 BUY"):
        assert event in first, f"{event} was carried into the first message sent"
    assert delivered[0].params["disable_notification"] is False
    receipts = [e for e in audit(bot) if e["event"] == "alert_delivery" and e["channel"] == "telegram"]
    assert receipts and all(r["delivered"] for r in receipts), "every alert delivered too"
    queued = [i for i, c in enumerate(server.calls) if c.method == "sendMessage" and c.status == 200
              and not is_report(c) and "run_completed" not in c.params["text"]]  # run_completed: raised at the end
    assert server.calls.index(delivered[0]) > max(queued), "the alerts queued during the outage went first"
