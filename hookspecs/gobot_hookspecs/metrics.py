"""Trading performance metrics over closed trades and equity curves: the one implementation the
archiver's reports, the core's run summary, the backtester and optimizer, and the dashboard share.

Pure Python, standard library only (no numpy, no pandas): importing it costs nothing, and a plugin
can use it on a list of ``Trade`` objects as well as on rows read from a database. Every function
takes "trades" duck-typed: any object with the attributes of :class:`gobot_hookspecs.Trade` that the
function reads (``pnl``, ``opened_at``, ``closed_at``, ``amount``, ``entry_price``, ``direction``,
``symbol``, ``confidence``, ``strategy``, ``strategy_version``, ``initial_stop_loss``, ``fees``).

Definitions (money in the quote currency; "losing" means ``pnl < 0``, a trade with ``pnl == 0`` is
neither a win nor a loss but counts in ``trades``):

- **win rate** = wins / trades.
- **profit factor** = gross profit / |gross loss|; ``math.inf`` when there are wins but no losses,
  None when there is neither.
- **expectancy** = win rate × average win − loss rate × |average loss|: the P&L to expect per trade
  (equal to the average P&L). **expectancy_r** is the same in R multiples, averaged over the trades
  whose risk is known: R = pnl / (|entry price − initial stop| × amount).
- **max drawdown** = the largest fall of the equity curve from its running peak, in money and as a
  fraction of that peak.
- **Sharpe** = mean(r) / stdev(r) × √P and **Sortino** = mean(r) / downside deviation × √P, where r
  are the simple returns between consecutive points of the equity curve, stdev is the sample
  standard deviation, the downside deviation is √(Σ min(r, 0)² / n) (target return 0), the
  risk-free rate is 0, and P, the periods per year, is the number of returns divided by the span of
  the curve in years (365-day years: crypto trades every day). For a curve sampled every 15 minutes
  P is 35,040; for a curve with a point per closed trade it is the observed trades per year. None
  with fewer than two returns, a zero span, or no dispersion (no losing period, for Sortino).
- **minimum sample**: :func:`trade_metrics` reports Sharpe and Sortino only for at least
  :data:`MIN_RATIO_SAMPLE` (30) closed trades, and None below it; reports print "— (n=…)" instead
  (:func:`ratio_text`). Why 30: a ratio of mean to dispersion estimated from n independent bets has
  a standard error of about √((1 + SR²/2) / n) (Lo, 2002) — below ~30 it is as large as the ratio
  itself — and annualising a short, dense sample multiplies that noise: two trades an hour apart
  gave a Sharpe of −780,273. The count is of trades, not of curve points, because a curve marked to
  market every cycle has many points but only as many independent outcomes as trades closed. The
  curve functions (:func:`sharpe_ratio`, :func:`sortino_ratio`, :func:`calmar_ratio`) compute the
  number for any curve; the gate is the reports' (the backtester applies it to Calmar too).
- **annual return** = (last / first) ^ (1 / years) − 1 of the equity curve (compound growth over
  its span in 365-day years) and **Calmar** = annual return / max drawdown (as a fraction of the
  peak). None with a zero span, a non-positive first or last point, or (Calmar) no drawdown.
- **equity curve of a set of trades** (:func:`equity_curve`) = the starting equity, then after each
  trade (in closing order) the starting equity plus the cumulative P&L. Drawdown, Sharpe and Sortino
  of a group of trades (a symbol, an hour, ...) come from that curve; those of a whole run come
  from its mark-to-market curve (equity per cycle) when one is given.
- **holding time** = closed_at − opened_at, in seconds.
- **hour** = the UTC hour of the trade's entry (``opened_at``): when the decision was taken.
- **confidence band** = the half-open interval ``[low, high)`` of ``edges`` that holds the entry
  signal's confidence (the last band includes 1.0), labelled ``"0.70-0.80"``.
- **many groups at once** (pattern discovery): each group's win rate gets the two-sided exact
  binomial p-value against a baseline rate (:func:`binomial_test`), and the false discovery rate over
  all the groups tested is controlled with Benjamini–Hochberg (:func:`benjamini_hochberg`): at
  q = 0.10, at most 10 % of the groups called discoveries are expected to be chance.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from operator import attrgetter
from typing import Any, Callable, Iterable, Sequence

from .money import trade_rate

SECONDS_PER_YEAR = 365 * 24 * 3600.0
#: Closed trades a report needs before it shows Sharpe, Sortino (and Calmar); see the module docstring.
MIN_RATIO_SAMPLE = 30
#: Default confidence band edges: 0-0.5 in one band, then steps of 0.1.
DEFAULT_CONFIDENCE_BANDS: tuple[float, ...] = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: The dimensions :func:`metrics_by` groups on.
DIMENSIONS = ("strategy_version", "symbol", "side", "hour", "confidence_band")

EquityCurve = Sequence[tuple[datetime, float]]


@dataclass(frozen=True)
class TradeMetrics:
    """The metrics of one set of trades. Ratios are None where they are undefined."""

    trades: int
    wins: int
    losses: int
    win_rate: float | None
    total_pnl: float
    avg_pnl: float | None
    avg_win: float | None
    avg_loss: float | None
    gross_profit: float
    gross_loss: float
    profit_factor: float | None
    expectancy: float | None
    expectancy_r: float | None
    total_fees: float
    max_drawdown: float
    max_drawdown_pct: float
    sharpe: float | None
    sortino: float | None
    avg_holding_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        """A plain dict; an infinite profit factor becomes the string ``"inf"`` (valid JSON)."""
        data = asdict(self)
        if data["profit_factor"] == math.inf:
            data["profit_factor"] = "inf"
        return data


# -- single trades ------------------------------------------------------------------------------


def holding_seconds(trade: Any) -> float:
    """How long the position was open, in seconds."""
    return (trade.closed_at - trade.opened_at).total_seconds()


def r_multiple(trade: Any, currency: str = "") -> float | None:
    """P&L in units of the initial risk, ``pnl / (|entry - initial stop| * amount)``; None if unknown.
    ``currency``: the P&L's, when the symbol is quoted in another (the risk converts at ``money.trade_rate``)."""
    stop = getattr(trade, "initial_stop_loss", None)
    rate = trade_rate(trade, currency)
    if stop is None or rate is None:
        return None
    risk = abs(trade.entry_price - stop) * trade.amount * rate
    return trade.pnl / risk if risk > 0 else None


def side(trade: Any) -> str:
    """``LONG`` or ``SHORT`` (the trade's direction as text)."""
    direction = trade.direction
    return str(getattr(direction, "value", direction))


def hour_of_day(trade: Any) -> int:
    """The UTC hour (0-23) the trade was entered."""
    opened = trade.opened_at
    if opened.tzinfo is not None:
        opened = opened.astimezone(timezone.utc)
    return opened.hour


def confidence_band(confidence: float | None, edges: Sequence[float] = DEFAULT_CONFIDENCE_BANDS) -> str:
    """The label of the band of ``edges`` holding ``confidence`` (``"0.70-0.80"``), or ``"unknown"``."""
    if confidence is None or not edges:
        return "unknown"
    for low, high in zip(edges, edges[1:]):
        if low <= confidence < high:
            return f"{low:.2f}-{high:.2f}"
    if confidence == edges[-1] and len(edges) > 1:
        return f"{edges[-2]:.2f}-{edges[-1]:.2f}"
    return "unknown"


def strategy_version(trade: Any) -> str:
    """``"<strategy> v<version>"``, or ``"(none)"`` for trades that came from no strategy."""
    if not trade.strategy:
        return "(none)"
    return f"{trade.strategy} v{trade.strategy_version}" if trade.strategy_version is not None else trade.strategy


# -- sets of trades -----------------------------------------------------------------------------


def win_rate(trades: Sequence[Any]) -> float | None:
    """Wins (pnl > 0) over trades; None for no trades."""
    return sum(1 for t in trades if t.pnl > 0) / len(trades) if trades else None


def profit_factor(trades: Iterable[Any]) -> float | None:
    """Gross profit over |gross loss|; ``math.inf`` with wins but no losses; None with neither."""
    profit = sum(t.pnl for t in trades if t.pnl > 0)
    loss = -sum(t.pnl for t in trades if t.pnl < 0)
    if loss > 0:
        return profit / loss
    return math.inf if profit > 0 else None


def expectancy(trades: Sequence[Any]) -> float | None:
    """win rate × average win − loss rate × |average loss| (= the average P&L); None for no trades."""
    if not trades:
        return None
    wins = [t.pnl for t in trades if t.pnl > 0]
    losses = [t.pnl for t in trades if t.pnl < 0]
    n = len(trades)
    avg_win = sum(wins) / len(wins) if wins else 0.0
    avg_loss = sum(losses) / len(losses) if losses else 0.0
    return len(wins) / n * avg_win - len(losses) / n * abs(avg_loss)


def equity_curve(trades: Iterable[Any], start_equity: float,
                 start: datetime | None = None) -> list[tuple[datetime, float]]:
    """The equity after each trade in closing order, starting at ``start_equity``.

    The first point is at ``start`` (default: the earliest entry); an empty list for no trades.
    """
    ordered = sorted(trades, key=attrgetter("closed_at"))
    if not ordered:
        return []
    first = start if start is not None else min(t.opened_at for t in ordered)
    curve = [(first, start_equity)]
    equity = start_equity
    for trade in ordered:
        equity += trade.pnl
        curve.append((trade.closed_at, equity))
    return curve


def max_drawdown(curve: EquityCurve) -> tuple[float, float]:
    """The largest peak-to-trough fall: ``(in money, as a fraction of the peak)``; ``(0, 0)`` if none.

    The two may come from different troughs: the deepest in money need not be the deepest in %.
    """
    peak = -math.inf
    worst_abs = worst_pct = 0.0
    for _, equity in curve:
        peak = max(peak, equity)
        fall = peak - equity
        worst_abs = max(worst_abs, fall)
        if peak > 0:
            worst_pct = max(worst_pct, fall / peak)
    return worst_abs, worst_pct


def returns(curve: EquityCurve) -> list[float]:
    """Simple returns between consecutive points (a point after a non-positive equity is skipped)."""
    values = [equity for _, equity in curve]
    return [b / a - 1.0 for a, b in zip(values, values[1:]) if a > 0]


def periods_per_year(curve: EquityCurve) -> float | None:
    """Returns per year observed on the curve: number of returns / span in years; None if no span."""
    if len(curve) < 2:
        return None
    span = (curve[-1][0] - curve[0][0]).total_seconds()
    return (len(curve) - 1) / (span / SECONDS_PER_YEAR) if span > 0 else None


def _annualised(rs: list[float], per_year: float | None) -> tuple[float | None, float | None]:
    """(Sharpe, Sortino) of returns ``rs`` with ``per_year`` periods a year (see the module docstring)."""
    if len(rs) < 2 or per_year is None:
        return None, None
    n = len(rs)
    mean = sum(rs) / n
    variance = sum((r - mean) ** 2 for r in rs) / (n - 1)
    downside = math.sqrt(sum(r * r for r in rs if r < 0) / n)
    scale = math.sqrt(per_year)
    sharpe = mean / math.sqrt(variance) * scale if variance > 0 else None
    sortino = mean / downside * scale if downside > 0 else None
    return sharpe, sortino


def sharpe_ratio(curve: EquityCurve) -> float | None:
    """Annualised Sharpe ratio of the curve's returns (risk-free rate 0); see the module docstring."""
    return _annualised(returns(curve), periods_per_year(curve))[0]


def sortino_ratio(curve: EquityCurve) -> float | None:
    """Annualised Sortino ratio (target return 0): mean over downside deviation; see the module docstring."""
    return _annualised(returns(curve), periods_per_year(curve))[1]


def annual_return(curve: EquityCurve) -> float | None:
    """Compound annual growth of the curve, (last / first) ^ (1 / years) - 1; see the module docstring."""
    if len(curve) < 2:
        return None
    span = (curve[-1][0] - curve[0][0]).total_seconds()
    first, last = curve[0][1], curve[-1][1]
    if span <= 0 or first <= 0 or last <= 0:
        return None
    return (last / first) ** (SECONDS_PER_YEAR / span) - 1.0


def calmar_ratio(curve: EquityCurve) -> float | None:
    """Annual return over the max drawdown (a fraction of the peak); None without a drawdown."""
    growth = annual_return(curve)
    drawdown = max_drawdown(curve)[1]
    return growth / drawdown if growth is not None and drawdown > 0 else None


def enough_for_ratios(trades: int, min_sample: int = MIN_RATIO_SAMPLE) -> bool:
    """True when ``trades`` closed trades are enough to report Sharpe, Sortino and Calmar."""
    return trades >= min_sample


def ratio_text(value: float | None, trades: int, spec: str = "{:.2f}", min_sample: int = MIN_RATIO_SAMPLE) -> str:
    """How a report prints Sharpe, Sortino or Calmar: the number, or "— (n=2)" below the minimum
    sample (n = the closed trades behind it), or "—" when it is undefined (no dispersion)."""
    if not enough_for_ratios(trades, min_sample):
        return f"— (n={trades})"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return spec.format(value)


def trade_metrics(trades: Sequence[Any], start_equity: float, curve: EquityCurve | None = None,
                  min_sample: int = MIN_RATIO_SAMPLE, currency: str = "") -> TradeMetrics:
    """Every metric of a set of trades, in one pass over them (fast enough for 100,000 trades).

    :param start_equity: the equity the trades' curve starts from (e.g. the run's initial capital).
    :param curve: an equity curve to take drawdown, Sharpe and Sortino from (e.g. the run's equity per
        cycle, marked to market); default: :func:`equity_curve` of the trades.
    :param min_sample: Sharpe and Sortino are None for fewer closed trades than this
        (:data:`MIN_RATIO_SAMPLE`; 0 computes them for any sample).
    :param currency: the P&L's currency, for R multiples of trades quoted in another (see :func:`r_multiple`).

    A trade may carry ``holding_seconds`` (``closed_at - opened_at`` in seconds); it is read instead.
    """
    trades = list(trades)
    n = len(trades)
    wins = losses = 0
    gross_profit = gross_loss = fees = held = r_sum = 0.0
    r_count = 0
    for t in trades:
        pnl = t.pnl
        if pnl > 0:
            wins += 1
            gross_profit += pnl
        elif pnl < 0:
            losses += 1
            gross_loss -= pnl
        fees += getattr(t, "fees", 0.0) or 0.0
        seconds = getattr(t, "holding_seconds", None)  # a backtest's trade knows it without two datetimes
        held += seconds if seconds is not None else (t.closed_at - t.opened_at).total_seconds()
        stop = getattr(t, "initial_stop_loss", None)
        if stop is not None:
            risk = abs(t.entry_price - stop) * t.amount * ((trade_rate(t, currency) or 0.0) if currency else 1.0)
            if risk > 0:
                r_sum += pnl / risk
                r_count += 1
    if curve is None:
        curve = equity_curve(trades, start_equity)
    dd_abs, dd_pct = max_drawdown(curve)
    sharpe, sortino = (_annualised(returns(curve), periods_per_year(curve)) if enough_for_ratios(n, min_sample)
                       else (None, None))
    total = gross_profit - gross_loss
    avg_win = gross_profit / wins if wins else None
    avg_loss = -gross_loss / losses if losses else None
    if gross_loss > 0:
        factor: float | None = gross_profit / gross_loss
    else:
        factor = math.inf if gross_profit > 0 else None
    return TradeMetrics(
        trades=n,
        wins=wins,
        losses=losses,
        win_rate=wins / n if n else None,
        total_pnl=total,
        avg_pnl=total / n if n else None,
        avg_win=avg_win,
        avg_loss=avg_loss,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=factor,
        expectancy=(wins / n * (avg_win or 0.0) - losses / n * abs(avg_loss or 0.0)) if n else None,
        expectancy_r=r_sum / r_count if r_count else None,
        total_fees=fees,
        max_drawdown=dd_abs,
        max_drawdown_pct=dd_pct,
        sharpe=sharpe,
        sortino=sortino,
        avg_holding_seconds=held / n if n else None,
    )


def group_key(dimension: str, bands: Sequence[float] = DEFAULT_CONFIDENCE_BANDS) -> Callable[[Any], Any]:
    """The function that labels a trade along ``dimension`` (one of :data:`DIMENSIONS`)."""
    keys: dict[str, Callable[[Any], Any]] = {
        "strategy_version": strategy_version,
        "symbol": lambda t: t.symbol,
        "side": side,
        "hour": hour_of_day,
        "confidence_band": lambda t: confidence_band(t.confidence, bands),
    }
    if dimension not in keys:
        raise ValueError(f"unknown dimension {dimension!r}; expected one of {', '.join(DIMENSIONS)}")
    return keys[dimension]


def group_trades(trades: Iterable[Any], dimension: str,
                 bands: Sequence[float] = DEFAULT_CONFIDENCE_BANDS) -> dict[Any, list[Any]]:
    """Trades by their label along ``dimension``, labels sorted (hours numerically)."""
    key = group_key(dimension, bands)
    groups: dict[Any, list[Any]] = {}
    for trade in trades:
        groups.setdefault(key(trade), []).append(trade)
    return {label: groups[label] for label in sorted(groups, key=_natural)}


def metrics_by(
    trades: Iterable[Any], dimension: str, start_equity: float, bands: Sequence[float] = DEFAULT_CONFIDENCE_BANDS
) -> dict[Any, TradeMetrics]:
    """:func:`trade_metrics` of each group of :func:`group_trades` (each from its own equity curve)."""
    return {label: trade_metrics(group, start_equity)
            for label, group in group_trades(trades, dimension, bands).items()}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion (95 % for z = 1.96); ``(0, 1)`` when ``n`` is 0.

    Unlike the normal approximation it stays inside [0, 1] and behaves with small samples and
    rates near 0 or 1, which is what pattern claims ("75 % over 24 trades") need.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: Sequence[float], z: float = 1.96) -> tuple[float, float] | None:
    """Normal-approximation interval of a mean (95 % for z = 1.96): mean ± z × s / √n, s the sample
    standard deviation; None below two values. The expectancy's interval (the mean P&L per trade):
    it says whether a profile's edge is distinguishable from zero, or from another's, at this sample."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * spread / math.sqrt(n)
    return mean - half, mean + half


def _natural(label: Any) -> tuple:
    """Sort key: numbers inside labels compare as numbers (``v2`` before ``v10``)."""
    if isinstance(label, (int, float)):
        return (0, label)
    return (1, [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(label))])


# -- many groups at once -------------------------------------------------------------------------


def binomial_test(successes: int, n: int, p: float) -> float:
    """Two-sided exact binomial p-value of ``successes`` in ``n`` trials when each succeeds with
    probability ``p``: the probability of every outcome no more likely than the one observed (the
    rule of R's ``binom.test``). 1.0 for ``n`` = 0. Sums outward from the observed counts and stops
    where the terms vanish, so 100,000 trials cost a few hundred terms."""
    if n <= 0:
        return 1.0
    if p <= 0.0 or p >= 1.0:
        return 1.0 if successes == round(n * p) else 0.0
    log_p, log_q, log_n = math.log(p), math.log1p(-p), math.lgamma(n + 1)

    def pmf(k: int) -> float:
        return math.exp(log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q)

    observed, mode = pmf(successes) * (1 + 1e-7), min(n, int((n + 1) * p))
    if pmf(successes) >= pmf(mode) / (1 + 1e-7):
        return 1.0

    def tail(start: int, stop: int, step: int) -> float:  # terms fall monotonically away from the mode
        total = 0.0
        for k in range(start, stop, step):
            term = pmf(k)
            total += term
            if term == 0.0 or term < total * 1e-17:
                break
        return total

    def first_beyond(low: int, high: int, rising: bool) -> int:  # where pmf crosses observed, by bisection
        while low < high:
            middle = (low + high) // 2
            if (pmf(middle) <= observed) != rising:
                high = middle
            else:
                low = middle + 1
        return low

    if successes < mode:
        other = first_beyond(mode, n + 1, False)
        total = tail(successes, -1, -1) + (tail(other, n + 1, 1) if other <= n else 0.0)
    else:
        other = first_beyond(0, mode, True) - 1  # the last k below the mode whose pmf <= observed
        total = tail(successes, n + 1, 1) + (tail(other, -1, -1) if other >= 0 else 0.0)
    return min(1.0, total)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values ("q-values"), in the order given: the groups whose
    q-value is at most q are the discoveries at false discovery rate q, over all ``len(p_values)``
    groups tested. q_(i) = min over j ≥ i of p_(j) · m / j (ranks j of the sorted p-values), at most 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        index = order[rank - 1]
        running = min(running, p_values[index] * m / rank)
        adjusted[index] = running
    return adjusted
