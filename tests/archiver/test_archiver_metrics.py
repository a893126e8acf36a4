"""The shared metrics (gobot_hookspecs.metrics) against values computed by hand, and pattern discovery's
minimum sample and false discovery rate. Pure Python: no database."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from gobot_hookspecs import Action, Trade, metrics
from gobot_plugins.archiver.patterns import discover, search

DAY = datetime(2026, 1, 5, tzinfo=timezone.utc)


def trade(symbol, direction, entry, exit_, amount, pnl, opened, minutes, confidence, stop, version, fees=0.2):
    opened_at = DAY + opened
    return Trade(symbol=symbol, direction=direction, amount=amount, entry_price=entry, exit_price=exit_,
                 opened_at=opened_at, closed_at=opened_at + timedelta(minutes=minutes), fees=fees, pnl=pnl,
                 exit_reason="signal", confidence=confidence, strategy="s", strategy_version=version,
                 initial_stop_loss=stop)


def hours(h, m=0):
    return timedelta(hours=h, minutes=m)


#: The fixed trade list. Hand-computed: P&L 9.8 - 4.2 + 5.8 - 4.2 = 7.2; wins 9.8 and 5.8; losses
#: -4.2 twice; R = 9.8/5, -4.2/5, 5.8/4 (the last trade has no stop); holding 60, 120, 30, 120 min.
TRADES = [
    trade("BTC/USDT", Action.LONG, 100, 110, 1, 9.8, hours(14), 60, 0.85, 95, 1),
    trade("BTC/USDT", Action.SHORT, 100, 104, 1, -4.2, hours(14, 30), 120, 0.65, 105, 1),
    trade("ETH/USDT", Action.LONG, 50, 53, 2, 5.8, hours(9), 30, 0.91, 48, 2),
    trade("ETH/USDT", Action.LONG, 50, 48, 2, -4.2, hours(9, 15), 120, 0.72, None, 2),
]


def test_trade_metrics_match_the_hand_computed_values():
    m = metrics.trade_metrics(TRADES, start_equity=100.0)
    assert (m.trades, m.wins, m.losses) == (4, 2, 2)
    assert m.win_rate == 0.5
    assert m.total_pnl == pytest.approx(7.2)
    assert m.avg_pnl == pytest.approx(1.8)
    assert m.avg_win == pytest.approx(7.8) and m.avg_loss == pytest.approx(-4.2)
    assert m.gross_profit == pytest.approx(15.6) and m.gross_loss == pytest.approx(8.4)
    assert m.profit_factor == pytest.approx(15.6 / 8.4)
    assert m.expectancy == pytest.approx(0.5 * 7.8 - 0.5 * 4.2)  # = the average P&L
    assert m.expectancy_r == pytest.approx((1.96 - 0.84 + 1.45) / 3)
    assert m.total_fees == pytest.approx(0.8)
    assert m.avg_holding_seconds == pytest.approx((60 + 120 + 30 + 120) * 60 / 4)


def test_drawdown_comes_from_the_equity_curve_in_closing_order():
    # 100 -> 105.8 (09:30) -> 101.6 (11:15) -> 111.4 (15:00) -> 107.2 (16:30)
    curve = metrics.equity_curve(TRADES, 100.0)
    assert [round(v, 6) for _, v in curve] == [100.0, 105.8, 101.6, 111.4, 107.2]
    assert curve[0][0] == DAY + hours(9)
    money, fraction = metrics.max_drawdown(curve)
    assert money == pytest.approx(4.2)
    assert fraction == pytest.approx(4.2 / 105.8)  # the same fall from the lower peak is the deeper one in %


def test_sharpe_and_sortino_are_annualised_by_the_curves_own_sampling():
    # Daily points: returns +10 %, -10 %, +10 %. mean 1/30; sample stdev sqrt(1/75); downside
    # deviation sqrt(0.01 / 3); 3 returns over 3 days = 365 periods a year.
    curve = [(DAY + timedelta(days=i), value) for i, value in enumerate([100.0, 110.0, 99.0, 108.9])]
    assert metrics.periods_per_year(curve) == pytest.approx(365)
    assert metrics.sharpe_ratio(curve) == pytest.approx(math.sqrt(75) / 30 * math.sqrt(365))  # 5.515
    assert metrics.sortino_ratio(curve) == pytest.approx((1 / 30) / math.sqrt(0.01 / 3) * math.sqrt(365))  # 11.03
    hourly = [(DAY + timedelta(hours=i), v) for i, (_, v) in enumerate(curve)]
    assert metrics.sharpe_ratio(hourly) == pytest.approx(metrics.sharpe_ratio(curve) * math.sqrt(24))


def test_undefined_ratios_are_none_and_no_losses_is_an_infinite_profit_factor():
    empty = metrics.trade_metrics([], 100.0)
    assert empty.trades == 0 and empty.win_rate is None and empty.profit_factor is None and empty.sharpe is None
    winners = [TRADES[0], TRADES[2]]
    m = metrics.trade_metrics(winners, 100.0)
    assert m.profit_factor == math.inf and m.as_dict()["profit_factor"] == "inf"
    assert m.sortino is None, "no losing period: no downside deviation"
    assert metrics.sharpe_ratio([(DAY, 100.0), (DAY + hours(1), 101.0)]) is None, "one return has no dispersion"


def test_trades_are_grouped_per_version_symbol_side_hour_and_confidence_band():
    label = lambda dimension: {k: len(v) for k, v in metrics.group_trades(TRADES, dimension).items()}  # noqa: E731
    assert label("strategy_version") == {"s v1": 2, "s v2": 2}
    assert label("symbol") == {"BTC/USDT": 2, "ETH/USDT": 2}
    assert label("side") == {"LONG": 3, "SHORT": 1}
    assert label("hour") == {9: 2, 14: 2}
    assert label("confidence_band") == {"0.60-0.70": 1, "0.70-0.80": 1, "0.80-0.90": 1, "0.90-1.00": 1}
    by_hour = metrics.metrics_by(TRADES, "hour", 100.0)
    assert by_hour[14].total_pnl == pytest.approx(5.6) and by_hour[9].total_pnl == pytest.approx(1.6)


def test_confidence_bands_are_half_open_with_the_top_edge_included():
    assert metrics.confidence_band(0.8) == "0.80-0.90"
    assert metrics.confidence_band(1.0) == "0.90-1.00"
    assert metrics.confidence_band(0.3) == "0.00-0.50"
    assert metrics.confidence_band(None) == "unknown"
    assert metrics.confidence_band(0.55, [0.0, 0.5, 1.0]) == "0.50-1.00"


def test_version_labels_sort_numerically():
    many = [TRADES[0].model_copy(update={"strategy_version": v}) for v in (10, 2, 1)]
    assert list(metrics.group_trades(many, "strategy_version")) == ["s v1", "s v2", "s v10"]


def test_the_expectancy_interval_is_the_mean_plus_minus_z_standard_errors():
    # [1, 2, 3, 4, 5]: mean 3, sample standard deviation sqrt(2.5), n 5 -> 3 +- 1.96 * sqrt(2.5) / sqrt(5)
    low, high = metrics.mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 1.96 * math.sqrt(2.5) / math.sqrt(5)
    assert (low, high) == pytest.approx((3 - half, 3 + half))
    assert metrics.mean_interval([2.0, 2.0]) == (2.0, 2.0)  # no spread: the mean itself
    assert metrics.mean_interval([1.0]) is None and metrics.mean_interval([]) is None  # no spread to measure


def test_the_wilson_interval_matches_the_published_values():
    low, high = metrics.wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert metrics.wilson_interval(0, 0) == (0.0, 1.0)
    low, high = metrics.wilson_interval(0, 5)
    assert low == 0.0 and 0.4 < high < 0.5


# -- pattern discovery ------------------------------------------------------------------------------


def sample(hour_wins: dict[int, tuple[int, int]]) -> list[Trade]:
    """Trades per entry hour: ``{hour: (wins, losses)}``; each win +1, each loss -1."""
    trades = []
    for hour, (wins, losses) in hour_wins.items():
        for i in range(wins + losses):
            pnl = 1.0 if i < wins else -1.0
            trades.append(trade("BTC/USDT", Action.LONG, 100, 101 if pnl > 0 else 99, 1, pnl,
                                hours(hour) + timedelta(days=i), 30, 0.5 + 0.02 * (i % 25), 98, 1))
    return trades


def test_a_pattern_needs_the_minimum_sample_and_says_its_size_and_interval():
    trades = sample({14: (18, 6), 3: (6, 18)})  # 24 trades at 14:00 winning 75 %, 24 at 03:00 winning 25 %
    found = discover(trades, min_trades=24)
    best = next(p for p in found if p.dimension == "hour" and p.kind == "best")
    assert best.label == "14" and best.trades == 24 and best.wins == 18
    assert best.text.startswith("best hour 14:00 UTC: 75% win rate over 24 trades (95% CI 55%-88%; all trades 50%; "
                                "p=0.023, q=0.045 over 4 groups)")
    assert best.p_value == pytest.approx(0.0226558, abs=1e-6) and best.groups_tested == 4
    assert (round(best.ci_low, 2), round(best.ci_high, 2)) == (0.55, 0.88) and best.notable
    worst = next(p for p in found if p.dimension == "hour" and p.kind == "worst")
    assert worst.label == "3" and worst.notable and worst.win_rate == 0.25
    assert all(p.trades >= 24 for p in found)
    assert not [p for p in discover(trades, min_trades=25) if p.dimension == "hour"], "24 trades an hour are below 25"


def test_a_confidence_threshold_is_claimed_only_over_enough_trades():
    trades = sample({10: (30, 10)})
    found = discover(trades, min_trades=10, fdr=1.0)  # q = 1 claims every group tested: this checks the groups
    thresholds = {p.label: p for p in found if p.kind == "threshold"}
    assert thresholds, found
    for label, p in thresholds.items():
        edge = float(label.removeprefix(">="))
        assert p.trades == sum(1 for t in trades if t.confidence >= edge) >= 10
        assert p.text.startswith(f"confidence ≥ {edge:.2f}: ") and f"over {p.trades} trades (95% CI" in p.text


def test_no_pattern_below_the_minimum_sample():
    assert discover(sample({14: (5, 0), 15: (0, 5)}), min_trades=20) == []


def test_the_core_run_summary_uses_the_shared_metrics(replay_bot, run_bot):
    from gobot.run.summary import run_metrics

    bot = replay_bot(disable=["archiver"])
    bot.state.trades.extend(TRADES)
    summary = run_metrics(bot.state)
    assert summary["win_rate"] == metrics.win_rate(TRADES)
    assert summary["expectancy"] == pytest.approx(metrics.expectancy(TRADES))


def test_the_exact_binomial_test_matches_hand_computed_tails():
    """18 wins of 24 at p = 1/2: P(X >= 18) = (C(24,18) + ... + C(24,24)) / 2^24 = 190,051 / 16,777,216,
    and the distribution is symmetric, so the two-sided p-value is twice that: 0.0226558."""
    assert metrics.binomial_test(18, 24, 0.5) == pytest.approx(2 * 190_051 / 2**24, rel=1e-12)
    assert metrics.binomial_test(6, 24, 0.5) == pytest.approx(2 * 190_051 / 2**24, rel=1e-12)
    # Asymmetric: 3 of 10 at p = 0.1. P(3) = 120 * 0.001 * 0.9^7 = 0.0573956; every outcome from 3 up is
    # no more likely, and none below (P(0..2) = 0.349, 0.387, 0.194), so p = 1 - P(0) - P(1) - P(2).
    below = sum(math.comb(10, k) * 0.1**k * 0.9 ** (10 - k) for k in range(3))
    assert metrics.binomial_test(3, 10, 0.1) == pytest.approx(1 - below, rel=1e-12)
    assert metrics.binomial_test(12, 24, 0.5) == 1.0 and metrics.binomial_test(0, 0, 0.5) == 1.0
    assert metrics.binomial_test(60_000, 100_000, 0.5) < 1e-100  # 100,000 trades: a few hundred terms


def test_benjamini_hochberg_matches_a_hand_computed_example():
    """p = 0.01, 0.04, 0.03, 0.005 over m = 4 groups. Sorted: 0.005, 0.01, 0.03, 0.04 -> p·m/rank =
    0.02, 0.02, 0.04, 0.04, then the running minimum from the largest rank down: 0.02, 0.02, 0.04, 0.04.
    At q = 0.03 two discoveries (the two smallest); at q = 0.05 all four; a raw 0.04 alone would pass 0.05."""
    q = metrics.benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    assert q == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert sum(v <= 0.03 for v in q) == 2 and sum(v <= 0.05 for v in q) == 4
    # A larger p with a smaller p·m/rank lowers the ones before it: 0.04·5/5 = 0.04 < 0.035·5/4.
    assert metrics.benjamini_hochberg([0.001, 0.034, 0.035, 0.039, 0.04])[1:] == pytest.approx([0.04] * 4)
    assert metrics.benjamini_hochberg([]) == []


def noise_and_one_effect(seed: int = 7) -> list[Trade]:
    """51 symbols of 60 trades: 50 win with probability 1/2 (noise), EDGE/USDT wins with probability 0.8."""
    rng = random.Random(seed)
    trades = []
    for s in range(51):
        symbol, chance = ("EDGE/USDT", 0.8) if s == 50 else (f"N{s:02d}/USDT", 0.5)
        for i in range(60):
            pnl = 1.0 if rng.random() < chance else -1.0
            trades.append(trade(symbol, Action.LONG, 100, 101 if pnl > 0 else 99, 1, pnl, hours(12) + timedelta(days=i),
                                30, None, 98, 1))
    return trades


def test_discovery_finds_a_real_effect_among_50_noise_groups_and_none_of_the_noise():
    trades = noise_and_one_effect()
    found = search(trades, min_trades=20)
    assert found.tested == 51, "every symbol is a group tested; hour, side and version hold all trades: no test"
    assert [(p.label, p.kind) for p in found.patterns] == [("EDGE/USDT", "best")]
    assert found.summary() == "51 groups tested, 1 discovery at FDR q = 0.10"
    # Without the correction, noise would be claimed: some noise symbols pass p < 0.05 on their own.
    baseline = metrics.win_rate(trades)
    lucky = [label for label, group in metrics.group_trades(trades, "symbol").items() if label != "EDGE/USDT"
             and metrics.binomial_test(sum(t.pnl > 0 for t in group), len(group), baseline) < 0.05]
    assert lucky, "this seed has noise groups that look significant alone"
    assert all(p.q_value <= 0.10 and p.groups_tested == 51 for p in found.patterns)


def test_pure_noise_makes_no_discovery():
    trades = [t for t in noise_and_one_effect(seed=11) if t.symbol != "EDGE/USDT"]
    found = search(trades, min_trades=20)
    assert found.tested == 50 and found.patterns == []
