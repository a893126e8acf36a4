"""Wall-clock runs say an overrunning cycle once, in gobot's words — not apscheduler's "Execution of
job ... skipped: maximum number of running instances reached" at every skipped start — and
gobot.log at INFO carries gobot's story, not apscheduler's and alembic's chatter (issue 17)."""

from __future__ import annotations

import asyncio
import logging

from gobot.run.runner import SCHEDULER_LOGGER, scheduler_logger
from gobot_hookspecs import hookimpl
from servers.bots import WallClockMarket


class Slow:
    """Every cycle takes 0.35 s: seven times a 0.05 s loop_interval."""

    @hookimpl
    async def gobot_generate_ideas(self, ctx, snapshots):
        await asyncio.sleep(0.35)
        return []


def test_overrunning_cycles_are_said_once_in_gobots_words(replay_bot, run_bot, caplog):
    from gobot.run.runner import Runner

    caplog.set_level(logging.INFO)
    stderr_like = []

    class Collect(logging.Handler):  # what a WARNING-level console handler on the root logger prints
        def emit(self, record):
            stderr_like.append(record)

    handler = Collect(level=logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        bot = replay_bot(config={"orchestrator": {"loop_interval": 0.05}}, disable=["replay"],
                         plugins=[("live_feed", WallClockMarket()), ("slow", Slow())])
        runner = Runner(bot, 3)
        outcome = asyncio.run(runner.run())
    finally:
        logging.getLogger().removeHandler(handler)
    assert outcome.finished and bot.state.iteration == 3
    assert runner.overruns >= 2 and runner.skipped_starts >= runner.overruns  # cycles overran, starts were skipped
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "maximum number of running instances" in m]
    assert not [r for r in caplog.records if r.name.startswith("apscheduler") and r.levelno >= logging.WARNING]
    warned = [r.getMessage() for r in stderr_like]
    assert len([m for m in warned if "longer than loop_interval" in m]) == 1, warned
    assert warned[0].startswith("cycle 1 is taking longer than loop_interval (0.05 s): "
                                "the next cycle starts when it ends")
    assert any(f"{runner.overruns} cycles took longer than loop_interval (0.05 s); {runner.skipped_starts} scheduled "
               "starts skipped" in m for m in messages), messages


def test_the_filter_drops_only_the_skipped_start_warning():
    logger = scheduler_logger()
    assert scheduler_logger() is logger and len(logger.filters) == 1  # installed once
    skipped = logging.LogRecord(SCHEDULER_LOGGER, logging.WARNING, __file__, 1,
                                'Execution of job "%s" skipped: maximum number '
                                "of running instances reached (%d)", ("cycle", 1), None)
    missed = logging.LogRecord(SCHEDULER_LOGGER, logging.ERROR, __file__, 1, "Error submitting job", (), None)
    assert not logger.filter(skipped) and logger.filter(missed)


def test_gobot_log_at_info_is_gobots_story(tmp_path):
    from gobot.cli.common import setup_logging
    from gobot.config import load_settings

    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n', encoding="utf-8")
    settings = load_settings(str(config))
    setup_logging(settings)
    try:
        logging.getLogger("apscheduler.scheduler").info("Added job \"Runner._one_cycle\" to job store \"default\"")
        logging.getLogger("apscheduler.executors.default").info("Running job \"Runner._one_cycle\"")
        logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
        logging.getLogger("alembic.runtime.migration").warning("a migration warning still shows")
        logging.getLogger("gobot.run.runner").info("removed temporary files left by a killed process")
    finally:
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "_gobot", False):
                logging.getLogger().removeHandler(handler)
                handler.close()
    text = (tmp_path / "state" / "gobot.log").read_text(encoding="utf-8")
    assert "Added job" not in text and "Running job" not in text and "Context impl" not in text
    assert "a migration warning still shows" in text and "gobot.run.runner: removed temporary files" in text
