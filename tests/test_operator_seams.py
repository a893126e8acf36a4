"""What plugins can ask of the core: candle history, pause/kill, emergency closes; the heartbeat."""

import json
from datetime import datetime

from gobot_hookspecs import Priority, hookimpl


def test_candles_are_history_closed_by_now_in_any_timeframe(replay_bot, run_bot):
    got = {}

    class Reader:
        @hookimpl
        async def gobot_generate_ideas(self, ctx):
            if ctx.iteration == 2:
                got["hourly"] = await ctx.candles("ETH/USDT", "1h", 24)
                got["now"] = ctx.now()
                try:
                    await ctx.candles("DOGE/USDT", "1h", 5)
                except LookupError as exc:
                    got["missing"] = str(exc)

    run_bot(replay_bot(plugins=[("reader", Reader())]), 2)
    hourly, now = got["hourly"], got["now"]
    assert 0 < len(hourly) <= 24 and hourly.timeframe == "1h"
    assert all(b - a == 3_600_000 for a, b in zip(hourly.timestamp, hourly.timestamp[1:]))
    assert hourly.timestamp[-1] + 3_600_000 <= now.timestamp() * 1000, "no candle that closes after now"
    assert "DOGE/USDT" in got["missing"]


def test_close_positions_sends_critical_closes_even_when_killed(replay_bot, run_bot):
    sent = []

    class Panic:
        @hookimpl
        def gobot_on_scan_end(self, ctx):
            if ctx.positions():
                ctx.kill("test: emergency")
                ctx.close_positions("test: emergency")

        @hookimpl(tryfirst=True)
        def gobot_execute_order(self, intent):
            sent.append(intent)  # a spy: answers None, so paper still executes

    bot = replay_bot(plugins=[("panic", Panic())])
    outcome = run_bot(bot, 30)
    assert "kill switch" in outcome.reason
    closes = [i for i in sent if i.purpose == "close"]
    assert closes and all(i.priority is Priority.CRITICAL and i.reason == "test: emergency" for i in closes)
    assert {i.symbol for i in closes} == set(bot.state.positions), "every open position is being closed"
    assert not [i for i in sent if i.purpose == "open" and i.created_at == closes[0].created_at]


def test_pause_and_kill_from_a_plugin(replay_bot, run_bot):
    class Operator:
        @hookimpl
        def gobot_on_cycle_end(self, ctx, report):
            if report.iteration == 2:
                ctx.pause("operator said so")
            if report.iteration == 4:
                ctx.kill("operator said stop")

    bot = replay_bot(plugins=[("operator", Operator())])
    outcome = run_bot(bot, 10)
    assert bot.state.iteration == 4 and "kill switch" in outcome.reason
    assert bot.store.paused and [row.note for row in bot.state.cycles][2:] == ["paused", "paused"]
    events = [json.loads(line)["event"] for line in bot.audit_log.path.read_text().splitlines()]
    assert "paused" in events and "kill_switch" in events


def test_heartbeat_is_written_with_wall_clock_time(replay_bot, run_bot, tmp_path):
    run_bot(replay_bot(), 3)
    beat = json.loads((tmp_path / "state" / "heartbeat.json").read_text())
    assert beat["iteration"] == 3 and beat["pid"] > 0
    assert abs((datetime.fromisoformat(beat["time"])
                - datetime.now(datetime.fromisoformat(beat["time"]).tzinfo)).total_seconds()) < 60
