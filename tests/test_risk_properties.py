"""Property: whatever ideas and sizes come in, and whatever fills follow, open exposure never exceeds
the caps (max_position_usd per position, max_total_exposure_usd in total).

Hypothesis writes the script — per cycle, which of four markets get a LONG or SHORT idea and what
size a sizer asks for (often above the cap) — and a real bot (replay, risk_limits, paper fills)
runs it. After every fill the open positions are measured at their entry prices. Orders go out at
the last close and fill at the next candle's open, which in this data equals that close, plus the
paper executor's slippage; so the cap, times 1 + slippage, is the bound.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gobot_hookspecs import Action, Signal, hookimpl
from risk_helpers import synthetic_market

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "ADA/USDT"]
MAX_POSITION, MAX_EXPOSURE, SLIPPAGE = 10.0, 25.0, 0.05 / 100

size = st.one_of(st.sampled_from([6.0, 9.0, 10.0, 12.0]), st.floats(0.5, 16.0))  # near and over the caps
idea = st.tuples(st.sampled_from(SYMBOLS), st.sampled_from([Action.LONG, Action.SHORT]), size)
script = st.lists(st.lists(idea, max_size=4), min_size=1, max_size=10)


@pytest.fixture(scope="module")
def four_markets(tmp_path_factory):
    prices = {"BTC/USDT": 60000, "ETH/USDT": 3000, "SOL/USDT": 150, "ADA/USDT": 0.9}
    return synthetic_market(tmp_path_factory.mktemp("four"), prices, days=2)


class Scripted:
    """Ideas and sizes from the script: cycle k plays ``script[k - 1]``."""

    def __init__(self, script):
        self.script = script
        self.sizes: dict[str, float] = {}

    @hookimpl
    def gobot_generate_ideas(self, ctx):
        if ctx.iteration > len(self.script):
            return []
        ideas = {symbol: (action, size) for symbol, action, size in self.script[ctx.iteration - 1]}
        self.sizes = {symbol: size for symbol, (_, size) in ideas.items()}
        return [Signal(symbol=s, action=a, confidence=0.9) for s, (a, _) in ideas.items()]

    @hookimpl(tryfirst=True)
    def gobot_size_position(self, signal):
        return self.sizes[signal.symbol]


class Measure:
    def __init__(self):
        self.worst_total = 0.0
        self.worst_position = 0.0
        self.fills = 0

    @hookimpl
    def gobot_on_fill(self, ctx):
        self.fills += 1
        notionals = [p.amount * p.entry_price for p in ctx.positions().values()]
        self.worst_total = max(self.worst_total, sum(notionals))
        self.worst_position = max([self.worst_position, *notionals])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(script=script)
def test_no_sequence_of_fills_lets_exposure_exceed_the_caps(script, replay_bot, run_bot, tmp_path_factory,
                                                            four_markets):
    measure = Measure()
    bot = replay_bot(
        config={"trading": {"symbols": SYMBOLS, "max_position_usd": MAX_POSITION},
                "orchestrator": {"max_daily_loss": 1e6, "daily_profit_target": 1e6},
                "plugins": {"replay": {"data_dir": str(four_markets)},
                            "risk_limits": {"max_total_exposure_usd": MAX_EXPOSURE, "min_confidence_threshold": 0.5}}},
        plugins=[("scripted", Scripted(script)), ("measure", measure)],
        disable=["sma_rsi", "validator", "adjuster"],
        state_dir=tmp_path_factory.mktemp("prop"),
    )
    run_bot(bot, len(script) + 1)  # one more cycle: the last orders fill
    assert measure.worst_position <= MAX_POSITION * (1 + SLIPPAGE) + 1e-9
    assert measure.worst_total <= MAX_EXPOSURE * (1 + SLIPPAGE) + 1e-9


def test_the_property_is_not_vacuous(replay_bot, run_bot, four_markets):
    """The same set-up without the exposure cap does exceed it: the test above would catch a leak."""
    measure = Measure()
    greedy = [[(s, Action.LONG, 16.0) for s in SYMBOLS]] * 2
    bot = replay_bot(
        config={"trading": {"symbols": SYMBOLS, "max_position_usd": 100},
                "plugins": {"replay": {"data_dir": str(four_markets)},
                            "risk_limits": {"max_total_exposure_usd": 1000}}},
        plugins=[("scripted", Scripted(greedy)), ("measure", measure)], disable=["sma_rsi", "validator", "adjuster"],
    )
    run_bot(bot, 3)
    assert measure.worst_total > MAX_EXPOSURE and measure.worst_position > MAX_POSITION
