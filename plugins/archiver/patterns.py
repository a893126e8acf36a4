"""Pattern discovery: which hours, confidence levels, symbols, sides and strategy versions win more
(or less) than the rest — claimed only over enough trades, each with its sample size and a 95 %
Wilson interval for the win rate.

A claim is one of:

- ``best`` / ``worst``: the group with the highest / lowest win rate along a dimension (ties go to
  the larger total P&L), among the groups with at least ``min_trades`` trades, when there are two
  such groups or more;
- ``above`` / ``below``: any other group whose interval lies entirely above / below the win rate of
  all trades (``notable``: unlikely to be chance at the 95 % level);
- ``threshold``: the trades whose entry confidence is at least an edge of the confidence bands
  ("confidence ≥ 0.80: 82 % win rate over 40 trades").

``best`` and ``worst`` are reported even when their interval includes the overall rate (then
``notable`` is false and the text says "not significant"): the interval is always beside the claim.
Light: standard library and the contract only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from gobot_hookspecs import metrics

DIMENSIONS = ("hour", "confidence_band", "symbol", "side", "strategy_version")
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
    notable: bool
    text: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_text(dimension: str, label: Any) -> str:
    if dimension == "hour":
        return f"{int(label):02d}:00 UTC"
    if dimension == "confidence_band":
        return f"confidence {label}"
    return str(label)


def _pattern(dimension: str, label: Any, kind: str, group: Sequence[Any], baseline: float, shown: str) -> Pattern:
    n = len(group)
    wins = sum(1 for t in group if t.pnl > 0)
    low, high = metrics.wilson_interval(wins, n)
    total = sum(t.pnl for t in group)
    notable = low > baseline or high < baseline
    prefix = f"{kind} {_NAMES.get(dimension, dimension)} " if kind in ("best", "worst") else ""
    if dimension in ("hour", "confidence_band") and kind in ("best", "worst"):
        shown = shown.removeprefix("confidence ")
    verdict = "" if notable else ", not significant"
    text = (
        f"{prefix}{shown}: {wins / n:.0%} win rate over {n} trades "
        f"(95% CI {low:.0%}-{high:.0%}; all trades {baseline:.0%}{verdict}), P&L {total:+.2f}"
    )
    return Pattern(
        dimension=dimension, label=str(label), kind=kind, trades=n, wins=wins, win_rate=wins / n, ci_low=low,
        ci_high=high, baseline_win_rate=baseline, total_pnl=total, avg_pnl=total / n,
        profit_factor=metrics.profit_factor(group), notable=notable, text=text,
    )


def discover(trades: Sequence[Any], min_trades: int,
             bands: Sequence[float] = metrics.DEFAULT_CONFIDENCE_BANDS) -> list[Pattern]:
    """Every claim the trades support with at least ``min_trades`` trades behind it (see the module doc)."""
    trades = list(trades)
    if len(trades) < min_trades:
        return []
    baseline = metrics.win_rate(trades) or 0.0
    found: list[Pattern] = []
    for dimension in DIMENSIONS:
        groups = {
            label: group for label, group in metrics.group_trades(trades, dimension, bands).items()
            if len(group) >= min_trades and label not in ("unknown", "(none)")
        }
        if not groups:
            continue
        ranked = sorted(
            groups.items(),
            key=lambda item: (sum(1 for t in item[1] if t.pnl > 0) / len(item[1]), sum(t.pnl for t in item[1])),
        )
        claimed: set[Any] = set()
        rate = lambda item: sum(1 for t in item[1] if t.pnl > 0) / len(item[1])  # noqa: E731
        if len(ranked) >= 2 and rate(ranked[-1]) > rate(ranked[0]):  # a best needs a worse one
            for kind, (label, group) in (("best", ranked[-1]), ("worst", ranked[0])):
                found.append(_pattern(dimension, label, kind, group, baseline, label_text(dimension, label)))
                claimed.add(label)
        for label, group in ranked:
            if label in claimed:
                continue
            candidate = _pattern(dimension, label, "above", group, baseline, label_text(dimension, label))
            if candidate.notable:
                kind = "above" if candidate.ci_low > baseline else "below"
                found.append(_pattern(dimension, label, kind, group, baseline, label_text(dimension, label)))
    for edge in bands[1:-1]:
        group = [t for t in trades if t.confidence is not None and t.confidence >= edge]
        if min_trades <= len(group) < len(trades):
            found.append(_pattern("confidence", f">={edge:.2f}", "threshold", group, baseline,
                                  f"confidence ≥ {edge:.2f}"))
    return found
