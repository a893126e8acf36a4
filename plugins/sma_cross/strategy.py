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
KEPT_COLUMNS = 16  # close columns whose running sums vectorized() keeps


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
        # list again, one candle longer each bar, so the sums are extended, not recomputed, and the
        # side the fast SMA was on at the candle before (``_was``: +1 above, -1 below, 0 equal) is
        # remembered; any other list (a live scan's window) starts afresh.
        self._seen: list[float] | None = None
        self._sums: list[float] = [0.0]
        self._params: dict | None = None
        self._windows = (0, 0)
        self._was = 0
        self._symbol, self._quiet = "", None  # the symbol asked about last and its HOLD answer
        self._columns: dict[int, tuple] = {}  # id -> (close column, its running sums), for vectorized()

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
        closes, sums = candles.close, self._sums
        n = len(sums)  # the candles summed so far + 1
        # The per-bar backtest's next candle: the same list one longer, the same params and symbol.
        if closes is self._seen and len(closes) == n and params is self._params and symbol is self._symbol:
            total = sums[-1] + closes[-1]
            sums.append(total)
            fast, slow = self._windows
            fast_now, slow_now = (total - sums[n - fast]) / fast, (total - sums[n - slow]) / slow
            if fast_now > slow_now:
                if self._was <= 0:
                    was, self._was = self._was, 1
                    if was < 0:
                        return self._cross(symbol, candles, Action.LONG)
            elif fast_now < slow_now:
                if self._was >= 0:
                    was, self._was = self._was, -1
                    if was > 0:
                        return self._cross(symbol, candles, Action.SHORT)
            elif self._was:
                self._was = 0
            return self._quiet
        return self._first(symbol, candles, params)

    def _first(self, symbol: str, candles: Candles, params: dict[str, float]) -> Signal:
        """``signal()`` from scratch: a new list of closes, new params, or a list that did not grow by one."""
        closes = candles.close
        n = len(closes)
        if params is not self._params:
            self._windows, self._params = (int(params["fast"]), int(params["slow"])), params
        fast, slow = self._windows
        hold = self._holds.get(symbol) or self._hold(symbol)
        self._symbol, self._quiet = symbol, hold
        if n <= fast or n <= slow:
            self._seen = None  # not enough candles yet: the next call starts afresh too
            return hold
        sums = self._running_sums(closes)
        fast_now = (sums[n] - sums[n - fast]) / fast
        fast_before = (sums[n - 1] - sums[n - 1 - fast]) / fast
        slow_now = (sums[n] - sums[n - slow]) / slow
        slow_before = (sums[n - 1] - sums[n - 1 - slow]) / slow
        self._was = (fast_now > slow_now) - (fast_now < slow_now)
        if fast_before < slow_before and fast_now > slow_now:
            return self._cross(symbol, candles, Action.LONG)
        if fast_before > slow_before and fast_now < slow_now:
            return self._cross(symbol, candles, Action.SHORT)
        return hold

    def _cross(self, symbol: str, candles: Candles, action: Action) -> Signal:
        fast, slow = self._windows
        word = "above" if action is Action.LONG else "below"
        return Signal(symbol=symbol, action=action, confidence=CONFIDENCE, entry=candles.close[-1],
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
        sums = self._column_sums(candles.close)

        def sma(k: int) -> np.ndarray:  # sma[i] = mean of close[i-k+1 .. i], for i >= longest - 1
            return (sums[longest : n + 1] - sums[longest - k : n + 1 - k]) / k

        f, s = sma(fast), sma(slow)  # index 0 is bar longest - 1
        above, below = f > s, f < s
        action[longest:][below[:-1] & above[1:]] = 1
        action[longest:][above[:-1] & below[1:]] = -1
        return {"action": action, "confidence": np.where(action != 0, CONFIDENCE, 0.0)}

    def _column_sums(self, close):
        """``[0, close[0], close[0] + close[1], ...]`` (``numpy.cumsum``), kept for the last close columns
        (one per symbol): an optimizer asks for hundreds of parameter sets over the same candles, and the
        sequential running sum is the costliest pass of this method (a backtest's columns never change)."""
        import numpy as np

        kept = self._columns.get(id(close))
        if kept is not None and kept[0] is close and len(kept[1]) == len(close) + 1:
            return kept[1]
        sums = np.empty(len(close) + 1)
        sums[0] = 0.0
        np.cumsum(np.asarray(close, dtype=np.float64), out=sums[1:])
        if not isinstance(close, np.ndarray):
            return sums  # a list may grow in place: not kept
        if len(self._columns) >= KEPT_COLUMNS:
            self._columns.pop(next(iter(self._columns)))
        self._columns[id(close)] = (close, sums)
        return sums

    def _hold(self, symbol: str) -> Signal:
        hold = self._holds.get(symbol)
        if hold is None:  # HOLD is the answer on almost every candle: make it once per symbol
            hold = self._holds[symbol] = Signal(symbol=symbol, action=Action.HOLD, confidence=0.0, strategy=self.name,
                                                rationale="no cross")
        return hold
