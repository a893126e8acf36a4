"""circuit_breaker: CLOSED -> OPEN -> HALF_OPEN and back, hard stops, the drawdown emergency stop.

Time is the bot's clock: the replay clock, moved by the test (``bot.clock.advance``). Events reach
the breaker through the bot's own hook caller, as the core sends them.
"""

import asyncio
import json
from datetime import datetime, timedelta, timezone

from gobot_hookspecs import (
    Action,
    CycleReport,
    ExecutionError,
    Fill,
    Order,
    Priority,
    RiskVerdict,
    Side,
    Signal,
    hookimpl,
)
from risk_helpers import DESIGN_BREAKER, hold, judge, make_intent, notify, trade

T0 = datetime(2026, 1, 1, 16, 40, tzinfo=timezone.utc)  # the fixture replay's first cycle


def breaker_bot(replay_bot, plugins=(), **config):
    return replay_bot(config={"plugins": {"circuit_breaker": {**DESIGN_BREAKER, **config}}}, plugins=plugins)


def breaker(bot) -> dict:
    return bot.state.plugin_state["circuit_breaker"]


def closed_trades(bot, *pnls, symbol="BTC/USDT"):
    for pnl in pnls:
        notify(bot, "gobot_on_trade_closed", trade=trade(symbol, pnl=pnl, closed_at=bot.clock.now()))


def tick(bot, minutes=0):
    bot.clock.advance(minutes * 60)
    notify(bot, "gobot_on_scan_end", snapshots=[])


def verdict(bot, symbol="BTC/USDT") -> RiskVerdict:
    return judge(bot, make_intent(symbol, tag=f"i{bot.clock.now():%H%M}"), plugin="circuit_breaker")


def transitions(bot) -> list[tuple[str, str]]:
    return [(a.data["from"], a.data["to"]) for a in bot.ctx.pending_alerts
            if a.kind == "circuit_breaker" and "to" in a.data]


def probe_goes_out(bot, symbol="BTC/USDT"):
    """The approved probe is placed and filled, as the executor and the core report it."""
    probe = breaker(bot)["probe"]
    order = Order(id="o-" + probe["client_order_id"], client_order_id=probe["client_order_id"],
                  intent_id=probe["intent_id"], symbol=symbol, side=Side.BUY, amount=0.1, created_at=bot.clock.now())
    notify(bot, "gobot_on_order", order=order)
    notify(bot, "gobot_on_fill", fill=Fill(order_id=order.id, client_order_id=order.client_order_id, symbol=symbol,
                                           side=Side.BUY, purpose="open", amount=0.1, price=100.0,
                                           time=bot.clock.now()))


def test_three_losing_trades_open_it(replay_bot):
    bot = breaker_bot(replay_bot)
    closed_trades(bot, -1, -1)
    assert verdict(bot).approved and breaker(bot)["state"] == "CLOSED"
    closed_trades(bot, -1)
    assert breaker(bot)["state"] == "OPEN"
    assert verdict(bot).reason == ("circuit breaker OPEN since 01-01 16:40 UTC (3 consecutive losing trades "
                                   "(last: BTC/USDT -1.00 USDT), circuit_breaker_threshold 3); "
                                   "one probe trade allowed after 01-01 17:10 UTC")
    [alert] = [a for a in bot.ctx.pending_alerts if a.kind == "circuit_breaker"]
    assert alert.title == "Circuit breaker CLOSED -> OPEN" and alert.severity.value == "CRITICAL"
    assert "one probe trade allowed after 01-01 17:10 UTC (30 min)" in alert.text


def test_a_winning_trade_ends_the_losing_streak(replay_bot):
    bot = breaker_bot(replay_bot)
    closed_trades(bot, -1, -1, 0.5, -1, -1)
    assert breaker(bot)["state"] == "CLOSED" and breaker(bot)["consecutive_losses"] == 2


def test_half_open_lets_one_probe_through_and_a_win_closes_it(replay_bot):
    bot = breaker_bot(replay_bot)
    closed_trades(bot, -1, -1, -1)
    tick(bot, 29)
    assert breaker(bot)["state"] == "OPEN" and not verdict(bot).approved
    tick(bot, 1)
    assert breaker(bot)["state"] == "HALF_OPEN"
    first = verdict(bot, "BTC/USDT")
    assert first.approved and first.reason == "breaker HALF_OPEN: this is the probe trade"
    assert verdict(bot, "ETH/USDT").reason == ("circuit breaker HALF_OPEN: the probe trade on BTC/USDT must win "
                                               "before more trades")
    probe_goes_out(bot)
    closed_trades(bot, 0.8)
    assert breaker(bot)["state"] == "CLOSED" and verdict(bot, "ETH/USDT").approved
    assert transitions(bot) == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


def test_a_losing_probe_reopens_it_and_the_timeout_doubles_up_to_its_cap(replay_bot):
    bot = breaker_bot(replay_bot, max_consecutive_losses=100)
    closed_trades(bot, -1, -1, -1)
    waits = [breaker(bot)["timeout_minutes"]]
    for _ in range(4):
        tick(bot, waits[-1])
        assert breaker(bot)["state"] == "HALF_OPEN" and verdict(bot).approved
        probe_goes_out(bot)
        closed_trades(bot, -1)
        assert breaker(bot)["state"] == "OPEN"
        waits.append(breaker(bot)["timeout_minutes"])
    assert waits == [30, 60, 120, 240, 240]
    assert "the probe trade lost" in breaker(bot)["reason"]


def test_a_probe_that_never_went_out_frees_its_slot(replay_bot):
    bot = breaker_bot(replay_bot)
    closed_trades(bot, -1, -1, -1)
    tick(bot, 30)
    assert verdict(bot, "BTC/USDT").approved  # approved here, then vetoed by another plugin: never ordered
    notify(bot, "gobot_on_cycle_end", report=CycleReport(run_id=bot.state.run_id, iteration=1, time=bot.clock.now()))
    assert verdict(bot, "ETH/USDT").reason == "breaker HALF_OPEN: this is the probe trade"


def test_a_probe_order_that_ended_unfilled_frees_its_slot(replay_bot):
    bot = breaker_bot(replay_bot)
    closed_trades(bot, -1, -1, -1)
    tick(bot, 30)
    assert verdict(bot, "BTC/USDT").approved
    probe = breaker(bot)["probe"]
    notify(bot, "gobot_on_order", order=Order(  # e.g. a market order that expired with nothing filled
        id="o1", client_order_id=probe["client_order_id"], intent_id=probe["intent_id"], symbol="BTC/USDT",
        side=Side.BUY, amount=0.1, status="canceled", created_at=bot.clock.now(),
        reason="expired on the exchange, nothing filled"))
    assert breaker(bot)["state"] == "HALF_OPEN"
    assert verdict(bot, "ETH/USDT").reason == "breaker HALF_OPEN: this is the probe trade"


def test_a_profitable_day_resets_the_recovery_timeout(replay_bot):
    bot = breaker_bot(replay_bot, max_consecutive_losses=100)
    tick(bot)
    closed_trades(bot, -1, -1, -1)
    tick(bot, 30)
    verdict(bot)
    probe_goes_out(bot)
    closed_trades(bot, -1)
    assert breaker(bot)["timeout_minutes"] == 60
    hold(bot, "ETH/USDT", notional=10, price=100.0)
    bot.portfolio.mark({"ETH/USDT": 110.0})  # the day ends 1 USD up
    tick(bot, 8 * 60)  # past midnight
    assert breaker(bot)["timeout_minutes"] == 30
    assert any(a.title == "Circuit breaker recovery timeout back to 30 min" for a in bot.ctx.pending_alerts)


def failure(kind="network", plugin="binance"):
    return ExecutionError(message=f"{kind} trouble", kind=kind, symbol="BTC/USDT", plugin=plugin)


def test_five_execution_failures_in_the_window_open_it(replay_bot):
    bot = breaker_bot(replay_bot)
    for kind in ("network", "timeout", "rejected", "rate_limited"):
        notify(bot, "gobot_on_execution_error", error=failure(kind))
    assert breaker(bot)["state"] == "CLOSED"
    notify(bot, "gobot_on_execution_error", error=failure("error"))
    assert breaker(bot)["state"] == "OPEN"
    assert breaker(bot)["reason"] == ("5 execution failures in 60 min (failure_threshold 5; "
                                      "last: error from binance: error trouble)")


def test_failures_spread_wider_than_the_window_do_not(replay_bot):
    bot = breaker_bot(replay_bot)
    for _ in range(8):
        notify(bot, "gobot_on_execution_error", error=failure())
        bot.clock.advance(16 * 60)
    assert breaker(bot)["state"] == "CLOSED" and len(breaker(bot)["failures"]) == 4


def test_an_exchange_ban_opens_it_at_once(replay_bot):
    bot = breaker_bot(replay_bot)
    notify(bot, "gobot_on_execution_error", error=failure("banned"))
    assert breaker(bot)["state"] == "OPEN"
    assert breaker(bot)["reason"] == "exchange ban (banned from binance: banned trouble)"


def test_a_long_losing_streak_is_a_hard_stop_until_reset(replay_bot):
    bot = breaker_bot(replay_bot)
    closed_trades(bot, -1, -1, -1, -1, -1)  # OPEN at 3, the 4th and 5th come from positions already open
    assert breaker(bot)["state"] == "HARD_STOP"
    tick(bot, 3 * 24 * 60)
    assert breaker(bot)["state"] == "HARD_STOP"
    assert verdict(bot).reason.endswith(": `gobot risk reset` needed")
    answers = asyncio.run(bot.risk_reset("reviewed the losses"))
    assert ("circuit_breaker", "HARD_STOP -> CLOSED; losing streak 5 -> 0, recovery timeout back to 30 min, "
                               "equity peak re-based") in answers
    assert breaker(bot)["state"] == "CLOSED" and verdict(bot).approved
    events = [json.loads(line) for line in bot.audit_log.path.read_text().splitlines()]
    assert [e["reason"] for e in events if e["event"] == "risk_reset"] == ["reviewed the losses"]


class LongWithSize:
    """Goes LONG the first symbol in cycle 1 with a fixed notional, HOLD afterwards."""

    def __init__(self, notional):
        self.notional = notional

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        action = Action.LONG if ctx.iteration == 1 else Action.HOLD
        return [Signal(symbol=s.symbol, action=action, confidence=0.9) for s in snapshots[:1]]

    @hookimpl(tryfirst=True)
    def gobot_size_position(self):
        return self.notional


class Spy:
    def __init__(self):
        self.sent = []

    @hookimpl(tryfirst=True)
    def gobot_execute_order(self, ctx, intent):
        self.sent.append((ctx.iteration, intent))  # answers None: paper still executes


def crash_market(folder, crash_at: datetime, depth=0.3):
    """Flat 100 +- noise for two days, a crash of ``depth`` in one candle at ``crash_at``, flat after."""
    folder.mkdir()
    start = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    crash = int(crash_at.timestamp() * 1000)
    rows = ["timestamp_ms,open,high,low,close,volume"]
    for i in range(3 * 288):
        ts = start + i * 300_000
        level = 100.0 * (1 - depth if ts >= crash else 1) + (0.2 if i % 2 else -0.2)
        rows.append(f"{ts},{level},{level + 0.1},{level - 0.1},{level},1")
    (folder / "BTC_USDT-5m.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_a_drawdown_is_an_emergency_stop_that_closes_positions_at_critical_priority(replay_bot, run_bot, tmp_path):
    crash = datetime(2026, 1, 1, 18, 0, tzinfo=timezone.utc)
    spy = Spy()
    bot = replay_bot(
        config={"trading": {"symbols": ["BTC/USDT"], "max_position_usd": 100, "stop_loss_percent": 90,
                            "take_profit_percent": 190},
                "orchestrator": {"max_daily_loss": 1e6},
                "plugins": {"replay": {"data_dir": str(crash_market(tmp_path / "crash", crash))},
                            "risk_limits": {"max_total_exposure_usd": 1000},
                            "circuit_breaker": DESIGN_BREAKER}},
        plugins=[("long", LongWithSize(90.0)), ("spy", spy)], disable=["sma_rsi", "validator", "adjuster"],
    )
    run_bot(bot, 12)
    state = breaker(bot)
    assert state["state"] == "HARD_STOP" and state["reason"].startswith(
        "emergency stop: drawdown 26.9% from the equity peak")
    stopped = [e for e in map(json.loads, bot.audit_log.path.read_text().splitlines())
               if e["event"] == "circuit_breaker" and e["to_state"] == "HARD_STOP"]
    closes = [(i, intent) for i, intent in spy.sent if intent.purpose == "close"]
    assert closes and closes[0][0] == stopped[0]["iteration"], "the close goes out in the cycle the stop happened"
    assert all(intent.priority is Priority.CRITICAL and intent.reason.startswith("circuit breaker emergency stop")
               for _, intent in closes)
    assert not bot.state.positions and bot.state.trades[-1].exit_reason == "signal"
    assert [i for i, intent in spy.sent if intent.purpose == "open"] == [1]


def test_its_state_survives_a_restart(replay_bot, run_bot, tmp_path):
    class KillWhenOpen:
        @hookimpl
        def gobot_on_cycle_end(self, ctx):
            if ctx.plugin_state("circuit_breaker").get("state") == "OPEN":
                ctx.kill("test: the breaker opened")

    bot = breaker_bot(replay_bot, plugins=[("killer", KillWhenOpen())])
    outcome = run_bot(bot, 80)
    assert "kill switch" in outcome.reason and breaker(bot)["state"] == "OPEN"
    progress = json.loads((tmp_path / "state" / "progress.json").read_text())
    assert progress["breaker"] == "OPEN"
    saved, limits = dict(breaker(bot)), dict(bot.state.plugin_state["risk_limits"])
    assert limits["opens"] and limits["last_close"], "risk_limits counted the run's trades"
    bot.settings.kill_switch_path.unlink()
    again = breaker_bot(replay_bot)
    assert again.resumed_from == bot.state.iteration
    assert {k: again.state.plugin_state["risk_limits"][k] for k in ("opens", "last_close", "day", "week")} == \
           {k: limits[k] for k in ("opens", "last_close", "day", "week")}
    assert {k: breaker(again)[k] for k in ("state", "since", "retry_at", "consecutive_losses")} == \
           {k: saved[k] for k in ("state", "since", "retry_at", "consecutive_losses")}
    assert verdict(again).reason.startswith("circuit breaker OPEN since")


class WallClock:
    """A wall clock (not simulated) standing at a chosen time."""

    simulated = False
    end = None

    def __init__(self, now):
        self._now = now

    def now(self):
        return self._now

    def advance(self, seconds):
        pass


class AtTime:
    def __init__(self, now):
        self.now = now

    @hookimpl(tryfirst=True)
    def gobot_clock(self):
        return WallClock(self.now)


def test_a_new_run_on_the_wall_clock_inherits_the_breaker_and_a_replay_does_not(replay_bot, tmp_path):
    wall = breaker_bot(replay_bot, plugins=[("clock", AtTime(T0))])
    closed_trades(wall, -1, -1, -1, -1, -1)
    notify(wall, "gobot_on_trade_closed", trade=trade("ETH/USDT", pnl=-1))  # risk_limits' ledger, too
    wall.finish("test: the run is over")
    after = breaker_bot(replay_bot, plugins=[("clock", AtTime(T0 + timedelta(hours=1)))])
    assert after.state.run_id != wall.state.run_id
    assert breaker(after)["state"] == "HARD_STOP" and not verdict(after).approved
    assert "ETH/USDT" in after.state.plugin_state["risk_limits"]["last_close"]
    after.finish("test: again")
    replay = breaker_bot(replay_bot)  # a replay is a new simulation: it starts clean
    assert "circuit_breaker" not in replay.state.plugin_state and verdict(replay).approved


def test_replacing_the_breaker_leaves_risk_limits_in_force(replay_bot):
    class MyBreaker:
        @hookimpl
        def gobot_risk_check(self):
            return RiskVerdict(approved=True, reason="my breaker: fine")

    bot = replay_bot(disable=["circuit_breaker"], plugins=[("my_breaker", MyBreaker())])
    assert "circuit_breaker" not in bot.plugin_set.enabled and "risk_limits" in bot.plugin_set.enabled
    from risk_helpers import verdicts

    got = verdicts(bot, make_intent(confidence=0.5))
    assert got["my_breaker"].approved and not got["risk_limits"].approved
    assert set(got) == {"my_breaker", "risk_limits"}
