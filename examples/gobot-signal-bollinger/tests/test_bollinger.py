"""The plugin's own tests, with the fixtures gobot gives plugin authors (``pip install -e '.[test]'``)."""

from gobot_signal_bollinger import Bollinger, BollingerStrategy

from gobot_hookspecs import Action, Candles

PARAMS = {"window": 5, "width": 2.0}


def candles(closes):
    n = len(closes)
    return Candles(timeframe="5m", timestamp=list(range(n)), open=closes, high=closes, low=closes, close=closes,
                   volume=[1.0] * n)


def test_a_close_far_below_the_mean_is_long_with_at_least_the_base_confidence():
    signal = BollingerStrategy().signal("BTC/USDT", candles([100, 100, 100, 100, 80]), PARAMS)
    assert signal.action is Action.LONG
    assert 0.75 <= signal.confidence <= 0.95
    assert "below the 5-candle mean" in signal.rationale


def test_a_close_far_above_the_mean_is_short():
    assert BollingerStrategy().signal("BTC/USDT", candles([100, 100, 100, 100, 120]), PARAMS).action is Action.SHORT


def test_inside_the_bands_and_while_warming_up_it_holds():
    strategy = BollingerStrategy()
    assert strategy.signal("BTC/USDT", candles([100, 101, 99, 100, 100.5]), PARAMS).action is Action.HOLD
    assert strategy.signal("BTC/USDT", candles([100, 80]), PARAMS).rationale == "warming up"


def test_its_signals_trade_in_a_replay(replay_bot, run_bot):
    bot = replay_bot(plugins=[("bollinger", Bollinger())], disable=["sma_rsi"])
    run_bot(bot, 60)
    strategies = {t.strategy for t in bot.state.trades} | {p.strategy for p in bot.state.positions.values()}
    assert strategies == {"bollinger"}


def test_it_loads_from_its_entry_point_when_installed(plugin_set_factory):
    plugin_set = plugin_set_factory(enable=["bollinger"])
    info = plugin_set.plugins["bollinger"]
    assert (info.status, info.distribution) == ("enabled", "gobot-signal-bollinger")
    assert "gobot_generate_ideas" in info.hooks
