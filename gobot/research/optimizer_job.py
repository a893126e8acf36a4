"""The optimizer as a scheduled job of ``gobot start`` (wall-clock runs, ``[optimizer] scheduled``).

APScheduler fires it on ``[optimizer] schedule`` (weekly by default: Sunday 03:00 UTC). It takes the
last ``schedule_candles`` candles of every symbol from the market-data plugin (``ctx.candles``),
starts from the strategy's current version, runs the optimizer in a worker thread (the cycles go
on), and sends the result as an ``optimizer_report`` alert. With ``auto_apply`` an accepted winner
is handed to the adjust phase, which proposes it in the next cycle: a new strategy version once the
validate phase accepts it, else a rejected proposal; without it, nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timezone
from typing import Any

from gobot.errors import GobotError
from gobot_hookspecs import Alert, Severity, StrategyVersion

log = logging.getLogger(__name__)

SCHEDULES = {"weekly": "0 3 * * sun", "daily": "0 3 * * *"}


def optimizer_trigger(schedule: str):
    """``weekly``, ``daily`` or a crontab line (UTC) as an APScheduler trigger."""
    from apscheduler.triggers.cron import CronTrigger

    from gobot.host.extras import require

    require("optimize", "optuna", "[optimizer] schedule (the scheduled optimizer)")  # said at start, not a week later

    line = SCHEDULES.get(schedule.strip().lower(), schedule)
    fields = line.split()
    if len(fields) == 5:  # cron counts weekdays from Sunday = 0 (or 7); APScheduler 3 from Monday: use names
        names = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
        fields[4] = re.sub(r"\d+", lambda m: names[int(m.group())] if int(m.group()) < 8 else m.group(), fields[4])
        line = " ".join(fields)
    try:
        return CronTrigger.from_crontab(line, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"[optimizer] schedule '{schedule}': {exc}; use weekly, daily or a crontab line such as "
                         "\"0 3 * * 0\"") from None


async def run_scheduled(bot: Any):
    """One scheduled optimization for a running bot; returns the report (None when it could not run)."""
    from gobot.research.backtest.setup import BacktestSetup
    from gobot.research.market_data import series_from_candles
    from gobot.research.optimizer import Optimization, request_apply, selection_text

    settings, options = bot.settings, bot.settings.optimizer
    try:
        setup = BacktestSetup(settings, bot.plugin_set, bot.hooks, bot.plugin_configs, dict(bot.strategies))
        strategy = setup.strategy(options.strategy or None)
        current: StrategyVersion = bot.state.strategies[strategy.name]
        series = []
        for symbol in settings.trading.symbols:
            candles = await bot.ctx.candles(symbol, settings.backtest.timeframe, options.schedule_candles)
            series.append(series_from_candles(symbol, candles))
        execution = setup.execution()
        if getattr(strategy, "long_only", False):
            from dataclasses import replace

            execution = replace(execution, allow_short=False)
        stamp = bot.clock.now().strftime("%Y%m%d-%H%M")
        optimization = Optimization(
            strategy, series, execution,
            lambda params: setup.gate(execution, strategy, StrategyVersion(name=strategy.name, params=params)),
            options, baseline_params=current.params,
            storage_url=options.storage, state_path=settings.state_path,
            study_name=f"scheduled-{strategy.name}-{stamp}", say=lambda text: log.info("optimizer: %s", text),
        )
        report = await asyncio.to_thread(optimization.run, 1)
    except Exception as exc:  # a failed optimization must not stop the bot
        if isinstance(exc, GobotError):
            log.error("scheduled optimizer run failed: %s", exc)
        else:
            log.exception("scheduled optimizer run failed")
        bot.ctx.alert(Alert(kind="optimizer_report", title="Optimizer run failed", text=f"{type(exc).__name__}: {exc}",
                            severity=Severity.WARNING))
        await bot.drain()
        return None
    applied = False
    if report.improved and options.auto_apply:
        request_apply(settings.state_path, report, "scheduled optimizer (auto_apply)")
        applied = True
    kept = report.kept
    if report.improved:
        params = ", ".join(f"{k}={v:g}" for k, v in kept.params.items())
        title = (f"Optimizer: {strategy.name} winner #{kept.number}"
                 + (" (applied next cycle)" if applied else " (not applied)"))
        text = (f"{params}; {report.objective} in sample {kept.objective_in:+.3f} "
                f"(baseline {report.baseline.objective_in:+.3f}), "
                f"out of sample {kept.objective_out:+.3f} (baseline {report.baseline.objective_out:+.3f}); "
                + selection_text(report.selection)
                + ("" if applied else "; set [optimizer] auto_apply = true, or run gobot optimize --apply"))
    else:
        title = f"Optimizer: {strategy.name} keeps v{current.version}"
        text = f"no candidate of {len(report.decisions)} beat the current parameters out of sample"
    bot.ctx.alert(Alert(kind="optimizer_report", title=title, text=text, data={
        "study": report.study, "applied": applied, "winner": kept.params if report.improved else None,
        "trials": len(report.decisions), "stopped": report.stopped, "selection": report.selection,
        "finished_at": datetime.now(timezone.utc).isoformat()}))
    await bot.drain()
    return report
