"""Running a bot: stopping rules, kill switch, pause, signals-only mode, fail-closed risk, resume."""

import json

from gobot_hookspecs import Action, Alert, Learning, RiskVerdict, hookimpl


class CycleHook:
    """Calls ``action(ctx, report)`` at the end of every cycle."""

    def __init__(self, action):
        self.action = action

    @hookimpl
    def gobot_on_cycle_end(self, ctx, report):
        self.action(ctx, report)


def comparable(bot):
    """Trades and positions, without the run-specific client order ids."""
    return [t.model_dump(mode="json", exclude={"client_order_id"}) for t in bot.state.trades], {
        s: p.model_dump(mode="json", exclude={"client_order_id"}) for s, p in bot.state.positions.items()
    }


def test_replay_is_deterministic(replay_bot, run_bot, tmp_path):
    first = replay_bot(state_dir=tmp_path / "a")
    second = replay_bot(state_dir=tmp_path / "b")
    run_bot(first, 40)
    run_bot(second, 40)
    assert first.state.trades, "the demo strategy should trade in 40 cycles"
    assert comparable(first) == comparable(second)
    assert [c.equity for c in first.state.cycles] == [c.equity for c in second.state.cycles]


def test_run_ends_at_max_iterations_and_next_start_is_a_new_run(replay_bot, run_bot, tmp_path):
    bot = replay_bot()
    outcome = run_bot(bot, 3)
    assert outcome.finished and "max_iterations" in outcome.reason
    assert bot.state.iteration == 3 and bot.state.finished
    old_run = bot.state.run_id
    again = replay_bot()
    assert again.state.run_id != old_run and again.state.iteration == 0
    assert (tmp_path / "state" / "runs" / f"{old_run}.json").exists()


def test_a_new_run_on_the_wall_clock_takes_over_the_account_and_a_replay_starts_empty(replay_bot, tmp_path):
    """Positions, working orders and the executor's book belong to the account, not to a run."""
    import asyncio

    from gobot_hookspecs import Fill, Side
    from risk_helpers import make_intent

    wall = replay_bot(disable=["replay"])
    assert not wall.clock.simulated
    wall.portfolio.apply_fill(Fill(order_id="1", client_order_id="gbheld", symbol="BTC/USDT", side=Side.BUY,
                                   purpose="open", amount=0.5, price=100.0, time=wall.ctx.now()), None)
    working = make_intent(symbol="ETH/USDT", tag="gbworking")
    wall.state.intents[working.client_order_id] = working
    _, wall.state.open_orders[working.client_order_id] = asyncio.run(
        wall.hooks.first("gobot_execute_order", ctx=wall.ctx, intent=working))
    wall.finish("max_iterations (1) reached")

    after = replay_bot(disable=["replay"])
    assert after.state.run_id != wall.state.run_id and after.state.iteration == 0
    assert after.state.positions == wall.state.positions
    assert set(after.state.open_orders) == set(after.state.intents) == {working.client_order_id}
    assert working.client_order_id in after.state.plugin_state["paper"]["pending"]  # the paper fills it later
    asyncio.run(after.startup())
    audit = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    started = [entry for entry in audit if entry["event"] == "run_started"][-1]
    assert started["positions_carried"] == ["BTC/USDT"]
    assert started["previous_run"] == wall.state.run_id
    after.finish("max_iterations (1) reached")

    replay = replay_bot()  # a replay is a new simulation: it starts with the configured capital alone
    assert replay.state.positions == {} and replay.state.open_orders == {} and "paper" not in replay.state.plugin_state


def test_kill_switch_stops_the_loop_after_persisting_and_start_resumes_after_resume(replay_bot, run_bot, tmp_path):
    def kill_at_three(ctx, report):
        if report.iteration == 3:
            ctx.config.kill_switch_path.write_text("test")

    bot = replay_bot(plugins=[("killer", CycleHook(kill_at_three))])
    outcome = run_bot(bot, 10)
    assert "kill switch" in outcome.reason and not outcome.finished
    assert bot.state.iteration == 3
    kinds = [json.loads(line)["alert"]["kind"] for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()
             if '"event": "alert"' in line]
    assert "kill_switch" in kinds

    bot.settings.kill_switch_path.unlink()  # what `gobot resume` does
    resumed = replay_bot()
    assert resumed.resumed_from == 3 and resumed.state.run_id == bot.state.run_id
    run_bot(resumed, 5)
    assert resumed.state.iteration == 5


def test_kill_switch_blocks_orders_in_the_cycle_it_appears(replay_bot, run_bot):
    class KillBeforeExecute:
        @hookimpl
        def gobot_risk_check(self, ctx, intent):
            ctx.config.kill_switch_path.write_text("test")
            return RiskVerdict(approved=True, reason="ok")

    bot = replay_bot(config={"plugins": {"risk_limits": {"min_confidence_threshold": 0.0}}},
                     plugins=[("kill_before_execute", KillBeforeExecute())])
    run_bot(bot, 50)
    assert bot.state.iteration >= 1
    assert not bot.state.positions and not bot.state.open_orders and not bot.state.trades


def test_pause_keeps_scanning_but_opens_nothing(replay_bot, run_bot):
    bot = replay_bot()
    bot.store.set_paused(True)
    run_bot(bot, 20)
    assert bot.state.iteration == 20
    assert not bot.state.positions and not bot.state.trades
    assert all(row.note == "paused" for row in bot.state.cycles)
    assert any("L" in row.signals and not row.signals.startswith("0L 0S") for row in bot.state.cycles)


def test_signals_only_mode_proposes_orders_and_sends_none(replay_bot, run_bot):
    sent = []

    class Executor:
        @hookimpl
        def gobot_execute_order(self, intent):
            sent.append(intent)

    bot = replay_bot(config={"trading": {"auto_execute": False}}, plugins=[("spy_executor", Executor())])
    run_bot(bot, 30)
    assert not sent and not bot.state.positions and not bot.state.trades
    events = [json.loads(line) for line in bot.audit_log.path.read_text().splitlines()]
    proposed = [e for e in events if e["event"] == "order_proposed"]
    assert proposed and all(e["order"]["status"] == "proposed" for e in proposed)
    assert any(e["event"] == "alert" and e["alert"]["kind"] == "order_proposed" for e in events)


def test_a_raising_risk_plugin_vetoes_every_new_position(replay_bot, run_bot):
    class Broken:
        @hookimpl
        def gobot_risk_check(self, intent):
            raise RuntimeError("lost my database")

    bot = replay_bot(plugins=[("broken_risk", Broken())])
    run_bot(bot, 30)
    assert not bot.state.trades and not bot.state.positions
    assert bot.state.vetoes
    assert all("broken_risk: risk check raised RuntimeError: lost my database (fail closed)" in v["reasons"]
               for v in bot.state.vetoes)


def test_no_risk_plugin_means_no_trade(replay_bot, run_bot):
    bot = replay_bot(disable=["risk_limits", "circuit_breaker"])
    run_bot(bot, 30)
    assert not bot.state.trades and not bot.state.positions
    assert all("no risk plugin answered (fail closed)" in v["reasons"] for v in bot.state.vetoes)


def test_a_failing_signal_plugin_is_named_and_the_loop_goes_on(replay_bot, run_bot):
    reports = []

    class Broken:
        @hookimpl
        def gobot_generate_ideas(self, snapshots):
            raise ValueError("model offline")

    bot = replay_bot(plugins=[("broken_signal", Broken()), ("recorder", CycleHook(lambda ctx, r: reports.append(r)))])
    run_bot(bot, 5)
    assert bot.state.iteration == 5
    assert all(any("plugin 'broken_signal' failed in gobot_generate_ideas: ValueError: model offline" in e
                   for e in r.errors) for r in reports)
    assert all(r.signals for r in reports), "the built-in signal plugin still answered"


def test_learnings_reach_later_cycles_idea_generation(replay_bot, run_bot):
    seen = {}

    class Learner:
        @hookimpl
        def gobot_generate_ideas(self, ctx, learnings):
            seen[ctx.iteration] = [item.text for item in learnings]
            if ctx.iteration == 2:
                ctx.add_learning(Learning(text="bearish trend detected on ETH/USDT 1h", evidence={"trend": "bearish"},
                                          symbol="ETH/USDT", source="learner"))

    bot = replay_bot(plugins=[("learner", Learner())])
    run_bot(bot, 4)
    assert "bearish trend detected on ETH/USDT 1h" not in seen[2]
    assert "bearish trend detected on ETH/USDT 1h" in seen[3]
    assert "bearish trend detected on ETH/USDT 1h" in seen[4]


def test_daily_loss_limit_ends_the_run(replay_bot, run_bot):
    class HugeSizer:
        @hookimpl
        def gobot_size_position(self, ctx):
            return 10_000.0

    bot = replay_bot(
        config={"orchestrator": {"max_daily_loss": 0.5, "daily_profit_target": 1_000_000},
                "plugins": {"risk_limits": {"max_total_exposure_usd": 1e9}},
                "trading": {"max_position_usd": 1e6}},
        plugins=[("huge_sizer", HugeSizer())],
    )
    outcome = run_bot(bot, 200)
    assert outcome.finished and outcome.reason.startswith("max daily loss reached")
    assert bot.daily_pnl() <= -0.5
    assert bot.state.iteration < 200


def test_secrets_never_reach_state_audit_or_alerts(replay_bot, run_bot, monkeypatch, tmp_path):
    secret = "SECRET-binance-key-1234567890"
    monkeypatch.setenv("BINANCE_API_KEY", secret)
    monkeypatch.setenv("TELEGRAM_TOKEN", "123456:telegram-token-abcdef")
    delivered = []

    class Leaky:
        @hookimpl
        def gobot_generate_ideas(self, ctx):
            ctx.alert(Alert(kind="oops", title=f"key is {secret}"))
            ctx.add_learning(Learning(text=f"learned {secret}", source="leaky"))
            ctx.plugin_state("leaky")["note"] = secret
            import logging

            logging.getLogger("leaky").error("token 123456:telegram-token-abcdef leaked")

        @hookimpl
        def gobot_send_alert(self, alert):
            delivered.append(alert)

    from gobot.cli.common import setup_logging

    bot = replay_bot(plugins=[("leaky", Leaky())])
    setup_logging(bot.settings)
    run_bot(bot, 3)
    # Every file, the archive database included (SQLite keeps text as UTF-8 bytes).
    written = "".join(p.read_bytes().decode("utf-8", "replace") for p in (tmp_path / "state").rglob("*") if p.is_file())
    assert "gobot.log" in {p.name for p in (tmp_path / "state").iterdir()}
    assert secret not in written and "telegram-token-abcdef" not in written
    assert "***" in written


def test_state_files_are_owner_only(replay_bot, run_bot, tmp_path):
    bot = replay_bot()
    run_bot(bot, 2)
    state_dir = tmp_path / "state"
    assert state_dir.stat().st_mode & 0o077 == 0
    from gobot.cli.common import setup_logging

    setup_logging(bot.settings)
    for name in ("state.json", "state.json.bak", "progress.json", "audit.jsonl", "heartbeat.json", "gobot.log"):
        assert (state_dir / name).stat().st_mode & 0o077 == 0, name


def test_a_kill_switch_or_pause_from_a_plugin_or_the_dashboard_is_owner_only(replay_bot, run_bot, tmp_path):
    """ctx.kill (the dashboard's kill button, Telegram /kill) and ctx.pause write 0600 files, like the rest of
    the state."""
    def control(ctx, report):
        ctx.pause("test")
        ctx.kill("test")

    run_bot(replay_bot(plugins=[("control", CycleHook(control))]), 3)
    for name in ("KILL", "PAUSED"):
        assert (tmp_path / "state" / name).stat().st_mode & 0o777 == 0o600, name


def test_progress_json_is_rewritten_after_cycles_at_most_once_a_wall_second_on_a_simulated_clock(
        replay_bot, run_bot, tmp_path, monkeypatch):
    from gobot.run import bot as bot_module

    iterations = []

    def read_progress(ctx, report):
        iterations.append(json.loads((tmp_path / "state" / "progress.json").read_text())["iteration"])

    monkeypatch.setattr(bot_module, "REPLAY_PROGRESS_SECONDS", 3600.0)
    run_bot(replay_bot(plugins=[("reader", CycleHook(read_progress))]), 4)
    assert iterations == [1, 1, 1, 1]  # the first cycle's, then none within the hour
    progress = json.loads((tmp_path / "state" / "progress.json").read_text())
    assert progress["iteration"] == 4 and progress["finished"], "the run's end writes the last cycle's"
    assert set(progress) >= {"phase_ms", "pnl", "open_positions", "breaker", "learnings", "equity"}


def test_progress_json_is_rewritten_each_cycle_once_the_interval_passed(replay_bot, run_bot, tmp_path, monkeypatch):
    from gobot.run import bot as bot_module

    iterations = []

    def read_progress(ctx, report):
        iterations.append(json.loads((tmp_path / "state" / "progress.json").read_text())["iteration"])

    monkeypatch.setattr(bot_module, "REPLAY_PROGRESS_SECONDS", 0.0)
    run_bot(replay_bot(plugins=[("reader", CycleHook(read_progress))]), 4)
    assert iterations == [1, 2, 3, 4]


def test_wall_clock_runs_are_scheduled_by_apscheduler(replay_bot, run_bot):
    """Without a simulated clock the same cycle code runs every loop_interval seconds."""
    from datetime import timezone

    from gobot_hookspecs import Candles, MarketSnapshot

    class LiveFeed:
        grid = None

        @hookimpl
        def gobot_scan_market(self, ctx):
            self.grid = self.grid or runner.scheduler.get_job("cycle").trigger.start_date
            now = ctx.now()
            ms = int(now.timestamp() * 1000) // 300_000 * 300_000 - 300_000
            prices = [100.0 + (i % 7) for i in range(60)]
            candles = Candles(timeframe="5m", timestamp=[ms - (59 - i) * 300_000 for i in range(60)], open=prices,
                              high=[p + 1 for p in prices], low=[p - 1 for p in prices], close=prices,
                              volume=[1.0] * 60)
            return [MarketSnapshot(symbol="BTC/USDT", time=now, price=prices[-1], candles=candles)]

    import asyncio

    from gobot.run.runner import Runner

    bot = replay_bot(config={"orchestrator": {"loop_interval": 0.05}}, disable=["replay"],
                     plugins=[("live_feed", feed := LiveFeed())])
    assert not bot.clock.simulated
    runner = Runner(bot, 3)
    outcome = asyncio.run(runner.run())
    assert outcome.finished and bot.state.iteration == 3
    times = [row.time for row in bot.state.cycles]
    assert all(t.tzinfo is not None and t.tzinfo.utcoffset(t) == timezone.utc.utcoffset(t) for t in times)
    # The first cycle runs at once; then the interval trigger fires on a fixed grid from its start date:
    # cycle k (k >= 1) never starts before start + (k - 1) * interval, however late the ones before it ran.
    grid = feed.grid
    early = [(grid - t).total_seconds() - (k - 1) * 0.05 for k, t in enumerate(times) if k >= 1]
    assert all(seconds <= 0.001 for seconds in early), early


def test_a_chat_id_is_data_not_a_secret_and_stays_in_the_audit_log(replay_bot, run_bot, monkeypatch, tmp_path):
    monkeypatch.setenv("TELEGRAM_CHAT_ID", "987654321")  # not a secret (issue 16, finding 2): never masked

    class Chatty:
        @hookimpl
        def gobot_generate_ideas(self, ctx):
            ctx.audit("chat", chat_id=987654321, text="sent to 987654321")

    run_bot(replay_bot(plugins=[("chatty", Chatty())]), 2)
    events = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    chats = [e for e in events if e["event"] == "chat"]
    assert chats and all(e["chat_id"] == 987654321 and e["text"] == "sent to 987654321" for e in chats)


def test_the_most_confident_idea_for_a_symbol_is_the_one_considered(replay_bot, run_bot):
    from gobot_hookspecs import Signal

    considered = []

    class Sure:
        @hookimpl
        def gobot_generate_ideas(self, snapshots):
            return [Signal(symbol=s.symbol, action=Action.SHORT, confidence=0.99, rationale="sure") for s in snapshots]

    class Spy:
        @hookimpl
        def gobot_risk_check(self, intent):
            considered.append(intent)

    bot = replay_bot(plugins=[("a_sure", Sure()), ("spy", Spy())])
    run_bot(bot, 3)
    considered = [i for i in considered if i.client_order_id.startswith("gb")]  # not the validator's backtests
    assert considered and all(i.signal.source == "a_sure" and i.side.value == "sell" for i in considered)
