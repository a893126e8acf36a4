"""The adjust and validate phases: a losing streak makes a proposal, a version once every validator accepts it;
a rejected proposal is remembered; the active version is judged on new evidence, and a failure has its action."""

import json
from datetime import datetime, timezone

from gobot_hookspecs import Action, Position, RiskVerdict, Trade, ValidationResult, hookimpl


def losing_trades(count, version=1):
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [
        Trade(symbol="BTC/USDT", direction=Action.LONG, amount=0.1, entry_price=100, exit_price=98, opened_at=when,
              closed_at=when, fees=0.02, pnl=-0.22, exit_reason="stop_loss", strategy="sma_rsi",
              strategy_version=version)
        for _ in range(count)
    ]


def test_a_losing_streak_makes_a_new_version_with_its_reason(replay_bot, run_bot):
    bot = replay_bot()
    bot.state.trades.extend(losing_trades(4))
    run_bot(bot, 1)
    history = bot.state.strategy_history
    assert [v.version for v in history] == [1, 2]
    assert history[1].params["slow"] == history[0].params["slow"] + 2
    assert "won 0 of the last 4" in history[1].reason and history[1].reason.startswith("adjuster:")
    assert bot.state.strategies["sma_rsi"].version == 2, "the validator let it through"


def test_too_few_trades_keep_the_version_and_say_why(replay_bot, run_bot):
    reports = []

    class Recorder:
        @hookimpl
        def gobot_report(self, report):
            reports.append(report)

    bot = replay_bot(plugins=[("recorder", Recorder())])
    bot.state.trades.extend(losing_trades(2))
    run_bot(bot, 1)
    assert bot.state.strategies["sma_rsi"].version == 1
    assert any("2 closed trades on v1, need 3" in line for line in reports[0].phase("adjust").records)


NO_ORDERS = {"trading": {"auto_execute": False}}  # no trade of the run's own: the evidence is the test's


class Strict:
    """Trusts v1 only: every proposal is rejected."""

    def __init__(self):
        self.judged = []
        self.trust_all = False

    @hookimpl
    def gobot_validate_strategy(self, ctx, strategy):
        self.judged.append((ctx.iteration, strategy.version))
        return ValidationResult(strategy=strategy.name, version=strategy.version,
                                passed=self.trust_all or strategy.version == 1, reason="only v1 is trusted")


class Alerts:
    def __init__(self):
        self.seen = []

    @hookimpl
    def gobot_send_alert(self, alert):
        self.seen.append(alert)


def test_a_rejected_proposal_gets_no_version_number_and_is_kept_with_its_verdict(replay_bot, run_bot):
    bot = replay_bot(plugins=[("strict", Strict())], disable=["validator"])
    bot.state.trades.extend(losing_trades(4))
    run_bot(bot, 1)
    assert bot.state.strategies["sma_rsi"].version == 1
    assert [v.version for v in bot.state.strategy_history] == [1], "a rejected proposal is not a version"
    [proposal] = bot.state.proposals
    assert (proposal.verdict, proposal.version, proposal.base_version) == ("rejected", None, 1)
    assert proposal.changes == {"slow": 28} and proposal.reasons == ["strict: only v1 is trusted"]
    assert proposal.plugin == "adjuster" and proposal.evidence == 4
    events = [json.loads(line) for line in bot.audit_log.path.read_text().splitlines()]
    [audited] = [e for e in events if e["event"] == "proposal"]
    assert audited["proposal"]["verdict"] == "rejected"


def test_a_rejected_proposal_is_not_made_again_until_new_trades_closed(replay_bot, run_bot):
    reports = []

    class Recorder:
        @hookimpl
        def gobot_report(self, report):
            reports.append(report)

    bot = replay_bot(plugins=[("strict", Strict()), ("recorder", Recorder())], disable=["validator"],
                     config={"strategy_versions": {"new_evidence_trades": 2}, **NO_ORDERS})
    bot.state.trades.extend(losing_trades(4))
    run_bot(bot, 1)
    bot.state.trades.extend(losing_trades(1))  # one new trade: not enough evidence
    run_bot(bot, 3)
    assert len(bot.state.proposals) == 1, "the same losing streak proposes the same change: refused"
    refused = [line for r in reports[1:] for line in r.phase("adjust").records if "not proposed again" in line]
    assert len(refused) == 2 and "rejected in cycle 1 (strict: only v1 is trusted); 1 of 2 new closed trades" \
        in refused[-1]
    bot.state.trades.extend(losing_trades(1))  # the second new trade: new evidence
    run_bot(bot, 4)
    assert [p.verdict for p in bot.state.proposals] == ["rejected", "rejected"]
    assert bot.state.proposals[1].evidence == 6


def test_an_accepted_proposal_becomes_the_next_version(replay_bot, run_bot):
    strict = Strict()
    bot = replay_bot(plugins=[("strict", strict)], disable=["validator"])
    bot.state.trades.extend(losing_trades(4))
    run_bot(bot, 1)
    bot.state.trades.extend(losing_trades(3))
    strict.trust_all = True
    run_bot(bot, 2)
    assert [v.version for v in bot.state.strategy_history] == [1, 2], "numbers go to accepted versions only"
    assert [(p.verdict, p.version) for p in bot.state.proposals] == [("rejected", None), ("accepted", 2)]
    assert bot.state.strategies["sma_rsi"].params["slow"] == 28


def test_the_active_version_is_judged_once_until_new_trades_close(replay_bot, run_bot):
    strict = Strict()
    bot = replay_bot(plugins=[("strict", strict)], disable=["validator", "adjuster"],
                     config={"strategy_versions": {"new_evidence_trades": 2}, **NO_ORDERS})
    run_bot(bot, 3)
    assert strict.judged == [(1, 1)], "judged when new to the run, not every cycle"
    bot.state.trades.extend(losing_trades(2))
    run_bot(bot, 5)
    assert strict.judged == [(1, 1), (4, 1)]


def failing_bot(replay_bot, action, plugins=(), config=()):
    config = dict(config)
    class Sour:
        @hookimpl
        def gobot_validate_strategy(self, strategy):
            return ValidationResult(strategy=strategy.name, version=strategy.version, passed=strategy.version != 1,
                                    reason="v1 loses")

    return replay_bot(plugins=[("sour", Sour()), *plugins], disable=["validator", "adjuster"],
                      config={"strategy_versions": {"on_active_failure": action}, **config})


def test_an_active_version_that_fails_is_kept_with_one_alert(replay_bot, run_bot):
    alerts = Alerts()
    bot = failing_bot(replay_bot, "keep", [("alerts", alerts)], NO_ORDERS)
    bot.state.trades.extend(losing_trades(3))
    run_bot(bot, 1)
    bot.state.trades.extend(losing_trades(3))
    run_bot(bot, 2)
    [alert] = [a for a in alerts.seen if a.kind == "strategy_failed"]
    assert alert.title == 'Strategy sma_rsi v1 failed validation: kept ([strategy_versions] on_active_failure = "keep")'
    assert alert.text == "sour: v1 loses" and alert.data["action"] == "keep"
    check = bot.state.strategy_checks["sma_rsi"]
    assert (check.passed, check.action, check.iteration) == (False, "keep", 2), "judged again on new evidence"


def test_stop_vetoes_new_positions_of_a_failed_version_but_not_its_exits(replay_bot, run_bot):
    reports = []

    class Recorder:
        @hookimpl
        def gobot_report(self, report):
            reports.append(report)

    bot = failing_bot(replay_bot, "stop", [("recorder", Recorder())])
    bot.state.positions["BTC/USDT"] = Position(symbol="BTC/USDT", direction=Action.SHORT, amount=0.001,
                                               entry_price=40_000, opened_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                                               strategy="sma_rsi", strategy_version=1)
    run_bot(bot, 30)
    lines = [line for r in reports for line in r.phase("validate").records]
    blocked = [line for line in lines if ": no new position — " in line]
    assert blocked[0].endswith("strategy sma_rsi v1 failed validation in cycle 1 (sour: v1 loses): no new positions "
                               "with it")
    assert not [o for r in reports for o in r.orders if o.purpose == "open"], "no position opened"
    assert [o for r in reports for o in r.orders if o.purpose == "close"], "the exit went through"


def test_revert_goes_back_to_the_last_version_that_passed(replay_bot, run_bot):
    class SourAfterTwo:
        @hookimpl
        def gobot_validate_strategy(self, ctx, strategy):
            passed = not (strategy.version == 2 and ctx.iteration > 1)
            return ValidationResult(strategy=strategy.name, version=strategy.version, passed=passed,
                                    reason="v2 lost its edge" if not passed else "fine")

    bot = replay_bot(plugins=[("sour", SourAfterTwo())], disable=["validator"],
                     config={"strategy_versions": {"on_active_failure": "revert", "new_evidence_trades": 1}})
    bot.state.trades.extend(losing_trades(4))
    run_bot(bot, 1)
    assert bot.state.strategies["sma_rsi"].version == 2
    bot.state.trades.extend(losing_trades(1, version=2))
    run_bot(bot, 2)
    assert bot.state.strategies["sma_rsi"].version == 1, "back to v1, which passed in cycle 1"
    check = bot.state.strategy_checks["sma_rsi"]
    assert (check.version, check.action, check.passed_versions) == (2, "revert", [1])


def test_a_validator_that_raises_rejects_the_proposal(replay_bot, run_bot):
    class Broken:
        @hookimpl
        def gobot_validate_strategy(self, strategy):
            raise RuntimeError("backtest data missing")

    bot = replay_bot(plugins=[("broken", Broken())], disable=["validator"])
    bot.state.trades.extend(losing_trades(4))
    run_bot(bot, 1)
    [proposal] = bot.state.proposals
    assert proposal.verdict == "rejected"
    assert proposal.reasons == ["broken: could not judge (RuntimeError: backtest data missing)"]


def test_the_validators_backtest_sizes_and_checks_entries_with_the_bots_plugins(replay_bot, run_bot):
    got = {}

    class Sizer:
        @hookimpl(tryfirst=True)
        def gobot_size_position(self, signal):
            return 7.0

    class Peek:
        @hookimpl
        def gobot_validate_strategy(self, ctx, strategy):
            snap = ctx.snapshots[0]
            got["result"] = ctx.backtest(strategy.name, strategy.params, snap.candles, snap.symbol)

    run_bot(replay_bot(plugins=[("sizer", Sizer()), ("peek", Peek())], disable=["validator"],
                       config={"trading": {"max_position_usd": 50}}), 1)
    result = got["result"]
    assert result.trades and result.start_equity == 100
    assert all(abs(t.amount * t.entry_price - 7.0) < 0.1 for t in result.trades), "sized by the sizer plugin"


def test_the_validators_backtest_asks_the_risk_plugins(replay_bot, run_bot):
    got = {}

    class Nay:
        @hookimpl
        def gobot_risk_check(self, intent):
            return RiskVerdict(approved=False, reason="nothing today")

    class Peek:
        @hookimpl
        def gobot_validate_strategy(self, ctx, strategy):
            snap = ctx.snapshots[0]
            got["result"] = ctx.backtest(strategy.name, strategy.params, snap.candles, snap.symbol)

    run_bot(replay_bot(plugins=[("nay", Nay()), ("peek", Peek())], disable=["validator"]), 1)
    assert got["result"].trades == [] and got["result"].end_equity == got["result"].start_equity


def test_changes_outside_the_declared_range_are_refused(replay_bot, run_bot):
    from gobot_hookspecs import AdjustmentDecision

    class Reckless:
        @hookimpl
        def gobot_adjust_strategy(self, strategy):
            return AdjustmentDecision(strategy=strategy.name, changes={"slow": 10_000}, reason="why not")

    bot = replay_bot(plugins=[("reckless", Reckless())], disable=["adjuster"])
    run_bot(bot, 1)
    assert bot.state.strategies["sma_rsi"].params["slow"] == 26 and len(bot.state.strategy_history) == 1


def test_strategy_versions_survive_a_restart(replay_bot, run_bot):
    bot = replay_bot()
    bot.state.trades.extend(losing_trades(4))
    run_bot(bot, 1)
    bot.state.finished = False
    bot.persist()
    again = replay_bot()
    assert again.state.strategies["sma_rsi"].version == 2


def test_gobot_status_shows_what_a_failed_version_does(replay_bot, run_bot, tmp_path, synthetic_data_dir):
    from click.testing import CliRunner

    from gobot.cli import cli

    bot = failing_bot(replay_bot, "stop", config=NO_ORDERS)
    run_bot(bot, 2)
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "state"\n[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n')
    status = json.loads(CliRunner().invoke(cli, ["status", "--config", str(config), "--json"]).output)
    check = status["strategy_checks"]["sma_rsi"]
    assert (check["passed"], check["action"], check["new_positions"]) == (False, "stop", "stopped")
    assert check["reasons"] == ["sour: v1 loses"] and check["judged_in_cycle"] == 1
    human = " ".join(CliRunner().invoke(cli, ["status", "--config", str(config)]).output.split())
    assert "Strategy sma_rsi v1: v1 FAILED validation in cycle 1 (sour: v1 loses): NO NEW POSITIONS with it" in human


def test_the_dashboard_api_shows_what_a_failed_version_does(replay_bot):
    import asyncio

    from server_support import served, until

    bot = failing_bot(replay_bot, "revert")

    async def scenario():
        async with served(bot, max_iterations=2) as (server, runner, task, client):
            await until(lambda: bot.counters.cycles >= 1, what="one cycle")
            return (await client.get("/api/status")).json()["strategies"]["sma_rsi"]

    shown = asyncio.run(scenario())
    # v1 is the only version: nothing passed to revert to, so no new positions with it
    assert (shown["passed"], shown["action"], shown["new_positions"]) == (False, "stop", "stopped")
    assert shown["reasons"] == ["sour: v1 loses"] and shown["proposals"] == {"accepted": 0, "rejected": 0}


def test_a_stopped_version_is_judged_again_after_recheck_failed_cycles_and_trades_once_it_passes(replay_bot, run_bot):
    alerts = Alerts()

    class SourUntilFive:
        @hookimpl
        def gobot_validate_strategy(self, ctx, strategy):
            return ValidationResult(strategy=strategy.name, version=strategy.version, passed=ctx.iteration >= 5,
                                    reason="fine now" if ctx.iteration >= 5 else "v1 loses")

    bot = replay_bot(plugins=[("sour", SourUntilFive()), ("alerts", alerts)], disable=["validator", "adjuster"],
                     config={"strategy_versions": {"on_active_failure": "stop", "recheck_failed_cycles": 4}})
    run_bot(bot, 4)
    assert bot.state.strategy_checks["sma_rsi"].iteration == 1, "stopped, no trades: not judged again yet"
    run_bot(bot, 5)
    check = bot.state.strategy_checks["sma_rsi"]
    assert (check.iteration, check.passed) == (5, True)
    assert [a.title for a in alerts.seen if a.kind == "strategy_failed"] == [
        "Strategy sma_rsi v1 failed validation: no new positions with it until a version passes (exits and stops "
        "go on)", "Strategy sma_rsi v1 passes validation again"]
