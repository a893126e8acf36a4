"""The optimizer's honest statistics: a ratio objective is judged only over its minimum sample, the
winner carries a deflated Sharpe ratio for the number of trials (checked against the paper's worked
example) and a stability score, and a lone spike — a best parameter whose neighbours collapse — is
rejected like a winner in sample only, through the real optimizer on synthetic candles."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gobot.config import OptimizerConfig
from gobot.research.backtest.engine import ExecutionSettings, SimpleGate, Sizing
from gobot.research.market_data import Series
from gobot.research.optimizer import Decision, Optimization, Report, decide, request_apply
from gobot.research.selection import (
    deflated_sharpe,
    expected_max_sharpe,
    moments,
    neighbours,
    power_sums,
    stability_score,
)
from gobot_hookspecs import Action, ParamSpec, Signal

T0 = 1_767_225_600_000


def test_the_deflated_sharpe_ratio_matches_the_papers_worked_example():
    """Bailey & López de Prado (2014), section 5: the best of N = 100 trials has an annualised Sharpe
    ratio of 2.5 over T = 1,250 daily returns (5 years of 250 days) with skewness -3 and kurtosis 10;
    the trials' annualised Sharpe ratios have variance 1/2. Per day: SR = 2.5/√250 = 0.158114 and
    V = 0.5/250 = 0.002. Φ⁻¹(1 - 1/100) = 2.326348 and Φ⁻¹(1 - 1/(100e)) = 2.678117, so
    SR₀ = √0.002 · (0.422784 · 2.326348 + 0.577216 · 2.678117) = 0.044721 · 2.530386 = 0.113172
    (1.7894 a year). Then (SR - SR₀)·√1249 = 0.044942 · 35.341 = 1.588282, the denominator is
    √(1 + 3·0.158114 + 9/4·0.025) = √1.530592 = 1.237171, and DSR = Φ(1.283803) = 0.9004 — the paper's 0.9004."""
    sharpe, variance = 2.5 / math.sqrt(250), 0.5 / 250
    benchmark = expected_max_sharpe(variance, 100)
    assert benchmark == pytest.approx(0.113172, abs=1e-6)
    assert benchmark * math.sqrt(250) == pytest.approx(1.7894, abs=1e-4)
    assert deflated_sharpe(sharpe, benchmark, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=1e-4)
    # More trials raise the bar; one trial is no search, and no variance means no luck to deflate.
    assert expected_max_sharpe(variance, 1000) > benchmark > expected_max_sharpe(variance, 10)
    assert expected_max_sharpe(variance, 1) == 0.0 == expected_max_sharpe(0.0, 100)


def test_moments_from_power_sums_are_the_sample_statistics():
    """Returns 0.01, 0.02, 0.03, 0.06: mean 0.03, deviations -0.02, -0.01, 0, 0.03; Σd² = 0.0014, so the
    sample sd is √(0.0014/3) = 0.021602 and the per-trade Sharpe 1.388730; m2 = 0.00035, m3 = (−8e-6 −
    1e-6 + 27e-6)/4 = 4.5e-6, skew = 4.5e-6 / 0.00035^1.5 = 0.687243; m4 = (16 + 1 + 81)e-8/4 = 2.45e-7,
    kurtosis = 2.45e-7 / 0.00035² = 2.0."""
    stats = moments(power_sums([0.01, 0.02, 0.03, 0.06]))
    assert stats["n"] == 4 and stats["mean"] == pytest.approx(0.03)
    assert stats["sd"] == pytest.approx(0.021602, abs=1e-6) and stats["sharpe"] == pytest.approx(1.388730, abs=1e-5)
    assert stats["skew"] == pytest.approx(0.687243, abs=1e-5) and stats["kurtosis"] == pytest.approx(2.0, abs=1e-9)
    assert moments(power_sums([0.01]))["sharpe"] is None and moments([])["n"] == 0


def test_neighbours_are_one_declared_step_away_inside_the_range():
    specs = {"a": ParamSpec(default=5, low=0, high=10, step=2), "b": ParamSpec(default=0.5, low=0.1, high=0.5,
                                                                                step=0.1, integer=False)}
    found = neighbours({"a": 10, "b": 0.3}, specs)
    assert found == [{"a": 8, "b": 0.3}, {"a": 10, "b": 0.2}, {"a": 10, "b": 0.4}]  # a = 12 is out of range
    assert stability_score(2.0, [2.0, 1.0]) == 0.75 and stability_score(-1.0, [1.0]) is None
    assert stability_score(1.0, []) is None


def test_a_ratio_objective_below_its_minimum_sample_is_not_eligible_and_shows_a_dash():
    options = OptimizerConfig(objective="sharpe", min_trades=0, min_ratio_trades=30)
    base = Decision(None, {"x": 0}, "baseline", 0.1, 0.1, 1.0, {"trades": 40}, {"trades": 40})
    thin = Decision(0, {"x": 1}, "tpe", 900.0, 800.0, 0.9, {"trades": 29}, {"trades": 40})
    thin_out = Decision(1, {"x": 2}, "tpe", 900.0, 800.0, 0.9, {"trades": 60}, {"trades": 12})
    enough = Decision(2, {"x": 3}, "tpe", 2.0, 1.5, 0.75, {"trades": 30}, {"trades": 30})
    assert decide(base, [thin, thin_out, enough], options) is enough
    assert thin.reason == "too few trades for a sharpe objective (29 in sample, 40 out; min_ratio_trades 30 each)"
    assert thin_out.reason.startswith("too few trades for a sharpe objective (60 in sample, 12 out")
    assert "IS — (29 trades), OOS +800.000 (40)" in thin.line() and thin.objective_text("in") == "— (n=29)"
    assert "IS +2.000 (30 trades)" in enough.line()
    # --json prints the ratios of a window set below the contract's sample as null, as gobot backtest --json does.
    metrics = {"sharpe": 900.0, "sortino": 950.0, "calmar": 3.0, "return_pct": 1.5}
    thin.in_sample, thin.out_of_sample = {**metrics, "trades": 29}, {**metrics, "trades": 40}
    data = Report("s", "sqlite", "x", "sharpe", base, [thin], base, [], "done").as_dict()
    assert data["trials"][0]["in_sample"] == {"sharpe": None, "sortino": None, "calmar": None, "return_pct": 1.5,
                                              "trades": 29}
    assert data["trials"][0]["out_of_sample"]["sharpe"] == 900.0
    # An objective without Sharpe, Sortino or Calmar has no such sample.
    plain = Decision(3, {"x": 4}, "tpe", 900.0, 800.0, 0.9, {"trades": 29}, {"trades": 12})
    assert decide(base, [plain], OptimizerConfig(objective="return_pct", min_trades=0)) is plain
    assert decide(base, [plain], OptimizerConfig(objectives=["profit_factor", "sharpe"], min_trades=0)) is plain


class Spike:
    """``key`` picks a behaviour on rising candles: a key in ``good`` goes long (and wins), any other
    stays out (objective 0). good = {13}: a lone spike; good = 10..16: a plateau."""

    name = "spike"
    parameters = {"key": ParamSpec(default=0, low=0, high=20, step=1, description="which behaviour")}

    def __init__(self, good: set[int]):
        self.good = good

    def signal(self, symbol, candles, params):
        action = Action.LONG if int(params["key"]) in self.good else Action.HOLD
        return Signal(symbol=symbol, action=action, confidence=1.0 if action is Action.LONG else 0.0)

    def vectorized(self, symbol, candles, params):
        n = len(candles.close)
        return {"action": np.full(n, 1 if int(params["key"]) in self.good else 0, dtype=np.int8)}


def rising(n: int = 3000) -> Series:
    rng = np.random.default_rng(4)
    close = 100 * np.exp(np.cumsum(0.0003 + rng.normal(0, 0.002, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    ts = T0 + np.arange(n, dtype=np.int64) * 60_000
    return Series("BTC/USDT", "1m", ts, open_, np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999,
                  close, np.ones(n), gaps=[])


EXECUTION = ExecutionSettings(fee_percent=0.05, slippage_percent=0.0, stop_loss_percent=0.5, take_profit_percent=1.0,
                              start_equity=1000, sizing=Sizing("all_in"))


def search(tmp_path, good: set[int], lines: list[str]):
    options = OptimizerConfig(objective="return_pct", max_iterations=1, min_trades=0, folds=2, min_stability=0.5,
                              out_of_sample_percent=100)  # windows of one length: comparable returns
    opt = Optimization(Spike(good), [rising()], EXECUTION, lambda params: SimpleGate(EXECUTION.sizing), options,
                       baseline_params={"key": 0}, storage_url=f"sqlite:///{tmp_path / 'optimizer.db'}",
                       say=lines.append)
    opt.prepare().enqueue_trial({"key": 13}, user_attrs={"source": "test"})
    return opt.run()


def test_the_baseline_line_shows_a_dash_for_a_ratio_objective_below_its_sample(tmp_path):
    lines: list[str] = []
    options = OptimizerConfig(objective="sharpe", max_iterations=1, min_trades=0, folds=2, min_ratio_trades=10**6)
    Optimization(Spike({0}), [rising()], EXECUTION, lambda params: SimpleGate(EXECUTION.sizing), options,
                 baseline_params={"key": 0}, storage_url=f"sqlite:///{tmp_path / 'optimizer.db'}",
                 say=lines.append).run()
    baseline = next(line for line in lines if line.startswith("baseline: "))
    assert "-> IS — (" in baseline and "OOS — (" in baseline, baseline


def test_a_lone_spike_is_rejected_like_a_winner_in_sample_only(tmp_path):
    lines: list[str] = []
    report = search(tmp_path, {13}, lines)
    (candidate,) = report.decisions
    assert candidate.objective_in > 0 and candidate.objective_out > 0, "it beats the baseline in and out of sample"
    assert candidate.stability == 0.0, "both neighbours (12 and 14) stay out: objective 0"
    assert not candidate.accepted and candidate.reason.startswith("lone spike: its ± one step neighbours reach 0.00")
    assert not report.improved and report.selection == {}
    assert any(line.startswith("#0 test: key=13") and "stability 0.00: rejected — lone spike" in line for line in lines)


def test_a_winner_on_a_plateau_carries_its_stability_and_deflated_sharpe(tmp_path):
    report = search(tmp_path, set(range(10, 17)), [])
    assert report.improved and report.kept.params == {"key": 13}
    assert report.kept.stability == pytest.approx(1.0)
    selection = report.selection
    assert selection["stability"] == report.kept.stability and selection["trials"] == 1, selection
    assert selection["trades"] == report.kept.in_sample["trades"] > 1
    assert selection["expected_max_sharpe"] == 0.0, "one trial: nothing to deflate for"
    stats = moments(report.kept.in_sample["return_sums"])
    assert selection["sharpe_per_trade"] == stats["sharpe"]
    expected = deflated_sharpe(stats["sharpe"], 0.0, stats["n"], stats["skew"], stats["kurtosis"])
    assert selection["deflated_sharpe"] == pytest.approx(expected)
    data = report.as_dict()
    assert data["selection"]["deflated_sharpe"] == selection["deflated_sharpe"]
    assert data["winner"]["stability"] == pytest.approx(1.0)
    request = request_apply(tmp_path / "state", report, "test")
    written = json.loads((tmp_path / "state" / "OPTIMIZED.json").read_text())
    assert written["deflated_sharpe"] == pytest.approx(selection["deflated_sharpe"]) == request["deflated_sharpe"]
    assert written["stability"] == pytest.approx(1.0) and written["trials"] == 1
    assert "deflated Sharpe" in written["reason"] and "stability 1.00" in written["reason"]
