"""The SMA crossover strategy component: the backtester's benchmark, and a plain trend follower.

LONG on the candle where the fast SMA of the close crosses strictly above the slow one (it was
below on the candle before), SHORT on the opposite cross, HOLD on every other candle. It is
``long_only``: a SHORT closes a long and never opens a short. The averages come from running sums
of the closes (``C[i+1] = C[i] + close[i]``), in the same order in ``signal()`` and in
``vectorized()`` (``numpy.cumsum``), so both paths give bit-identical trades.
"""

from __future__ import annotations

from gobot_hookspecs import Action, Candles, ParamSpec, Signal

CONFIDENCE = 0.8


class SmaCrossStrategy:
    name = "sma_cross"
    long_only = True
    parameters = {
        "fast": ParamSpec(default=10, low=2, high=100, step=1, description="fast SMA, candles"),
        "slow": ParamSpec(default=50, low=5, high=400, step=1, description="slow SMA, candles"),
    }

    def __init__(self) -> None:
        self._holds: dict[str, Signal] = {}
        # Running sums of the last closes list seen. The backtester's per-bar path hands the same
        # list again, one candle longer each bar, so the sums are extended, not recomputed; any
        # other list (a live scan's window) starts afresh.
        self._seen: list[float] | None = None
        self._sums: list[float] = [0.0]
        self._params: dict | None = None
        self._windows = (0, 0)

    def _running_sums(self, closes: list[float]) -> list[float]:
        sums = self._sums
        if closes is not self._seen or len(sums) > len(closes) + 1:
            self._seen, sums = closes, [0.0]
            self._sums = sums
        if len(sums) <= len(closes):
            total = sums[-1]
            append = sums.append
            for value in closes[len(sums) - 1 :]:
                total += value
                append(total)
        return sums

    def signal(self, symbol: str, candles: Candles, params: dict[str, float]) -> Signal:
        closes = candles.close
        n = len(closes)
        if params is self._params:  # the backtester passes the same dict for every candle
            fast, slow = self._windows
        else:
            fast, slow = self._windows = int(params["fast"]), int(params["slow"])
            self._params = params
        if n <= fast or n <= slow:
            return self._holds.get(symbol) or self._hold(symbol)
        sums = self._sums
        if closes is self._seen and len(sums) == n:  # the per-bar backtest's next candle
            sums.append(sums[-1] + closes[-1])
        else:
            sums = self._running_sums(closes)
        fast_now = (sums[n] - sums[n - fast]) / fast
        fast_before = (sums[n - 1] - sums[n - 1 - fast]) / fast
        slow_now = (sums[n] - sums[n - slow]) / slow
        slow_before = (sums[n - 1] - sums[n - 1 - slow]) / slow
        if fast_before < slow_before and fast_now > slow_now:
            action = Action.LONG
        elif fast_before > slow_before and fast_now < slow_now:
            action = Action.SHORT
        else:
            return self._holds.get(symbol) or self._hold(symbol)
        word = "above" if action is Action.LONG else "below"
        return Signal(symbol=symbol, action=action, confidence=CONFIDENCE, entry=closes[-1],
                      timeframe=candles.timeframe, strategy=self.name, rationale=f"SMA{fast} crossed {word} SMA{slow}")

    def vectorized(self, symbol: str, candles: Candles, params: dict[str, float]) -> dict:
        import numpy as np

        close = np.asarray(candles.close, dtype=np.float64)
        n = len(close)
        fast, slow = int(params["fast"]), int(params["slow"])
        action = np.zeros(n, dtype=np.int8)
        longest = max(fast, slow)
        if n < longest + 1:
            return {"action": action, "confidence": np.zeros(n)}
        sums = np.empty(n + 1)
        sums[0] = 0.0
        np.cumsum(close, out=sums[1:])

        def sma(k: int) -> np.ndarray:  # sma[i] = mean of close[i-k+1 .. i], for i >= longest - 1
            return (sums[longest : n + 1] - sums[longest - k : n + 1 - k]) / k

        f, s = sma(fast), sma(slow)  # index 0 is bar longest - 1
        above, below = f > s, f < s
        action[longest:][below[:-1] & above[1:]] = 1
        action[longest:][above[:-1] & below[1:]] = -1
        return {"action": action, "confidence": np.where(action != 0, CONFIDENCE, 0.0)}

    def _hold(self, symbol: str) -> Signal:
        hold = self._holds.get(symbol)
        if hold is None:  # HOLD is the answer on almost every candle: make it once per symbol
            hold = self._holds[symbol] = Signal(symbol=symbol, action=Action.HOLD, confidence=0.0, strategy=self.name,
                                                rationale="no cross")
        return hold
