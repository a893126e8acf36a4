"""Pattern discovery: which hours, confidence levels, symbols, sides and strategy versions win more
(or less) than the rest — claimed only over enough trades and only when the claim survives the
number of groups looked at, each with its sample size, a 95 % Wilson interval for the win rate, its
p-value and its Benjamini–Hochberg q-value.

Looking at 24 hours, 6 confidence bands, every symbol, both sides and every strategy version tests
dozens of groups at once; at the 5 % level, one group in twenty looks special by chance. So:

1. every group with at least ``min_trades`` trades (and fewer than all of them: the whole set is no
   test) is **tested**: along each dimension, plus the trades at or above each edge of the
   confidence bands (``threshold``);
2. its **p-value** is the two-sided exact binomial test of its wins against the win rate of all
   trades (:func:`gobot_hookspecs.metrics.binomial_test`);
3. Benjamini–Hochberg over *all* the groups tested gives each a **q-value**
   (:func:`gobot_hookspecs.metrics.benjamini_hochberg`), and only the groups with q ≤ ``fdr``
   (default 0.10: at most a tenth of the claims are expected to be chance) are **discoveries**.

Only discoveries are claimed. A discovery is ``best`` / ``worst`` when it has the highest / lowest
win rate of the groups tested along its dimension, otherwise ``above`` / ``below`` (than all
trades); a ``threshold`` is "confidence ≥ 0.80: 82 % win rate over 40 trades". Every claim says how
many groups were tested (``groups_tested``). Light: standard library and the contract only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from gobot_hookspecs import metrics
from gobot_hookspecs.money import money

DIMENSIONS = ("hour", "confidence_band", "symbol", "side", "strategy_version")
#: The false discovery rate discoveries are controlled at (Benjamini–Hochberg q).
DEFAULT_FDR = 0.10
_NAMES = {"hour": "hour", "confidence_band": "confidence", "symbol": "symbol", "side": "side",
          "strategy_version": "strategy"}


@dataclass(frozen=True)
class Pattern:
    dimension: str
    label: str
    kind: str  # best | worst | above | below | threshold
    trades: int
    wins: int
    win_rate: float
    ci_low: float
    ci_high: float
    baseline_win_rate: float
    total_pnl: float
    avg_pnl: float
    profit_factor: float | None
    notable: bool  # a discovery (every claim is one; kept for archives written before 0003)
    text: str
    p_value: float | None = None
    q_value: float | None = None  # Benjamini–Hochberg adjusted p-value over the groups tested
    groups_tested: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_text(dimension: str, label: Any) -> str:
    if dimension == "hour":
        return f"{int(label):02d}:00 UTC"
    if dimension == "confidence_band":
        return f"confidence {label}"
    return str(label)


def _pattern(dimension: str, label: Any, kind: str, group: Sequence[Any], baseline: float, shown: str,
             p_value: float, q_value: float, tested: int, currency: str = "") -> Pattern:
    n = len(group)
    wins = sum(1 for t in group if t.pnl > 0)
    low, high = metrics.wilson_interval(wins, n)
    total = sum(t.pnl for t in group)
    prefix = f"{kind} {_NAMES.get(dimension, dimension)} " if kind in ("best", "worst") else ""
    if dimension in ("hour", "confidence_band") and kind in ("best", "worst"):
        shown = shown.removeprefix("confidence ")
    text = (
        f"{prefix}{shown}: {wins / n:.0%} win rate over {n} trades "
        f"(95% CI {low:.0%}-{high:.0%}; all trades {baseline:.0%}; p={p_value:.2g}, q={q_value:.2g} "
        f"over {tested} groups), P&L {money(total, currency, True)}"
    )
    return Pattern(
        dimension=dimension, label=str(label), kind=kind, trades=n, wins=wins, win_rate=wins / n, ci_low=low,
        ci_high=high, baseline_win_rate=baseline, total_pnl=total, avg_pnl=total / n,
        profit_factor=metrics.profit_factor(group), notable=True, text=text, p_value=p_value, q_value=q_value,
        groups_tested=tested,
    )


@dataclass(frozen=True)
class PatternSearch:
    """What one discovery did: how many groups it tested, at which false discovery rate, what it found."""

    tested: int
    fdr: float
    patterns: list[Pattern]

    def summary(self) -> str:
        """"31 groups tested, 2 discoveries at FDR q = 0.10"."""
        found = len(self.patterns)
        return (f"{self.tested} group{'s' * (self.tested != 1)} tested, {found} discover"
                f"{'y' if found == 1 else 'ies'} at FDR q = {self.fdr:.2f}")


def _tested_groups(trades: list[Any], min_trades: int, bands: Sequence[float]) -> list[tuple[str, Any, list[Any]]]:
    """(dimension, label, trades) of every group tested: enough trades, fewer than all, a known label."""
    groups = []
    for dimension in DIMENSIONS:
        for label, group in metrics.group_trades(trades, dimension, bands).items():
            if min_trades <= len(group) < len(trades) and label not in ("unknown", "(none)"):
                groups.append((dimension, label, group))
    for edge in bands[1:-1]:
        group = [t for t in trades if t.confidence is not None and t.confidence >= edge]
        if min_trades <= len(group) < len(trades):
            groups.append(("confidence", f">={edge:.2f}", group))
    return groups


def search(trades: Sequence[Any], min_trades: int, bands: Sequence[float] = metrics.DEFAULT_CONFIDENCE_BANDS,
           fdr: float = DEFAULT_FDR, currency: str = "") -> PatternSearch:
    """Test every group with at least ``min_trades`` trades and keep the discoveries at false
    discovery rate ``fdr`` (Benjamini–Hochberg over all the groups tested; see the module doc);
    a claim's P&L is shown in ``currency``."""
    trades = list(trades)
    if len(trades) < min_trades:
        return PatternSearch(0, fdr, [])
    baseline = metrics.win_rate(trades) or 0.0
    groups = _tested_groups(trades, min_trades, bands)
    wins = [sum(1 for t in group if t.pnl > 0) for _, _, group in groups]
    rates = [won / len(group) for won, (_, _, group) in zip(wins, groups)]
    p_values = [metrics.binomial_test(won, len(group), baseline) for won, (_, _, group) in zip(wins, groups)]
    q_values = metrics.benjamini_hochberg(p_values)
    extremes: dict[str, tuple[float, float]] = {}
    for (dimension, _, _), rate in zip(groups, rates):
        low, high = extremes.get(dimension, (rate, rate))
        extremes[dimension] = (min(low, rate), max(high, rate))
    found = []
    for (dimension, label, group), rate, p, q in zip(groups, rates, p_values, q_values):
        if q > fdr:
            continue
        low, high = extremes[dimension]
        if dimension == "confidence":
            kind, shown = "threshold", f"confidence ≥ {label.removeprefix('>=')}"
        else:
            kind = ("best" if rate == high and rate > baseline else "worst" if rate == low and rate < baseline
                    else "above" if rate > baseline else "below")
            shown = label_text(dimension, label)
        found.append(_pattern(dimension, label, kind, group, baseline, shown, p, q, len(groups), currency))
    return PatternSearch(len(groups), fdr, found)


def discover(trades: Sequence[Any], min_trades: int, bands: Sequence[float] = metrics.DEFAULT_CONFIDENCE_BANDS,
             fdr: float = DEFAULT_FDR, currency: str = "") -> list[Pattern]:
    """The discoveries of :func:`search` (the claims the trades support)."""
    return search(trades, min_trades, bands, fdr, currency).patterns
