"""Position sizing: fractional Kelly from the trade history (fixed size until 30 trades), capped by
max_position_usd, never upsized to a market's minimum notional; fixed_size as the simple alternative."""

import asyncio

import pytest

from gobot_hookspecs import Action, MarketSnapshot, Signal, hookimpl
from gobot_plugins.kelly_size import kelly_fraction
from risk_helpers import notify, trade


def size(bot, symbol="BTC/USDT"):
    answer = asyncio.run(bot.hooks.first("gobot_size_position", ctx=bot.ctx,
                                         signal=Signal(symbol=symbol, action=Action.LONG, confidence=0.9)))
    return answer


def history(bot, wins, losses, win=0.4, loss=-0.2):
    """Closed trades of 10 USD notional: ``wins`` of +win and ``losses`` of loss (USD)."""
    for pnl in [win] * wins + [loss] * losses:
        notify(bot, "gobot_on_trade_closed", trade=trade(pnl=pnl, notional=10.0))


def test_kelly_formula():
    f, p, b = kelly_fraction([0.04] * 6 + [-0.02] * 4)
    assert (p, b) == (0.6, pytest.approx(2.0)) and f == pytest.approx(0.6 - 0.4 / 2)
    assert kelly_fraction([-0.01] * 5)[0] == 0.0


def test_fixed_size_until_the_minimum_sample(replay_bot):
    bot = replay_bot()
    history(bot, 20, 9)
    assert size(bot) == ("kelly_size", 10.0)
    events = bot.audit_log.path.read_text()
    assert '"why": "fixed: 29 of 30 closed trades needed for Kelly"' in events


def test_kelly_size_from_the_trade_history_capped_by_max_position(replay_bot, tmp_path):
    bot = replay_bot(config={"trading": {"max_position_usd": 50}}, state_dir=tmp_path / "a")
    history(bot, 18, 12)  # p = 0.6, payoff 2: Kelly 0.4, half Kelly of 100 equity = 20
    assert size(bot) == ("kelly_size", pytest.approx(20.0))
    capped = replay_bot(state_dir=tmp_path / "b")  # max_position_usd 10
    history(capped, 18, 12)
    assert size(capped) == ("kelly_size", 10.0)


def test_a_negative_edge_sizes_no_position(replay_bot, run_bot):
    bot = replay_bot(config={"plugins": {"kelly_size": {"min_trades": 10}}})
    history(bot, 2, 10)
    assert size(bot) == ("kelly_size", 0.0)
    reports = []

    class Recorder:
        @hookimpl
        def gobot_on_cycle_end(self, report):
            reports.append(report)

    bot.plugin_set.pm.register(Recorder(), name="recorder")
    run_bot(bot, 20)
    assert not bot.state.trades and not bot.state.positions
    assert any("the sizer chose no position" in line for r in reports for line in r.phase("validate").records)


class MinNotionalMarket:
    """The replay's market, with the exchange's minimum order notional in the snapshot extras."""

    def __init__(self, minimum):
        self.minimum = minimum

    @hookimpl(tryfirst=True)
    async def gobot_scan_market(self, ctx):
        out = []
        for symbol in ctx.config.trading.symbols:
            candles = await ctx.candles(symbol, "5m", 200)
            out.append(MarketSnapshot(symbol=symbol, time=ctx.now(), price=candles.close[-1], candles=candles,
                                      extras={"min_notional": self.minimum}))
        return out


def test_a_kelly_size_below_the_markets_minimum_is_vetoed_not_upsized(replay_bot, run_bot):
    bot = replay_bot(config={"plugins": {"kelly_size": {"fraction": 0.1}}},
                     plugins=[("market", MinNotionalMarket(5.0))])
    history(bot, 18, 12)  # 0.1 x Kelly 0.4 x equity ~100: about 4 USD
    run_bot(bot, 30)
    assert not bot.state.trades and not bot.state.positions
    reasons = [v["reasons"] for v in bot.state.vetoes]
    assert reasons and any("USDT below the market's minimum 5.00 USDT (not upsized)" in r for r in reasons)


def test_another_sizer_answers_first_and_fixed_size_stands_in_for_kelly(replay_bot, tmp_path):
    class Half:
        @hookimpl
        def gobot_size_position(self, ctx):
            return ctx.config.trading.max_position_usd / 2

    assert size(replay_bot(plugins=[("half", Half())], state_dir=tmp_path / "a")) == ("half", 5.0)
    fixed = replay_bot(disable=["kelly_size"], enable=["fixed_size"], state_dir=tmp_path / "b")
    history(fixed, 30, 0)
    assert size(fixed) == ("fixed_size", 10.0)


def test_a_trade_archive_with_more_history_is_used(replay_bot):
    class Archive:
        """A trade archive holding earlier runs' trades (gobot_trade_history)."""

        @hookimpl
        def gobot_trade_history(self, limit):
            return [trade(pnl=0.4 if n % 5 < 3 else -0.2) for n in range(40)][-limit:]  # p = 0.6, payoff 2

    bot = replay_bot(config={"trading": {"max_position_usd": 50}}, plugins=[("archive", Archive())])
    history(bot, 2, 0)  # the own ledger: too short
    assert size(bot) == ("kelly_size", pytest.approx(20.0))
    assert '"source": "archive"' in bot.audit_log.path.read_text()
