"""The max_spread plugin's own tests, written the way a plugin author writes them: the gobot fixtures
(``replay_bot``, ``run_bot``, ``plugin_set_factory``) run it inside a real bot on synthetic data."""

from datetime import datetime, timezone

import pytest
from gobot_risk_max_spread import MaxSpread, spread_pct

from gobot_hookspecs import Candles, MarketSnapshot, hookimpl


class QuotedMarket:
    """A market-data plugin for the test: the replay's candles plus a bid/ask ``spread_pct`` wide.

    It answers the scan before ``replay`` (``tryfirst``), so these snapshots are the ones the bot uses.
    """

    def __init__(self, spread_pct):
        self.half = spread_pct / 200

    @hookimpl(tryfirst=True)
    async def gobot_scan_market(self, ctx):
        snapshots = []
        for symbol in ctx.config.trading.symbols:
            candles = await ctx.candles(symbol, "5m", 200)  # the replay plugin's history, closed by now
            price = candles.close[-1]
            snapshots.append(MarketSnapshot(symbol=symbol, time=ctx.now(), price=price, candles=candles,
                                            bid=price * (1 - self.half), ask=price * (1 + self.half)))
        return snapshots


def snapshot(bid, ask):
    candles = Candles(timeframe="5m", timestamp=[0], open=[1.0], high=[1.0], low=[1.0], close=[1.0], volume=[1.0])
    return MarketSnapshot(symbol="BTC/USDT", time=datetime(2026, 1, 1, tzinfo=timezone.utc), price=100.0,
                          candles=candles, bid=bid, ask=ask)


def test_spread_is_a_percentage_of_the_mid_price():
    assert spread_pct(snapshot(99.95, 100.05)) == pytest.approx(0.1)
    assert spread_pct(snapshot(None, 100.0)) is None
    assert spread_pct(snapshot(100.1, 100.0)) is None  # a crossed quote is not a quote


def test_a_tight_market_trades(replay_bot, run_bot):
    bot = replay_bot(config={"plugins": {"max_spread": {"max_spread_pct": 0.1}}},
                     plugins=[("max_spread", MaxSpread()), ("quoted_market", QuotedMarket(0.02))])
    run_bot(bot, 20)
    assert bot.state.trades or bot.state.positions
    assert not any("max_spread:" in veto["reasons"] for veto in bot.state.vetoes)


def test_a_wide_spread_is_vetoed_with_its_reason(replay_bot, run_bot):
    bot = replay_bot(config={"plugins": {"max_spread": {"max_spread_pct": 0.1}}},
                     plugins=[("max_spread", MaxSpread()), ("quoted_market", QuotedMarket(0.5))])
    run_bot(bot, 20)
    assert not bot.state.trades and not bot.state.positions
    reasons = [veto["reasons"] for veto in bot.state.vetoes]
    assert reasons and all("max_spread: spread 0.500% on" in r and "above max_spread_pct 0.1" in r for r in reasons)


def test_no_quote_is_a_veto_unless_allowed(replay_bot, run_bot, tmp_path):
    vetoed = replay_bot(plugins=[("max_spread", MaxSpread())], state_dir=tmp_path / "a")  # replay has no bid/ask
    run_bot(vetoed, 20)
    assert not vetoed.state.trades and any("no bid/ask quote" in v["reasons"] for v in vetoed.state.vetoes)
    allowed = replay_bot(config={"plugins": {"max_spread": {"without_quote": "allow"}}},
                         plugins=[("max_spread", MaxSpread())], state_dir=tmp_path / "b")
    run_bot(allowed, 20)
    assert allowed.state.trades or allowed.state.positions


def test_it_loads_from_its_entry_point(plugin_set_factory):
    """Installed (pip install -e .), it is found by name and enabled like any plugin."""
    info = plugin_set_factory(enable=["max_spread"]).plugins["max_spread"]
    assert (info.status, info.distribution) == ("enabled", "gobot-risk-max-spread")
    assert {"gobot_risk_check", "gobot_config_model", "gobot_risk_status"} <= set(info.hooks)
