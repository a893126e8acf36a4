"""The SMA/RSI strategy component, called directly by the orchestrator and the backtester.

The idea follows the trend's state, not a one-candle cross event, so a cycle that sees several
new candles misses nothing: LONG while the fast SMA is above the slow one and RSI is below
``rsi_long_max`` (not overbought), SHORT in the mirror case, HOLD otherwise.

``vectorized()`` gives the backtester the same answers for every candle at once: each window
sum is added up left to right in both paths (the contract's ``mean_of_last`` and ``cutler_rsi``
here, numpy there), so the two agree to the last bit.
"""

from __future__ import annotations

from gobot_hookspecs import Action, Candles, ParamSpec, Signal
from gobot_hookspecs.indicators import cutler_rsi as rsi
from gobot_hookspecs.indicators import mean_of_last as sma

FULL_CONFIDENCE_GAP_PCT = 0.4  # fast/slow gap (% of price) that earns the full trend part of confidence


def trend_slope_pct(closes: list[float], slow: int, candles: int) -> float | None:
    """Percent change of the slow SMA over the last ``candles`` candles (None without enough data)."""
    if len(closes) < slow + candles:
        return None
    now, before = sma(closes, slow, len(closes)), sma(closes, slow, len(closes) - candles)
    return (now / before - 1.0) * 100.0


class SmaRsiStrategy:
    name = "sma_rsi"
    parameters = {
        "fast": ParamSpec(default=9, low=3, high=50, step=1, description="fast SMA, candles"),
        "slow": ParamSpec(default=26, low=10, high=200, step=2, description="slow SMA, candles"),
        "rsi_period": ParamSpec(default=14, low=5, high=30, step=1, description="RSI period, candles"),
        "rsi_long_max": ParamSpec(default=70, low=55, high=90, step=1, description="no LONG above this RSI"),
        "rsi_short_min": ParamSpec(default=30, low=10, high=45, step=1, description="no SHORT below this RSI"),
    }

    def signal(self, symbol: str, candles: Candles, params: dict[str, float]) -> Signal:
        fast, slow, period = int(params["fast"]), int(params["slow"]), int(params["rsi_period"])
        closes = candles.close
        n = len(closes)
        if n < max(slow, period) + 2:
            return Signal(symbol=symbol, action=Action.HOLD, confidence=0.0, strategy=self.name,
                          rationale=f"warming up: {n} candles, need {max(slow, period) + 2}")
        fast_now, slow_now = sma(closes, fast, n), sma(closes, slow, n)
        strength = rsi(closes, period)
        gap_pct = abs(fast_now - slow_now) / slow_now * 100.0
        trend_part = min(1.0, gap_pct / FULL_CONFIDENCE_GAP_PCT)
        price = closes[-1]
        if fast_now > slow_now and strength < params["rsi_long_max"]:
            room = min(1.0, max(0.0, (params["rsi_long_max"] - strength) / (params["rsi_long_max"] - 50.0)))
            return Signal(symbol=symbol, action=Action.LONG, confidence=round(0.5 + 0.25 * trend_part + 0.25 * room, 4),
                          entry=price, timeframe=candles.timeframe, strategy=self.name,
                          rationale=f"SMA{fast} above SMA{slow} (gap {gap_pct:.2f}%), RSI{period} {strength:.0f}")
        if fast_now < slow_now and strength > params["rsi_short_min"]:
            room = min(1.0, max(0.0, (strength - params["rsi_short_min"]) / (50.0 - params["rsi_short_min"])))
            return Signal(symbol=symbol, action=Action.SHORT,
                          confidence=round(0.5 + 0.25 * trend_part + 0.25 * room, 4),
                          entry=price, timeframe=candles.timeframe, strategy=self.name,
                          rationale=f"SMA{fast} below SMA{slow} (gap {gap_pct:.2f}%), RSI{period} {strength:.0f}")
        extreme = "overbought" if fast_now > slow_now else "oversold"
        return Signal(symbol=symbol, action=Action.HOLD, confidence=0.0, timeframe=candles.timeframe,
                      strategy=self.name,
                      rationale=(f"trend {'up' if fast_now > slow_now else 'down'} "
                                 f"but RSI{period} {strength:.0f} {extreme}"))

    def vectorized(self, symbol: str, candles: Candles, params: dict[str, float]) -> dict:
        """``signal()`` for every candle at once (the backtester's fast path)."""
        import numpy as np

        close = np.asarray(candles.close, dtype=np.float64)
        n = len(close)
        fast, slow, period = int(params["fast"]), int(params["slow"]), int(params["rsi_period"])
        long_max, short_min = float(params["rsi_long_max"]), float(params["rsi_short_min"])
        action = np.zeros(n, dtype=np.int8)
        confidence = np.zeros(n)
        first = max(slow, period) + 1  # the first candle (index) with enough history
        if n <= first or fast > n or slow > n:
            return {"action": action, "confidence": confidence}
        bars = np.arange(first, n)

        def window_sum(values: np.ndarray, k: int) -> np.ndarray:
            """The sum of the ``k`` values ending at each of ``bars``, added left to right like the per-bar sum.
            The j-th addend of every bar is one slice of ``values`` (the bars are consecutive), not a gather."""
            total = np.zeros(len(bars))
            for j in range(k):
                start = first - k + 1 + j
                # a window reaching before the first candle (fast above first) wraps, as an index array does
                total += values[start:n - k + 1 + j] if start >= 0 else values[bars - k + 1 + j]
            return total

        fast_now = window_sum(close, fast) / fast
        slow_now = window_sum(close, slow) / slow
        change = np.concatenate(([0.0], np.diff(close)))
        gains = window_sum(np.where(change > 0, change, 0.0), period)
        losses = window_sum(np.where(change > 0, 0.0, -change), period)
        with np.errstate(divide="ignore", invalid="ignore"):
            strength = np.where(gains + losses == 0, 50.0, 100.0 * gains / (gains + losses))
            gap_pct = np.abs(fast_now - slow_now) / slow_now * 100.0
        trend_part = np.minimum(1.0, gap_pct / FULL_CONFIDENCE_GAP_PCT)
        is_long = (fast_now > slow_now) & (strength < long_max)
        is_short = ~is_long & (fast_now < slow_now) & (strength > short_min)
        room_long = np.minimum(1.0, np.maximum(0.0, (long_max - strength) / (long_max - 50.0)))
        room_short = np.minimum(1.0, np.maximum(0.0, (strength - short_min) / (50.0 - short_min)))
        raw = np.where(is_long, 0.5 + 0.25 * trend_part + 0.25 * room_long, 0.5 + 0.25 * trend_part + 0.25 * room_short)
        action[first:][is_long] = 1
        action[first:][is_short] = -1
        chosen = np.flatnonzero(is_long | is_short)
        # Python's round(), not numpy's: they differ on rare halfway cases, and signal() uses round().
        confidence[first + chosen] = [round(value, 4) for value in raw[chosen].tolist()]
        return {"action": action, "confidence": confidence}
