"""`gobot start` runs the optimizer on a schedule in wall-clock runs; the result is an alert, and it
becomes a new strategy version only with ``[optimizer] auto_apply``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from gobot.host.strategy_params import REQUEST_FILE
from gobot.research.optimizer_job import optimizer_trigger, run_scheduled
from gobot.run.runner import Runner
from gobot_hookspecs import hookimpl

END_OF_DATA = datetime(2026, 1, 3, 23, 0, tzinfo=timezone.utc)  # the synthetic data's last day


class WallClock:
    simulated = False
    end = None

    def __init__(self, now):
        self._now = now

    def now(self):
        return self._now

    def advance(self, seconds):
        self._now += timedelta(seconds=seconds)


class Wall:
    """A wall clock at the end of the bundled data, and a recorder of the alerts sent."""

    def __init__(self):
        self.alerts = []

    @hookimpl(tryfirst=True)
    def gobot_clock(self):
        return WallClock(END_OF_DATA)

    @hookimpl
    def gobot_send_alert(self, alert):
        self.alerts.append(alert)


def scheduled_bot(replay_bot, auto_apply: bool, **optimizer):
    wall = Wall()
    config = {
        "optimizer": {"scheduled": True, "auto_apply": auto_apply, "max_iterations": 8, "min_trades": 2, "seed": 5,
                      "min_ratio_trades": 0, "schedule_candles": 800, "folds": 2, **optimizer},
        "backtest": {"sizing": "all-in", "risk": "none"},
        "strategies": {"sma_cross": {"fast": 27, "slow": 18}},  # deliberately bad: the slow average is the faster one
        "orchestrator": {"max_iterations": 1},
    }
    bot = replay_bot(config=config, plugins=[("wall", wall)], enable=["sma_cross"],
                     disable=["sma_rsi", "adjuster", "validator", "archiver"])
    return bot, wall


def test_the_schedule_is_weekly_by_default_or_daily_or_a_crontab_line():
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)  # a Thursday
    assert (optimizer_trigger("weekly").get_next_fire_time(None, start)
            == datetime(2026, 1, 4, 3, 0, tzinfo=timezone.utc))
    assert optimizer_trigger("daily").get_next_fire_time(None, start) == datetime(2026, 1, 1, 3, 0, tzinfo=timezone.utc)
    assert (optimizer_trigger("30 6 * * 1").get_next_fire_time(None, start)
            == datetime(2026, 1, 5, 6, 30, tzinfo=timezone.utc))
    with pytest.raises(ValueError, match="use weekly, daily or a crontab line"):
        optimizer_trigger("fortnightly")


def test_gobot_start_schedules_the_optimizer_in_wall_clock_runs(replay_bot):
    bot, _ = scheduled_bot(replay_bot, auto_apply=False)
    unscheduled, _ = scheduled_bot(replay_bot, auto_apply=False, scheduled=False)
    quiet = Runner(unscheduled, max_iterations=1)
    asyncio.run(quiet.run())
    assert quiet.scheduler is not None and quiet.optimizer_job is None
    runner = Runner(bot, max_iterations=1)
    asyncio.run(runner.run())
    job = runner.optimizer_job
    assert job is not None and job.id == "optimizer" and job.args == (bot,)
    assert str(job.trigger) == str(optimizer_trigger("weekly"))


def test_a_scheduled_run_sends_a_report_alert_and_changes_nothing_without_auto_apply(replay_bot):
    bot, wall = scheduled_bot(replay_bot, auto_apply=False)
    report = asyncio.run(run_scheduled(bot))
    assert report is not None and report.improved
    (alert,) = [a for a in wall.alerts if a.kind == "optimizer_report"]
    assert alert.title.endswith("(not applied)") and "auto_apply" in alert.text
    assert alert.data["winner"] == report.kept.params and alert.data["applied"] is False
    assert "deflated Sharpe" in alert.text and alert.data["selection"]["trials"] <= len(report.decisions)
    assert not (bot.settings.state_path / REQUEST_FILE).exists()


def test_with_auto_apply_the_winner_becomes_a_new_version_in_the_next_cycle(replay_bot):
    bot, wall = scheduled_bot(replay_bot, auto_apply=True)
    report = asyncio.run(run_scheduled(bot))
    assert report.improved and (bot.settings.state_path / REQUEST_FILE).exists()
    assert [a.title for a in wall.alerts if a.kind == "optimizer_report"][0].endswith("(applied next cycle)")
    asyncio.run(bot.run_cycle())
    current = bot.state.strategies["sma_cross"]
    assert current.version == 2 and current.params == report.kept.params
    assert current.reason.startswith(f"optimizer: study '{report.study}'")


def test_a_failed_scheduled_run_is_a_warning_alert_not_a_crash(replay_bot):
    bot, wall = scheduled_bot(replay_bot, auto_apply=True, strategy="no_such_strategy")
    assert asyncio.run(run_scheduled(bot)) is None
    (alert,) = [a for a in wall.alerts if a.kind == "optimizer_report"]
    assert alert.severity.value == "WARNING" and "no strategy 'no_such_strategy'" in alert.text
