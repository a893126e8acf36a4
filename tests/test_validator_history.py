"""The validator's backtests: the bot's risk plugins see history before the tested candles (so a volatility
check does not veto the window's first hours for want of it), and no trade is made in that history."""

from datetime import datetime, timezone

from gobot_hookspecs import Action, RiskVerdict, Trade, hookimpl

BACKTEST_PREFIX = "bt"


class HistorySpy:
    """Approves every entry, and notes for each backtest decision its time and the candles it could read."""

    def __init__(self):
        self.decisions = []
        self.scan_starts = []

    @hookimpl
    def gobot_on_scan_end(self, snapshots):
        self.scan_starts = [snap.candles.timestamp[0] for snap in snapshots]

    @hookimpl
    async def gobot_risk_check(self, ctx, intent):
        if ctx.run_id != "backtest" and not intent.client_order_id.startswith(BACKTEST_PREFIX):
            return RiskVerdict(approved=True, reason="live")
        candles = await ctx.candles(intent.symbol, "5m", 10_000)  # the replay's own timeframe
        self.decisions.append((int(ctx.now().timestamp() * 1000), candles.timestamp[0]))
        return RiskVerdict(approved=True, reason="spy")


def losing_trades(count):
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [Trade(symbol="BTC/USDT", direction=Action.LONG, amount=0.1, entry_price=100, exit_price=98, opened_at=when,
                  closed_at=when, fees=0.02, pnl=-0.22, exit_reason="stop_loss", strategy="sma_rsi", strategy_version=1)
            for _ in range(count)]


def judged_once(replay_bot, run_bot, hours):
    spy = HistorySpy()
    bot = replay_bot({"plugins": {"validator": {"history_hours": hours}, "replay": {"warmup_candles": 400}},
                      "trading": {"auto_execute": False}},  # 200 candles of history before the scan's 200
                     plugins=[("spy", spy)], disable=["risk_limits", "circuit_breaker"])
    bot.state.trades.extend(losing_trades(4))  # the adjuster proposes: the validator backtests both versions
    run_bot(bot, 1)  # the proposal is made and judged in the first cycle
    assert spy.decisions, "the validator's backtests asked the risk plugins"
    return spy, min(spy.scan_starts)


def test_the_plugins_see_history_before_the_tested_candles_and_nothing_trades_in_it(replay_bot, run_bot):
    spy, tested_from = judged_once(replay_bot, run_bot, 24)
    assert min(first for _, first in spy.decisions) < tested_from, "history before the tested candles"
    assert min(at for at, _ in spy.decisions) >= tested_from, "no decision in the history"


def test_history_hours_0_tests_the_scans_candles_only(replay_bot, run_bot):
    spy, tested_from = judged_once(replay_bot, run_bot, 0)
    assert min(first for _, first in spy.decisions) >= tested_from
