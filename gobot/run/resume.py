"""Which run a bot continues: the unfinished run in its state folder, or a new one (a finished run, or
any run with ``--fresh``, is archived to ``runs/`` first), and what a new run on the wall clock takes
over from the run before it: the same account, its positions, working orders and ``carry_over`` states.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from gobot.run.state import BotState, StateStore


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("r%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


@dataclass
class RunStart:
    """The state a bot starts from, and where it came from."""

    state: BotState
    resumed_from: int | None = None  # the last completed cycle of a resumed run
    previous_run: BotState | None = None  # the finished (or replaced) run a new one follows
    carried: dict[str, dict[str, Any]] = field(default_factory=dict)  # its plugin states marked carry_over


def load_run(store: StateStore, capital: float, fresh: bool, reopen: bool = False) -> RunStart:
    """Resume the unfinished run, or archive the last one and start a new run with ``capital``.

    ``reopen``: load the last run even if it finished, never archive or start a new one (operator
    commands on a stopped bot)."""
    previous = store.load()
    if previous is not None and (reopen or not (fresh or previous.finished)):
        return RunStart(previous, resumed_from=previous.iteration)
    start = RunStart(BotState(run_id=new_run_id(), cash=capital, initial_capital=capital, equity_peak=capital))
    if previous is not None:
        start.carried = {n: d for n, d in previous.plugin_state.items() if isinstance(d, dict) and d.get("carry_over")}
        store.archive(previous)
        start.previous_run = previous
    return start


def carry_over_account(start: RunStart) -> None:
    """A new run on the wall clock trades the same account as the run before it: positions still
    open, orders still working and their intents, the ids of the funding payments booked, and every
    plugin state marked ``carry_over`` (an executor's order book, a breaker's hard stop) continue; the
    run's own figures start afresh."""
    state, previous = start.state, start.previous_run
    state.positions = copy.deepcopy(previous.positions)
    state.open_orders = copy.deepcopy(previous.open_orders)
    state.intents = copy.deepcopy(previous.intents)
    state.last_prices = {s: p for s, p in previous.last_prices.items() if s in state.positions}
    state.funding_booked = dict(previous.funding_booked)  # a payment reported again is never booked twice
    for name, data in start.carried.items():
        state.plugin_state.setdefault(name, copy.deepcopy(data))
