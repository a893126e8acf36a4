"""An adverse week, replayed twice: with the circuit breaker and without it.

The path is the bundled BTC/USDT series (its own noise kept) pushed down a staircase: every 3 hours
the price drops 2.5 % within an hour, then goes sideways — a stop-hunting market in which a bot
that buys every time it is flat is stopped out trade after trade. The design's protections are on
everywhere (3 trades a day, 3-hour cooldowns, volatility and correlation checks) except the daily
and weekly loss limits: the weekly cap is the yardstick here, not a brake. With the breaker the
week's loss stays within ``weekly_loss_limit_usd`` (50); without it, it does not.
"""

import csv
import math
from datetime import datetime, timezone
from pathlib import Path

from gobot_hookspecs import Action, Signal, hookimpl
from risk_helpers import DESIGN_BREAKER, DESIGN_RISK_LIMITS

BUNDLED = Path(__file__).resolve().parents[1] / "data"
WEEKLY_CAP = 50.0
START, END = datetime(2026, 1, 2, tzinfo=timezone.utc), datetime(2026, 1, 9, tzinfo=timezone.utc)
STEP_HOURS, DROP = 3, 0.025


def adverse_path(folder: Path) -> Path:
    folder.mkdir()
    rows = list(csv.reader((BUNDLED / "BTC_USDT-5m.csv").open()))
    t0 = int(rows[1][0])
    with (folder / "BTC_USDT-5m.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(rows[0])
        for ts, *prices, volume in rows[1:]:
            hours = (int(ts) - t0) / 3_600_000
            steps = hours // STEP_HOURS + min(1.0, hours % STEP_HOURS)  # the drop happens in each block's first hour
            tilt = math.exp(math.log(1 - DROP) * steps)
            writer.writerow([ts, *(float(p) * tilt for p in prices), volume])
    return folder


class DipBuyer:
    """Buys BTC/USDT whenever it holds none: the worst habit on a falling market."""

    @hookimpl
    def gobot_generate_ideas(self, snapshots):
        return [Signal(symbol=s.symbol, action=Action.LONG, confidence=0.9, rationale="buy the dip") for s in snapshots]


def week(replay_bot, run_bot, tmp_path, name, data, breaker: bool):
    bot = replay_bot(
        config={
            "trading": {"symbols": ["BTC/USDT"], "initial_capital_usd": 1000, "max_position_usd": 250},
            "orchestrator": {"loop_interval": 3600, "max_daily_loss": 1e6, "daily_profit_target": 1e6},
            "plugins": {"replay": {"data_dir": str(data), "start": START.isoformat()},
                        "risk_limits": {**DESIGN_RISK_LIMITS, "max_total_exposure_usd": 250,
                                        "daily_loss_limit_usd": 0, "weekly_loss_limit_usd": 0},
                        "circuit_breaker": DESIGN_BREAKER},
        },
        plugins=[("dip_buyer", DipBuyer())],
        disable=["sma_rsi", "adjuster", "validator"] + ([] if breaker else ["circuit_breaker"]),
        state_dir=tmp_path / name,
    )
    run_bot(bot, int((END - START).total_seconds() // 3600))
    loss = bot.state.initial_capital - bot.portfolio.equity()
    return bot, loss


def test_the_breaker_keeps_an_adverse_week_within_the_weekly_cap(replay_bot, run_bot, tmp_path):
    data = adverse_path(tmp_path / "adverse")
    with_breaker, loss_on = week(replay_bot, run_bot, tmp_path, "on", data, breaker=True)
    without, loss_off = week(replay_bot, run_bot, tmp_path, "off", data, breaker=False)
    states = [h["to"] for h in with_breaker.state.plugin_state["circuit_breaker"]["history"]]
    print(f"\nadverse week {START:%Y-%m-%d} .. {END:%Y-%m-%d}: BTC/USDT down {DROP:.1%} every {STEP_HOURS} h, "
          f"positions of 250 USD, weekly cap {WEEKLY_CAP:g} USD")
    print(f"  breaker on : loss {loss_on:6.2f} USD, {len(with_breaker.state.trades)} trades, "
          f"breaker {' -> '.join(['CLOSED', *states])}")
    print(f"  breaker off: loss {loss_off:6.2f} USD, {len(without.state.trades)} trades")
    assert loss_on <= WEEKLY_CAP < loss_off, (loss_on, loss_off)
    assert states[-1] == "HARD_STOP"
    assert all(t.pnl < 0 for t in without.state.trades[:5]), "the path is adverse for this strategy"
