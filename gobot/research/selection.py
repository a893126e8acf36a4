"""Statistics of picking a winner among many trials: the deflated Sharpe ratio (Bailey & López de
Prado, 2014) and the stability score of the optimizer's winner (``statistics.NormalDist``; numpy for
the sums of a window's trade returns).

**Returns.** The optimizer judges Sharpe here per trade, not per period: r = P&L / (entry price ×
amount), the return of each closed trade on its position (fees included), over the candidate's
in-sample trades of every walk-forward fold — the sample the trials were chosen on. T is their number.
Per trade because a trade is one independent outcome; the curve's per-candle returns are thousands of
dependent marks of the same few positions.

**Deflated Sharpe ratio.** The best of N trials has a Sharpe ratio above zero by luck alone. Its
expected value under the null of no skill is

    SR₀ = √V · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e)))

with V the variance of the N trials' Sharpe ratios and γ ≈ 0.5772 the Euler–Mascheroni constant. The
DSR is the probability that the winner's true Sharpe ratio exceeds SR₀, given its sample of T returns
with skewness γ₃ and kurtosis γ₄ (3 for a normal distribution):

    DSR = Φ( (SR̂ − SR₀) √(T − 1) / √(1 − γ₃ SR̂ + (γ₄ − 1)/4 · SR̂²) )

0.95 or more: the winner is unlikely to be the luck of the search; 0.5: a coin flip.

**Stability.** The winner's objective under ± one declared ``step`` of each parameter (the
neighbours inside the declared range): the mean neighbour objective over the winner's. Near 1 the
winner sits on a plateau; near 0 or below it is a lone spike, a fit to the noise of one grid point.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Mapping, Sequence

EULER_GAMMA = 0.5772156649015329
#: How many power sums of the per-trade returns a window keeps: n, Σr, Σr², Σr³, Σr⁴.
SUMS = 5


def power_sums(values: Sequence[float]) -> list[float]:
    """[n, Σr, Σr², Σr³, Σr⁴]: what :func:`moments` needs, and windows add up."""
    import numpy as np

    r = np.asarray(values, dtype=np.float64)
    squares = r * r
    return [float(len(r)), float(r.sum()), float(squares.sum()), float((squares * r).sum()),
            float((squares * squares).sum())]


def moments(sums: Sequence[float]) -> dict[str, float | None]:
    """Count, mean, sample standard deviation, per-trade Sharpe (mean / sd), skewness and kurtosis
    (not excess: 3 for a normal distribution) from :func:`power_sums`; None where undefined."""
    n = int(sums[0]) if sums else 0
    out: dict[str, float | None] = {"n": n, "mean": None, "sd": None, "sharpe": None, "skew": None, "kurtosis": None}
    if n < 2:
        return out
    mean = sums[1] / n
    m2 = max(sums[2] / n - mean ** 2, 0.0)
    m3 = sums[3] / n - 3 * mean * sums[2] / n + 2 * mean ** 3
    m4 = sums[4] / n - 4 * mean * sums[3] / n + 6 * mean ** 2 * sums[2] / n - 3 * mean ** 4
    out["mean"] = mean
    if m2 <= 1e-12 * mean * mean or m2 <= 0:  # equal returns (up to rounding): no dispersion
        return out
    sd = math.sqrt(m2 * n / (n - 1))
    out.update(sd=sd, sharpe=mean / sd, skew=m3 / m2 ** 1.5, kurtosis=m4 / m2 ** 2)
    return out


def expected_max_sharpe(variance: float, trials: int) -> float:
    """SR₀: the Sharpe ratio the best of ``trials`` trials reaches by luck when their Sharpe ratios
    vary with ``variance`` and none has skill; 0 for fewer than two trials or no variance."""
    if trials < 2 or variance <= 0:
        return 0.0
    z = NormalDist().inv_cdf
    return math.sqrt(variance) * ((1 - EULER_GAMMA) * z(1 - 1 / trials) + EULER_GAMMA * z(1 - 1 / (trials * math.e)))


def deflated_sharpe(sharpe: float, benchmark: float, observations: int, skew: float, kurtosis: float) -> float | None:
    """Probability that the true Sharpe ratio exceeds ``benchmark`` (SR₀), from ``observations``
    returns whose Sharpe ratio is ``sharpe`` (same unit: per trade) with that skewness and kurtosis
    (not excess); None for fewer than two returns or a non-positive variance term."""
    if observations < 2:
        return None
    spread = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe ** 2
    if spread <= 0:
        return None
    return NormalDist().cdf((sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(spread))


def deflate(winner_sums: Sequence[float], trial_sharpes: Sequence[float]) -> dict[str, Any]:
    """The deflated Sharpe ratio of a winner (its in-sample :func:`power_sums`) chosen among trials
    with these per-trade Sharpe ratios, with every number behind it."""
    stats = moments(winner_sums)
    n = len(trial_sharpes)
    mean = sum(trial_sharpes) / n if n else 0.0
    variance = sum((s - mean) ** 2 for s in trial_sharpes) / (n - 1) if n > 1 else 0.0
    benchmark = expected_max_sharpe(variance, n)
    dsr = None
    if stats["sharpe"] is not None:
        dsr = deflated_sharpe(stats["sharpe"], benchmark, stats["n"], stats["skew"], stats["kurtosis"])
    return {"deflated_sharpe": dsr, "sharpe_per_trade": stats["sharpe"], "trades": stats["n"], "skew": stats["skew"],
            "kurtosis": stats["kurtosis"], "trials": n, "trials_sharpe_variance": variance,
            "expected_max_sharpe": benchmark}


def neighbours(params: Mapping[str, float], specs: Mapping[str, Any]) -> list[dict[str, float]]:
    """The parameter sets one declared ``step`` away along one parameter, inside the declared range."""
    out = []
    for name, spec in specs.items():
        if name not in params or not spec.step:
            continue
        for sign in (-1, 1):
            value = params[name] + sign * spec.step
            if spec.low - 1e-9 <= value <= spec.high + 1e-9:
                value = int(round(value)) if spec.integer else round(value, 12)
                out.append({**params, name: value})
    return out


def stability_score(objective: float, neighbour_objectives: Sequence[float]) -> float | None:
    """Mean neighbour objective / the winner's; None when the winner's objective is not positive or
    it has no neighbour (nothing to compare: not judged)."""
    if objective <= 0 or not neighbour_objectives:
        return None
    return sum(neighbour_objectives) / len(neighbour_objectives) / objective
