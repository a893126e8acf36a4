"""The backtester's two simulations agree: one series without plugins walks its trades as one chain
(``engine._one_series``), anything else runs the event loop (``engine._Simulator``). Over random
candles, signals (with and without their own stops and targets), fills at the next open or at the
close, shorts, stop and target percentages, fees, slippage, the three sizings, market steps and
minimums and windows, both give the same trades, the same equity curve bit for bit, and the same
decisions and vetoes (the chain books vetoes itself, and hands an entry of percent or fixed sizing below a
market minimum to the event loop)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gobot.research.backtest import engine
from gobot.research.backtest.engine import ExecutionSettings, Signals, SimpleGate, Sizing, simulate
from gobot.research.market_data import MarketRules, Series, find_gaps

MINUTE = 60_000
T0 = 1_767_225_600_000


@st.composite
def markets(draw, plain: bool = False) -> tuple[Series, Signals, ExecutionSettings, int | None, int | None]:
    """A random case; ``plain``: long only without stops or targets (the chain's per-column shortcut)."""
    n = draw(st.integers(3, 120))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    close = np.round(100 + np.cumsum(rng.normal(0, 1, n)), 1)
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) + np.round(np.abs(rng.normal(0, 0.6, n)), 1)
    low = np.minimum(open_, close) - np.round(np.abs(rng.normal(0, 0.6, n)), 1)
    ts = T0 + np.cumsum(rng.integers(1, 3, n)) * MINUTE  # gaps too
    market = draw(st.sampled_from([MarketRules(), MarketRules(amount_step=0.01),
                                   MarketRules(amount_step=0.001, min_notional=50.0), MarketRules(min_amount=4.0),
                                   MarketRules(amount_step=0.5)]))  # 60 of cash soon buys no step at some prices
    data = Series("BTC/USDT", "1m", ts, open_, high, low, close, np.ones(n), market=market,
                  gaps=find_gaps(ts, MINUTE))
    action = rng.choice(np.array([0, 0, 0, 1, -1], dtype=np.int8), n)
    own = not plain and draw(st.booleans())
    stops = np.where(rng.random(n) < 0.5, close - action * rng.uniform(0.2, 3, n), np.nan) if own else None
    targets = np.where(rng.random(n) < 0.5, close + action * rng.uniform(0.2, 3, n), np.nan) if own else None
    signals = Signals(action, np.where(action != 0, 0.7, 0.0), stops, targets)
    kind = draw(st.sampled_from(["all_in", "fixed", "percent"]))
    execution = ExecutionSettings(
        fill=draw(st.sampled_from(["next_open", "close"])), fee_percent=draw(st.sampled_from([0.0, 0.1, 5.0])),
        slippage_percent=draw(st.sampled_from([0.0, 0.05])),
        stop_loss_percent=None if plain else draw(st.sampled_from([None, 0.5, 2.0])),
        take_profit_percent=None if plain else draw(st.sampled_from([None, 1.0])),
        start_equity=draw(st.sampled_from([1000.0, 60.0])),
        sizing=Sizing(kind, {"all_in": 0.0, "fixed": 400.0, "percent": 60.0}[kind]),
        allow_short=not plain and draw(st.booleans()))
    start = draw(st.none() | st.integers(0, n - 1).map(lambda i: int(ts[i])))
    end = draw(st.none() | st.integers(0, n - 1).map(lambda i: int(ts[i])))
    return data, signals, execution, start, end


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets() | markets(plain=True))
def test_one_series_walked_as_a_chain_trades_exactly_as_the_event_loop(case):
    data, signals, execution, start, end = case
    gate = SimpleGate(execution.sizing)
    chain = simulate([data], [signals], execution, gate, strategy="s", start_ms=start, end_ms=end)
    events = engine._Simulator([data], [signals], execution, gate, "s", None, start, end).run()
    assert [t.as_dict() for t in chain.trades] == [t.as_dict() for t in events.trades]
    assert [p.to_position() for p in chain.open_positions] == [p.to_position() for p in events.open_positions]
    assert (chain.end_equity, chain.cash, chain.decisions, chain.vetoes) == (
        events.end_equity, events.cash, events.decisions, events.vetoes)
    assert np.array_equal(chain.timeline, events.timeline) and np.array_equal(chain.equity, events.equity)


def test_the_chain_books_an_all_in_entry_below_a_market_minimum_and_hands_a_percent_one_to_the_event_loop():
    ts = T0 + np.arange(6) * MINUTE
    flat = np.full(6, 100.0)
    data = Series("BTC/USDT", "1m", ts, flat, flat + 1, flat - 1, flat, np.ones(6),
                  market=MarketRules(min_notional=5e3))
    signals = Signals(np.array([0, 1, 0, -1, 1, 0], dtype=np.int8), np.full(6, 0.7))
    for sizing, chained in ((Sizing("all_in"), True), (Sizing("percent", 50.0), False)):
        execution = ExecutionSettings(fee_percent=0.0, stop_loss_percent=None, take_profit_percent=None,
                                      allow_short=False, sizing=sizing)
        walked = engine._one_series(data, signals, execution, sizing, "s", None, None, None)
        assert (walked is not None) is chained
        result = simulate([data], [signals], execution, SimpleGate(sizing))
        assert result.trades == [] and result.vetoes == {"notional below the market's minimum 5000": 2}
        assert result.decisions == 2


def test_once_a_short_spends_all_the_cash_the_chain_vetoes_every_later_entry_as_the_event_loop_does():
    ts = T0 + np.arange(10) * MINUTE
    open_ = np.array([100.0, 100, 100, 100, 300, 300, 300, 300, 300, 300])
    data = Series("BTC/USDT", "1m", ts, open_, open_ + 1, open_ - 1, open_, np.ones(10), gaps=[])
    signals = Signals(np.array([0, -1, 0, 1, 0, 1, 0, -1, 0, 0], dtype=np.int8), np.full(10, 0.7))
    for sizing, reason in ((Sizing("all_in"), "no margin available for a position"),
                           (Sizing("percent", 50.0), "no equity left")):
        execution = ExecutionSettings(fee_percent=0.1, stop_loss_percent=None, take_profit_percent=None,
                                      sizing=sizing)
        chain = engine._one_series(data, signals, execution, sizing, "s", None, None, None)
        events = engine._Simulator([data], [signals], execution, SimpleGate(sizing), "s", None, None, None).run()
        assert chain is not None and chain.cash < 0 and len(chain.trades) == 1
        assert chain.vetoes == events.vetoes == {reason: 2} and chain.decisions == events.decisions == 3
        assert [t.as_dict() for t in chain.trades] == [t.as_dict() for t in events.trades]
        assert np.array_equal(chain.equity, events.equity) and chain.end_equity == events.end_equity


def test_cash_that_buys_no_amount_step_vetoes_the_later_entries_in_the_chain_until_a_price_allows_one():
    """All-in with too little cash for one amount step: the chain books the later decisions as vetoed (as the
    event loop does) and, where a lower entry price lets the cash buy a step again, trades on from there."""
    ts = T0 + np.arange(10) * MINUTE
    action = np.array([0, 1, -1, 0, 1, -1, 1, -1, 0, 0], dtype=np.int8)
    execution = ExecutionSettings(fee_percent=0.0, stop_loss_percent=None, take_profit_percent=None,
                                  start_equity=150.0, allow_short=False)
    for later_price, trades in ((100.0, 1), (50.0, 2)):
        open_ = np.array([100, 100, 100, 40, 100, 100, 100, later_price, 100, 100], dtype=np.float64)
        close = np.append(open_[1:], 100.0)
        data = Series("BTC/USDT", "1m", ts, open_, np.maximum(open_, close), np.minimum(open_, close), close,
                      np.ones(10), market=MarketRules(amount_step=1.0))
        signals = Signals(action, np.full(10, 0.7))
        walked = engine._one_series(data, signals, execution, execution.sizing, "s", None, None, None)
        events = engine._Simulator([data], [signals], execution, SimpleGate(execution.sizing), "s", None, None,
                                   None).run()
        assert walked is not None
        assert [t.as_dict() for t in walked.trades] == [t.as_dict() for t in events.trades]
        assert (walked.cash, walked.vetoes, walked.decisions) == (events.cash, events.vetoes, events.decisions)
        assert np.array_equal(walked.equity, events.equity)
        assert len(walked.trades) == trades
        assert walked.vetoes["no margin available for a position"] == (2 if trades == 1 else 1)


def test_a_long_run_worn_down_to_dust_and_bought_back_trades_exactly_as_the_event_loop():
    """A price swinging ±35 % for 40,000 bars, all-in with a 0.5 % fee: the cash soon buys no amount step at the
    highs and buys one again in each trough, a hundred times. The chain's stretches after a veto (a prefix of
    the candidates, the first few hundred later decisions) give the event loop's trades, vetoes and curve."""
    rng = np.random.default_rng(5)
    n, i = 40_000, np.arange(40_000)
    close = np.round(100 * (1 + 0.35 * np.sin(2 * np.pi * i / 4000)) * np.exp(rng.normal(0, 0.002, n)), 2)
    open_ = np.concatenate(([100.0], close[:-1]))
    data = Series("BTC/USDT", "1m", T0 + i * MINUTE, open_, np.maximum(open_, close), np.minimum(open_, close), close,
                  np.ones(n), market=MarketRules(amount_step=1.0), gaps=[])
    signals = Signals(rng.choice(np.array([0, 0, 1, -1], dtype=np.int8), n), np.full(n, 0.7))
    for fill in ("next_open", "close"):
        execution = ExecutionSettings(fill=fill, fee_percent=0.5, stop_loss_percent=None, take_profit_percent=None,
                                      start_equity=200.0, allow_short=False)
        walked = engine._one_series(data, signals, execution, execution.sizing, "s", None, None, None)
        events = engine._Simulator([data], [signals], execution, SimpleGate(execution.sizing), "s", None, None,
                                   None).run()
        assert walked is not None and len(walked.trades) > 100
        assert walked.vetoes == events.vetoes and walked.vetoes["no margin available for a position"] > 9000
        assert [t.as_dict() for t in walked.trades] == [t.as_dict() for t in events.trades]
        assert (walked.cash, walked.decisions) == (events.cash, events.decisions)
        assert np.array_equal(walked.equity, events.equity)
