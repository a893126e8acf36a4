"""A backtest as the interactive trade chart of ``gobot_hookspecs.tradechart``: each tested symbol's
candles with the strategy's indicators, every trade (its story: signal, verdicts, sizing, fills) and
the equity curve, in the tested symbols' quote currency. Used by ``gobot backtest --html`` and
``gobot plot --backtest``.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from gobot_hookspecs import TradeStory

DEFAULT_INDICATORS = ("sma:20", "sma:50")
EQUITY_POINTS = 4000  # the equity line is drawn from at most this many points (each bucket's low and high kept)
#: Parameter names that say which indicator a strategy computes (``sma_cross``: fast, slow; ``sma_rsi``: rsi_period).
_PARAMETER_INDICATORS = {"fast": "sma", "slow": "sma", "sma": "sma", "ema": "ema", "fast_ema": "ema",
                         "slow_ema": "ema", "rsi_period": "rsi", "rsi": "rsi", "bb_period": "bb", "bollinger": "bb"}


def strategy_indicators(strategy: Any, params: dict[str, float]) -> list[str]:
    """The indicators to draw for ``strategy`` with ``params``: its own ``chart_indicators(params)`` when it
    has one, else those its parameter names give away (``fast=10, slow=50`` -> ``sma:10, sma:50``), else
    SMA 20 and 50."""
    own = getattr(strategy, "chart_indicators", None)
    if callable(own):
        return list(own(dict(params)))
    found = []
    for name, value in params.items():
        kind = _PARAMETER_INDICATORS.get(name.lower())
        if kind is not None and value and float(value).is_integer() and value >= 2:
            spec = f"{kind}:{int(value)}"
            if spec not in found:
                found.append(spec)
    return found or list(DEFAULT_INDICATORS)


def thin(times: np.ndarray, values: np.ndarray, points: int = EQUITY_POINTS,
         decimals: int = 2) -> tuple[list[int], list[float]]:
    """At most ``points`` points, rounded to ``decimals`` (cents: what a chart shows, half the bytes); each
    bucket keeps its lowest and highest value (no spike disappears)."""
    times, values = np.asarray(times, dtype=np.int64), np.asarray(values, dtype=np.float64)
    if len(values) > points:
        edges = np.linspace(0, len(values), points // 2 + 1).astype(np.int64)[:-1]
        low, high = np.minimum.reduceat(values, edges), np.maximum.reduceat(values, edges)
        times, values = np.repeat(times[edges], 2), np.column_stack((low, high)).ravel()
    return times.tolist(), np.round(values, decimals).tolist()


def drawdown_percent(equity: np.ndarray) -> np.ndarray:
    """How far below its running peak the equity is at each point, % (0 at a new peak, negative below)."""
    peak = np.maximum.accumulate(equity)
    return np.where(peak > 0, equity / np.where(peak > 0, peak, 1) - 1.0, 0.0) * 100


def chart_payload(series_list: Iterable[Any], stories: list[TradeStory], *, currency: str, title: str,
                  indicators: Iterable[str] = DEFAULT_INDICATORS,
                  equity: tuple[list[int], list[float]] | None = None) -> dict:
    """The kit's payload: one chart series per ``Series`` (or ``(symbol, Candles)`` pair), the stories, the equity."""
    from gobot_hookspecs import tradechart

    drawn = []
    for item in series_list:
        symbol, candles = item if isinstance(item, tuple) else (item.symbol, item)
        drawn.append(tradechart.chart_series(symbol, candles.timeframe, candles, indicators=tuple(indicators)))
    return tradechart.chart_payload(drawn, stories, currency=currency, title=title, equity=equity,
                                    symbol=drawn[0]["symbol"] if drawn else None)


def backtest_payload(run: Any, stories: list[TradeStory], indicators: Iterable[str], *, title: str = "",
                     equity: bool = True) -> dict:
    """``chart_payload`` of a finished backtest (``engine.BacktestRun``), with its equity curve unless told not."""
    sim = run.simulation
    params = ", ".join(f"{k}={v:g}" for k, v in run.params.items())
    return chart_payload(run.series, stories, currency=run.currency, indicators=indicators,
                         title=title or f"{run.strategy} ({params})",
                         equity=thin(sim.timeline, sim.equity) if equity else None)
