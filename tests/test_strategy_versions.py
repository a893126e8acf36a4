"""The adjust and validate phases: a losing streak makes a new strategy version; a failed validation reverts it."""

from datetime import datetime, timezone

from gobot_hookspecs import Action, Trade, ValidationResult, hookimpl


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


def test_a_failed_validation_reverts_the_adjustment(replay_bot, run_bot):
    class Strict:
        @hookimpl
        def gobot_validate_strategy(self, strategy):
            return ValidationResult(strategy=strategy.name, version=strategy.version, passed=strategy.version == 1,
                                    reason="only v1 is trusted")

    bot = replay_bot(plugins=[("strict", Strict())])
    bot.state.trades.extend(losing_trades(4))
    run_bot(bot, 1)
    assert bot.state.strategies["sma_rsi"].version == 1
    assert [v.version for v in bot.state.strategy_history] == [1, 2], "the rejected version stays in the history"


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
