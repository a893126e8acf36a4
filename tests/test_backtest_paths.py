"""The backtester against itself and against others: the vectorized and per-bar paths give the same
trades, the lookahead guard catches a strategy that peeks, the curve metrics equal the contract's,
a backtest trades exactly like the bot on paper, and it agrees with backtesting.py to the cent."""

from __future__ import annotations

import warnings
from datetime import datetime, timezone

import numpy as np
import pytest

from gobot.research.backtest.engine import (
    DRAWDOWN_BLOCK,
    ExecutionSettings,
    Sizing,
    StrategyFailed,
    _drawdowns,
    _running_sum,
    compare_paths,
    compute_signals,
    curve_metrics,
    lookahead_check,
    run,
)
from gobot.research.backtest.setup import BacktestSetup
from gobot.research.market_data import COLUMNS, MarketRules, Series, find_gaps, load_series
from gobot_hookspecs import Action, Candles, ParamSpec, Signal, metrics
from gobot_plugins.sma_cross.strategy import SmaCrossStrategy
from gobot_plugins.sma_rsi.strategy import SmaRsiStrategy

T0 = 1_767_225_600_000


def random_walk(n: int, seed: int = 5, start: float = 100.0, step_ms: int = 60_000, symbol: str = "BTC/USDT") -> Series:
    """A seeded geometric random walk: each open is the previous close."""
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate(([start], close[:-1]))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.001, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.001, n)))
    ts = T0 + np.arange(n, dtype=np.int64) * step_ms
    return Series(symbol=symbol, timeframe="1m", timestamp=ts, open=open_, high=high, low=low, close=close,
                  volume=np.ones(n), gaps=find_gaps(ts, step_ms))


SIDE = {Action.LONG: 1, Action.SHORT: -1}
SMA_RSI = {name: spec.default for name, spec in SmaRsiStrategy.parameters.items()}


@pytest.mark.parametrize("strategy, params", [
    (SmaCrossStrategy(), {"fast": 10, "slow": 50}),
    (SmaCrossStrategy(), {"fast": 7, "slow": 30}),
    (SmaRsiStrategy(), SMA_RSI),
    (SmaRsiStrategy(), {**SMA_RSI, "fast": 5, "slow": 60, "rsi_period": 9, "rsi_long_max": 62}),
], ids=["sma_cross", "sma_cross-7-30", "sma_rsi", "sma_rsi-tuned"])
def test_the_vectorized_and_per_bar_paths_give_identical_signals_and_trades(strategy, params):
    data = random_walk(4000)
    assert compare_paths(strategy, params, data) == []
    settings = ExecutionSettings(fee_percent=0.1, slippage_percent=0.05, start_equity=1000, sizing=Sizing("all_in"))
    fast = run(strategy, params, [data], settings, path="vectorized")
    slow = run(strategy, params, [data], settings, path="per-bar")
    assert (fast.path, slow.path) == ("vectorized", "per-bar")
    assert len(fast.trades) > 10
    assert [t.as_dict() for t in fast.trades] == [t.as_dict() for t in slow.trades]
    assert fast.end_equity == slow.end_equity


def test_sma_cross_answers_a_fresh_window_as_it_answers_the_growing_one_bar_by_bar():
    """The per-bar path's incremental state (running sums, the side the fast SMA was on) gives what
    a live scan's fresh candles give at every bar; a skipped bar or new params start afresh."""
    data, params = random_walk(700, seed=9), {"fast": 7, "slow": 30}
    stepped = compute_signals(SmaCrossStrategy(), params, data, "per-bar")
    strategy = SmaCrossStrategy()
    for i in range(len(data)):
        fresh = Candles(timeframe="1m", **{name: getattr(data, name)[: i + 1].tolist() for name in COLUMNS})
        answer = strategy.signal("BTC/USDT", fresh, dict(params))
        assert (SIDE.get(answer.action, 0), answer.symbol) == (stepped.action[i], "BTC/USDT")
    assert np.count_nonzero(stepped.action) > 10
    growing, skipping = Candles(timeframe="1m", close=[]), SmaCrossStrategy()
    for i in range(len(data)):
        growing.close.append(float(data.close[i]))
        if i % 3 == 1:
            continue  # a bar not asked: the next call sees two more candles
        answer = skipping.signal("BTC/USDT", growing, params if i < 400 else dict(params))
        assert SIDE.get(answer.action, 0) == stepped.action[i]


class Inspecting:
    """Reads other columns on some bars only, and misbehaves when told to."""

    name, parameters = "inspecting", {}

    def __init__(self, misbehave: str = ""):
        self.misbehave, self.seen = misbehave, []

    def signal(self, symbol, candles, params):
        n = len(candles)
        if n % 7 == 0:
            self.seen.append((n, list(candles.high), candles.timestamp[-1], candles.tail(3).volume, len(candles.close)))
        if self.misbehave == "append" and n == 50:
            candles.close.append(0.0)
        if self.misbehave == "none" and n == 60:
            return None
        return Signal(symbol=symbol, action=Action.HOLD, confidence=0.0)


def test_the_per_bar_window_holds_every_column_up_to_the_current_candle_and_no_further():
    data = random_walk(100)
    strategy = Inspecting()
    compute_signals(strategy, {}, data, "per-bar")
    assert [n for n, *_ in strategy.seen] == list(range(7, 101, 7))
    for n, high, timestamp, volume, closes in strategy.seen:
        assert high == data.high[:n].tolist() and timestamp == data.timestamp[n - 1] and closes == n
        assert volume == data.volume[max(n - 3, 0) : n].tolist()


@pytest.mark.parametrize("misbehave, says", [("append", "changed the candles it was given"),
                                             ("none", "AttributeError at BTC/USDT")])
def test_a_strategy_that_changes_its_candles_or_answers_nothing_fails_by_name(misbehave, says):
    with pytest.raises(StrategyFailed, match="strategy 'inspecting' signal\\(\\) raised") as failed:
        compute_signals(Inspecting(misbehave), {}, random_walk(100), "per-bar")
    assert says in str(failed.value)


class Peeking:
    """A strategy whose vectorized path uses the next close: exactly what the guard must catch."""

    name = "peeking"
    parameters = {"x": ParamSpec(default=1, low=0, high=1)}

    def signal(self, symbol, candles, params):
        return Signal(symbol=symbol, action=Action.HOLD, confidence=0.0)

    def vectorized(self, symbol, candles, params):
        close = np.asarray(candles.close)
        nxt = np.concatenate((close[1:], close[-1:]))
        return {"action": np.where(nxt > close, 1, -1).astype(np.int8)}


def test_the_lookahead_guard_fails_a_strategy_that_peeks_and_passes_honest_ones():
    data = random_walk(600)
    problems = lookahead_check(Peeking(), {}, data)
    assert problems and "looks ahead" in problems[0]
    assert lookahead_check(SmaCrossStrategy(), {"fast": 10, "slow": 50}, data) == []
    assert lookahead_check(SmaRsiStrategy(), SMA_RSI, data, path="per-bar", cuts=3) == []


def test_compare_paths_reports_where_the_two_paths_disagree():
    problems = compare_paths(Peeking(), {}, random_walk(200))
    assert problems and problems[0].startswith("action differs at")


def test_the_vectorized_curve_metrics_equal_the_contracts():
    rng = np.random.default_rng(3)
    equity = 1000 * np.cumprod(1 + rng.normal(0.0002, 0.01, 2000))
    times = T0 + np.arange(2000, dtype=np.int64) * 900_000
    curve = [(datetime.fromtimestamp(t / 1000, tz=timezone.utc), float(e)) for t, e in zip(times, equity)]
    ours = curve_metrics(times, equity)
    dd_abs, dd_pct = metrics.max_drawdown(curve)
    assert ours["max_drawdown"] == pytest.approx(dd_abs, rel=1e-12)
    assert ours["max_drawdown_pct"] == pytest.approx(dd_pct, rel=1e-12)
    assert ours["sharpe"] == pytest.approx(metrics.sharpe_ratio(curve), rel=1e-9)
    assert ours["sortino"] == pytest.approx(metrics.sortino_ratio(curve), rel=1e-9)
    assert ours["annual_return"] == pytest.approx(metrics.annual_return(curve), rel=1e-9)
    assert ours["calmar"] == pytest.approx(metrics.calmar_ratio(curve), rel=1e-9)


def test_the_running_sums_of_the_equity_curve_are_the_dense_cumulative_sums_bit_for_bit():
    """Summed only where something is added, then repeated: the same floats as a cumsum over every bar."""
    rng = np.random.default_rng(11)
    for _ in range(500):
        n = int(rng.integers(1, 400))
        at = rng.integers(0, n + 1, int(rng.integers(0, 50)))  # repeated bars, and bar n (past the end)
        weights = rng.normal(0, 1e3, len(at)) * rng.choice([1.0, 1e-9, 1e9], len(at))
        offset = float(rng.choice([0.0, 1e6, -3.7]))
        dense = offset + np.cumsum(np.bincount(at, weights, minlength=n + 1)[:n])
        assert np.array_equal(_running_sum(at, weights, n, offset), dense)


def curve_of(shape: str, n: int, rng) -> np.ndarray:
    steps = rng.normal(0, 0.01, n)
    if shape == "walk":
        return 1000 * np.cumprod(1 + steps)
    if shape == "mostly flat":
        return 1000 * np.cumprod(1 + np.where(rng.random(n) < 0.8, 0.0, steps))
    if shape == "through zero":
        return np.cumsum(rng.normal(0, 5, n)) - 20
    return 1000 + np.arange(n) + np.sin(np.arange(n))  # a new high in every block


@pytest.mark.parametrize("shape", ["walk", "mostly flat", "through zero", "new highs in every block"])
def test_the_blocked_drawdown_scan_equals_the_running_peak_bit_for_bit(shape):
    rng = np.random.default_rng(len(shape))
    for n in (1, 7, DRAWDOWN_BLOCK - 1, DRAWDOWN_BLOCK, DRAWDOWN_BLOCK + 1, 5 * DRAWDOWN_BLOCK + 37, 20_000):
        equity = curve_of(shape, n, rng)
        peak = np.maximum.accumulate(equity)
        fall = peak - equity
        positive = peak > 0
        pct = float((fall[positive] / peak[positive]).max()) if positive.any() else 0.0
        assert _drawdowns(equity) == (float(fall.max()), pct, float(equity.min()))


def test_sma_cross_keeps_the_running_sums_of_a_close_column_and_only_of_that_column():
    data, strategy = random_walk(3000, seed=4), SmaCrossStrategy()
    params = [{"fast": 5, "slow": 20}, {"fast": 9, "slow": 40}]
    first = [strategy.vectorized(data.symbol, data.candles(), p)["action"] for p in params]
    assert [np.array_equal(a, SmaCrossStrategy().vectorized(data.symbol, data.candles(), p)["action"])
            for a, p in zip(first, params)] == [True, True]
    assert len(strategy._columns) == 1  # the second parameter set read the kept sums
    other = random_walk(3000, seed=5)
    assert np.array_equal(strategy.vectorized(other.symbol, other.candles(), params[0])["action"],
                          SmaCrossStrategy().vectorized(other.symbol, other.candles(), params[0])["action"])
    as_list = data.candles().model_copy(update={"close": data.close.tolist()})
    strategy.vectorized(data.symbol, as_list, params[0])
    assert len(strategy._columns) == 2  # a list (which may grow in place) is never kept


def test_the_summary_uses_the_contracts_trade_metrics():
    result = run(SmaCrossStrategy(), {"fast": 10, "slow": 50}, [random_walk(3000)],
                 ExecutionSettings(start_equity=1000, sizing=Sizing("all_in")))
    summary = result.metrics()
    contract = metrics.trade_metrics(result.trades, 1000.0, curve=[])
    assert summary["win_rate"] == contract.win_rate and summary["profit_factor"] == contract.profit_factor
    assert summary["expectancy"] == contract.expectancy and summary["trades"] == len(result.trades)


def test_a_backtest_trades_holding_time_is_the_same_float_as_from_its_two_datetimes():
    result = run(SmaCrossStrategy(), {"fast": 3, "slow": 7}, [random_walk(3000)],
                 ExecutionSettings(start_equity=1000, sizing=Sizing("all_in")))
    assert len(result.trades) > 50
    for trade in result.trades:
        assert trade.holding_seconds == (trade.closed_at - trade.opened_at).total_seconds()
    as_models = metrics.trade_metrics([t.to_trade() for t in result.trades], 1000.0, curve=[])
    assert metrics.trade_metrics(result.trades, 1000.0, curve=[]).avg_holding_seconds == as_models.avg_holding_seconds


def test_a_backtest_trades_exactly_like_the_bot_on_paper(replay_bot, run_bot, synthetic_data_dir):
    config = {
        "orchestrator": {"loop_interval": 300, "max_iterations": 0, "daily_profit_target": 1e9, "max_daily_loss": 1e9},
        "plugins": {"replay": {"timeframe": "5m", "warmup_candles": 200}},
    }
    disable = ["sma_rsi", "adjuster", "validator", "circuit_breaker", "kelly_size", "archiver", "console"]
    bot = replay_bot(config=config, enable=["sma_cross", "fixed_size"], disable=disable)
    run_bot(bot)
    live = sorted(bot.state.trades, key=lambda t: (t.opened_at, t.symbol))
    assert len(live) >= 5

    setup = BacktestSetup.build(bot.settings, bot.plugin_set)
    strategy = setup.strategy("sma_cross")
    execution = setup.execution(allow_short=False)
    assert (execution.sizing.kind, execution.risk, execution.fee_percent, execution.slippage_percent) == (
        "plugins", "plugins", 0.1, 0.05)
    series = [load_series(synthetic_data_dir, symbol, "5m") for symbol in bot.settings.trading.symbols]
    first_decision = int(series[0].timestamp[199])  # the first cycle sees the 200 warm-up candles
    result = run(strategy, setup.params(strategy), series, execution, gate=setup.gate(execution, strategy),
                 start_ms=first_decision)
    tested = sorted(result.trades, key=lambda t: (t.opened_at, t.symbol))
    assert len(tested) == len(live)
    for a, b in zip(tested, live):
        assert (a.symbol, a.direction, a.opened_at, a.closed_at, a.exit_reason) == (
            b.symbol, b.direction, b.opened_at, b.closed_at, b.exit_reason)
        assert a.entry_price == pytest.approx(b.entry_price, rel=1e-12)
        assert a.exit_price == pytest.approx(b.exit_price, rel=1e-12)
        assert a.amount == pytest.approx(b.amount, rel=1e-9)
        assert a.pnl == pytest.approx(b.pnl, rel=1e-9, abs=1e-12)
    assert sorted(p.symbol for p in result.simulation.open_positions) == sorted(bot.state.positions)


def test_same_trades_and_final_equity_as_backtesting_py_on_a_small_slice():
    pytest.importorskip("backtesting")
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

    data = random_walk(6000, seed=11)
    data.market = MarketRules(amount_step=1e-8)  # FractionalBacktest trades whole satoshis

    def sma(values, n):
        return pd.Series(values).rolling(n).mean()

    class SmaCross(Strategy):
        def init(self):
            self.fast, self.slow = self.I(sma, self.data.Close, 10), self.I(sma, self.data.Close, 50)

        def next(self):
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    frame = pd.DataFrame({"Open": data.open, "High": data.high, "Low": data.low, "Close": data.close,
                          "Volume": data.volume}, index=pd.to_datetime(data.timestamp, unit="ms"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = FractionalBacktest(frame, SmaCross, cash=1_000_000, commission=0.001).run()
    settings = ExecutionSettings(fee_percent=0.1, slippage_percent=0.0, stop_loss_percent=None,
                                 take_profit_percent=None, start_equity=1_000_000, sizing=Sizing("all_in"),
                                 allow_short=False)
    ours = run(SmaCrossStrategy(), {"fast": 10, "slow": 50}, [data], settings)
    assert len(ours.trades) == stats["# Trades"] > 20
    assert abs(ours.end_equity - float(stats["Equity Final [$]"])) < 0.005  # to the cent
