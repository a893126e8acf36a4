"""Profiles side by side: several strategy profiles in one paper run (``gobot start --profile conservative
--profile aggressive``), each a bot of its own on its own sleeve of capital, in one process.

Each sleeve is the config with its profile applied (``gobot.profiles.apply_profile``), a share of
``initial_capital_usd`` (equal by default), its own state folder ``<state_dir>/sleeves/<profile>/``
(state, audit log, heartbeat) and its own plugin instances (plugins hold state). They see the same
market data over the same time span: on a simulated clock every sleeve starts at the latest of their
first cycles and stops when its own clock passes one common end (``max_iterations`` × the config's
``loop_interval`` after the start, or the end of the data), so a sleeve with a shorter loop_interval runs
more cycles; on the wall clock each runs on its own schedule in the one event loop. Every sleeve archives
into the one archive of the parent state folder, its run tagged with the group and its profile
(``[plugins.archiver] group`` / ``profile``), which ``gobot report`` compares. The group
(``sleeves/group.json``) resumes as a whole: a restart with the same profiles resumes every sleeve's own run.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Sequence

from gobot.config import Settings, load_settings
from gobot.errors import StartRefused
from gobot.host.plugin_manager import PluginSet, build_plugin_set
from gobot.profiles import get_profile
from gobot.run.sleeve_status import GROUP_FILE, SLEEVES_DIR, read_group

#: A simulated sleeve runs while its clock is at or before the common end: one microsecond short of
#: ``start + span``, so the config's loop_interval gives exactly ``max_iterations`` cycles.
_END_MARGIN = timedelta(microseconds=1)


@dataclass
class Sleeve:
    """One profile's share of the run: its settings, plugins, bot and runner."""

    profile: str
    share: float
    settings: Settings
    plugin_set: PluginSet
    bot: Any = None
    runner: Any = None
    outcome: Any = None
    error: BaseException | None = None


@dataclass
class SleeveGroup:
    """The sleeves of one side-by-side run, and what they share: the group id and the time span."""

    group_id: str
    parent: Settings
    sleeves: list[Sleeve]
    new: bool  # a new group (fresh sleeves); else every sleeve resumes its own run
    start: datetime | None = None
    end: datetime | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.parent.state_path / SLEEVES_DIR

    @property
    def until(self) -> datetime | None:
        """Where the common span ends, as said to people: the end plus its margin (``_END_MARGIN``)."""
        return self.end + _END_MARGIN if self.end is not None else None


def parse_shares(specs: Sequence[str], profiles: Sequence[str]) -> dict[str, float]:
    """Each profile's fraction of the capital from ``PROFILE=PERCENT`` specs (``--share aggressive=50``);
    the profiles not named split the rest equally. Errors say which spec and how to fix it."""
    named: dict[str, float] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        name = name.strip()
        if not sep or name not in profiles:
            raise StartRefused(f"--share {spec}: write PROFILE=PERCENT with one of the profiles run "
                               f"({', '.join(profiles)}), e.g. --share {profiles[0]}=50")
        try:
            percent = float(value.strip().rstrip("%"))
        except ValueError:
            percent = math.nan
        if not 0 < percent < 100:
            raise StartRefused(f"--share {spec}: the percent must be a number above 0 and below 100")
        named[name] = percent / 100
    rest = [p for p in profiles if p not in named]
    left = 1.0 - sum(named.values())
    if left < -1e-9 or (rest and left <= 1e-9):
        raise StartRefused(f"--share: the shares add up to {sum(named.values()):.0%}; together they must leave "
                           f"room for {', '.join(rest)}" if rest else "--share: the shares add up to more than 100%")
    if not rest and abs(left) > 1e-6:
        raise StartRefused(f"--share: the shares add up to {sum(named.values()):.0%}; with every profile named "
                           "they must add up to 100%")
    return {p: named.get(p, left / len(rest) if rest else 0.0) for p in profiles}


def sleeve_settings(config_path: str | None, parent: Settings, profile: str, share: float, group_id: str) -> Settings:
    """The config with ``profile`` applied (file, then profile, then GOBOT_ variables, validated like a file),
    then the sleeve's own: capital share (and that share of the daily profit target), state folder, the
    parent's kill switch and archive, the group tags."""
    capital = parent.trading.initial_capital_usd * share  # the profile's amounts scale to the sleeve's capital
    settings = load_settings(config_path, profile=get_profile(profile), capital=capital)
    settings.state_dir = str((parent.state_path / SLEEVES_DIR / profile).resolve())
    settings.trading.initial_capital_usd = capital
    if "orchestrator.daily_profit_target" not in get_profile(profile).flat():  # the file's: for the whole capital
        settings.orchestrator.daily_profit_target = parent.orchestrator.daily_profit_target * share
    settings.orchestrator.kill_switch_file = str(parent.kill_switch_path.resolve())  # `gobot kill` stops them all
    archiver = settings.plugin_sections.setdefault("archiver", {})
    if not archiver.get("database_url"):
        archiver["database_url"] = f"sqlite:///{(parent.state_path / 'archive.db').resolve()}"
    archiver.update(group=group_id, profile=profile)
    settings.plugin_sections.setdefault("console", {}).setdefault("label", profile)  # the sleeves' lines interleave
    return settings


def write_group(group: SleeveGroup, finished: bool = False) -> None:
    from gobot.run.state import atomic_write, ensure_private_dir

    ensure_private_dir(group.folder)
    data = {"group_id": group.group_id, "profiles": [s.profile for s in group.sleeves],
            "shares": {s.profile: s.share for s in group.sleeves},
            "start": group.start.isoformat() if group.start else None,
            "end": group.end.isoformat() if group.end else None, "finished": finished}
    atomic_write(group.folder / GROUP_FILE, json.dumps(data, indent=2))


def plan_group(config_path: str | None, parent: Settings, profiles: Sequence[str], shares: Sequence[str],
               enable: Sequence[str], disable: Sequence[str], fresh: bool) -> SleeveGroup:
    """The sleeves to run: the unfinished group of these profiles in the state folder (resumed), or a new one."""
    if len(set(profiles)) != len(profiles):
        raise StartRefused(f"--profile: each profile runs once (given: {', '.join(profiles)})")
    for name in profiles:
        try:
            get_profile(name)
        except KeyError as exc:
            raise StartRefused(f"--profile {name}: {exc.args[0]}") from None
    folder = parent.state_path / SLEEVES_DIR
    last = None if fresh else read_group(folder)
    if last is not None and not last.get("finished") and last.get("profiles") != list(profiles):
        raise StartRefused(f"an unfinished side-by-side run of {', '.join(last.get('profiles') or [])} is in "
                           f"{folder}: start it with the same --profile options to resume it, or pass --fresh")
    resume = last is not None and not last.get("finished")
    if resume:
        split = {p: float(last["shares"][p]) for p in profiles}
        group_id = last["group_id"]
    else:
        split = parse_shares(shares, profiles)
        from gobot.run.resume import new_run_id

        group_id = "g" + new_run_id()[1:]
    sleeves = []
    for name in profiles:
        settings = sleeve_settings(config_path, parent, name, split[name], group_id)
        plugin_set = build_plugin_set(enable=[*settings.plugins.enable, *enable],
                                      disable=[*settings.plugins.disable, *disable])
        plugin_set.raise_for_failures()
        sleeves.append(Sleeve(name, split[name], settings, plugin_set))
    group = SleeveGroup(group_id, parent, sleeves, new=not resume)
    if resume:
        group.start, group.end = (datetime.fromisoformat(last[k]) if last.get(k) else None for k in ("start", "end"))
    if resume and shares:
        group.notes.append("--share ignored: a resumed group keeps the shares it started with")
    return group


def build_bots(group: SleeveGroup, max_iterations: int | None, on_started: Callable[[Sleeve], None]) -> None:
    """A Bot and a Runner per sleeve; on a simulated clock the common start and end are set on every clock."""
    from gobot.run.bot import Bot
    from gobot.run.runner import Runner, RunOutcome
    from gobot.run.state import StateStore

    for sleeve in group.sleeves:
        done = None if group.new else StateStore(sleeve.settings.state_path).load()
        if done is not None and done.finished:  # this sleeve ended (a target, the data) while others were cut off
            sleeve.bot = Bot(sleeve.settings, sleeve.plugin_set, reopen=True)
            sleeve.outcome = RunOutcome(f"finished before: {done.finish_reason}", True, 0)
            continue
        sleeve.bot = Bot(sleeve.settings, sleeve.plugin_set, fresh=group.new)
    clocks = [s.bot.clock for s in group.sleeves]
    simulated = all(c.simulated for c in clocks)
    cycles = group.parent.orchestrator.max_iterations if max_iterations is None else max_iterations
    base = group.parent.orchestrator.loop_interval
    if simulated:
        if group.start is None:  # a new group: the latest first cycle, one span, the earliest data end
            group.start = max(c.now() for c in clocks)
            ends = [c.end for c in clocks if getattr(c, "end", None) is not None]
            if cycles:
                ends.append(group.start + timedelta(seconds=cycles * base) - _END_MARGIN)
            group.end = min(ends) if ends else None
        for sleeve in group.sleeves:
            if sleeve.outcome is not None:
                continue
            if sleeve.bot.state.iteration == 0 and sleeve.bot.clock.now() < group.start:
                sleeve.bot.clock.advance((group.start - sleeve.bot.clock.now()).total_seconds())
            if group.end is not None:
                sleeve.bot.clock.end = group.end
    write_group(group)
    for sleeve in group.sleeves:
        if sleeve.outcome is not None:
            continue
        own = sleeve.settings.orchestrator.loop_interval
        limit = 0 if simulated else (math.ceil(cycles * base / own) if cycles else 0)
        sleeve.runner = Runner(sleeve.bot, limit, on_started=lambda s=sleeve: on_started(s), handle_signals=False)
        if simulated and group.end is not None:
            sleeve.runner.clock_end_reason = f"the group's time span ended ({group.until:%Y-%m-%d %H:%M} UTC)"


async def run_group(group: SleeveGroup) -> None:
    """Every sleeve's runner in this event loop; SIGINT/SIGTERM stop them all. A sleeve that crashes is
    recorded (``Sleeve.error``) while the others go on."""
    loop = asyncio.get_running_loop()
    running = [s for s in group.sleeves if s.runner is not None]
    runners = [s.runner for s in running]

    def stop_all(reason: str) -> None:
        for runner in runners:
            runner.request_stop(reason)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_all, f"stopped by {sig.name}")
    try:
        results = await asyncio.gather(*(r.run() for r in runners), return_exceptions=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    for sleeve, result in zip(running, results):
        if isinstance(result, BaseException):
            sleeve.error = result
        else:
            sleeve.outcome = result
    finished = all(s.outcome is not None and s.outcome.finished for s in group.sleeves)
    write_group(group, finished=finished)
