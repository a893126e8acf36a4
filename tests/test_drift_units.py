"""The drift plugin's parts on their own: the attribution adds up to the gap, the CUSUM's false-alarm
rate and detection delay hold, and the daily summary hook adds its lines (issue 21)."""

from __future__ import annotations

import random

import pytest

from gobot_hookspecs import hookimpl
from gobot_plugins.drift import sentinel
from gobot_plugins.drift import twin as twins
from gobot_plugins.drift.attribution import PARTS, Live, attribute

MINUTE = 60_000


def _candles(start: int, opens: list[float], spread: float = 0.001) -> list[tuple[int, float, float, float]]:
    return [(start + i * MINUTE, o, o * (1 + spread), o * (1 - spread)) for i, o in enumerate(opens)]


def _run(twin: dict, candles, fee=0.1, slip=0.05, grace=2) -> None:
    for ts, o, h, lo in candles:
        twins.step(twin, ts, o, h, lo, MINUTE, fee, slip, grace)


@pytest.mark.parametrize("seed", range(40))
def test_the_parts_add_up_to_the_gap_to_the_cent_whatever_the_live_side_did(seed):
    rng = random.Random(seed)
    side = rng.choice([1, -1])
    base = 100 + rng.random() * 50000
    opens = [base * (1 + 0.002 * rng.gauss(0, 1)) for _ in range(12)]
    candles = _candles(0, opens)
    twin = twins.new_twin("c1", "BTC/USDT", side, 0.01 + rng.random(), created_ms=30_000, stop=None, target=None)
    twin["close_ms"] = 6 * MINUTE + 5
    _run(twin, candles)
    assert twin["entry_ms"] == MINUTE and twin["exit_ms"] == 7 * MINUTE
    opens_seen: list = []
    for ts, o, _, _ in candles:
        twins.remember_open(opens_seen, ts, o)
    amount = twin["amount"] * rng.choice([1.0, 0.5, 0.999])  # partial fills, a buyer's commission in base
    entry, exit_ = opens[rng.randrange(12)] * (1 + 0.003 * rng.random()), opens[rng.randrange(12)]
    fees = rng.random() * 2
    funding = rng.choice([0.0, -0.37, 0.21])
    other = rng.choice([0.0, 0.05])  # what a conversion to another portfolio currency would add
    pnl = side * (exit_ - entry) * amount - fees + funding + other
    live = Live(amount=amount, entry_price=entry, exit_price=exit_, fees=fees, pnl=pnl,
                entry_ms=rng.randrange(0, 10 * MINUTE), exit_ms=rng.randrange(5 * MINUTE, 12 * MINUTE),
                funding=funding)
    parts = attribute(live, twin, opens_seen, MINUTE)
    gap = pnl - twins.pnl(twin)
    assert abs(sum(getattr(parts, p) for p in PARTS) - gap) < 1e-9  # to the cent, and far below it
    assert parts.funding == funding and parts.funding_other == pytest.approx(other, abs=1e-9)
    missed = attribute(None, twin, opens_seen, MINUTE)
    assert missed.total == pytest.approx(-twins.pnl(twin), abs=1e-9)


def test_a_live_fill_a_candle_later_than_the_twins_is_fill_delay_not_slippage():
    candles = _candles(0, [100.0, 100.0, 101.0, 102.0, 102.0])
    twin = twins.new_twin("c", "X", 1, 1.0, created_ms=10, stop=None, target=None)
    twin["close_ms"] = 3 * MINUTE + 1
    _run(twin, candles, fee=0.0, slip=0.0)
    seen: list = []
    for ts, o, _, _ in candles:
        twins.remember_open(seen, ts, o)
    live = Live(amount=1.0, entry_price=101.0, exit_price=102.0, fees=0.0, pnl=1.0, entry_ms=2 * MINUTE + 7,
                exit_ms=4 * MINUTE + 3)
    parts = attribute(live, twin, seen, MINUTE)
    assert parts.entry_delay == pytest.approx(-1.0) and parts.entry_slippage == pytest.approx(0.0)
    assert parts.exit_delay == pytest.approx(0.0) and parts.exit_slippage == pytest.approx(0.0)


def test_a_twin_rests_with_the_stop_and_follows_a_live_exit_it_never_saw_after_the_grace():
    twin = twins.new_twin("c", "X", 1, 1.0, created_ms=0, stop=95.0, target=None)
    _run(twin, _candles(0, [100.0, 99.0, 94.0]), fee=0.0, slip=0.0)
    assert twin["exit_reason"] == "stop_loss" and twin["exit_price"] == pytest.approx(94.0)  # gapped through the stop
    other = twins.new_twin("d", "X", 1, 1.0, created_ms=0, stop=50.0, target=None)
    other["live_exit_ms"] = MINUTE + 5
    _run(other, _candles(0, [100.0] * 6), fee=0.0, slip=0.0, grace=2)
    assert other["exit_reason"] == "follow_live" and other["exit_ms"] == 4 * MINUTE


# -- the sequential test -------------------------------------------------------------------------

REFERENCES = {
    "2R target, 40% wins": [2.0] * 40 + [-1.0] * 60,
    "1R target, 55% wins": [1.0] * 55 + [-1.0] * 45,
    "skewed": [3.5] * 15 + [0.4] * 30 + [-1.0] * 55,
}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_a_healthy_strategy_alarms_within_the_horizon_at_about_the_documented_rate(name):
    reference = REFERENCES[name]
    calibration = sentinel.calibrate(reference, horizon=100, false_alarm_rate=0.05)
    rng = random.Random(7)
    runs = 400
    alarms = sentinel.false_alarms(calibration, [rng.choices(reference, k=100) for _ in range(runs)])
    assert alarms / runs <= 0.05 + 0.03  # 0.05 documented; 3 standard errors of 400 runs is 0.033


@pytest.mark.parametrize("name", list(REFERENCES))
def test_an_edge_gone_to_stop_losses_alarms_within_the_documented_number_of_trades(name):
    calibration = sentinel.calibrate(REFERENCES[name])
    s, trades = 0.0, 0
    while s <= calibration.h:
        s = sentinel.update(s, -1.0, calibration.mean, calibration.sd, calibration.allowance)
        trades += 1
    assert trades == calibration.loss_delay <= 20


def test_the_band_narrows_with_more_trades():
    reference = REFERENCES["2R target, 40% wins"]
    low5, high5 = sentinel.band(reference, 5)
    low50, high50 = sentinel.band(reference, 50)
    assert low5 < low50 < 0.2 < high50 < high5


# -- the daily summary hook --------------------------------------------------------------------------


class Line:
    @hookimpl
    def gobot_daily_summary(self, ctx, day):
        return f"a line for {day} in {ctx.currency}"


class Alerts:
    def __init__(self):
        self.alerts = []

    @hookimpl
    def gobot_send_alert(self, alert):
        self.alerts.append(alert)


def test_a_plugins_line_joins_the_daily_summary(replay_bot, run_bot):
    alerts = Alerts()
    bot = replay_bot(config={"orchestrator": {"loop_interval": 3600}},
                     plugins=[("line", Line()), ("alerts", alerts)])
    run_bot(bot, 30)
    summaries = [a for a in alerts.alerts if a.kind == "daily_summary"]
    assert summaries
    for summary in summaries:
        line = f"a line for {summary.data['day']} in USDT"
        assert summary.text.endswith("\n" + line) and summary.data["lines"] == [{"plugin": "line", "text": line}]
