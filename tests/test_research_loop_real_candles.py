"""The adjust -> validate loop on real exchange candles (issue 19): 200 cycles of four */BTC pairs with the
default plugins make few versions, never the same rejected proposal twice without new evidence, and judge a
version when there is something new to judge, not every cycle.

The candles (``../shared/data``, GPL data) live outside the repository: without them the test is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
SYMBOLS = ["ETH/BTC", "ADA/BTC", "ETC/BTC", "DASH/BTC"]
CYCLES = 200


@pytest.fixture
def shared_data() -> Path:
    missing = [s for s in SYMBOLS if not (SHARED / f"{s.replace('/', '_')}-5m.csv").exists()]
    if missing:
        pytest.skip(f"{SHARED} has no 5m candles of {', '.join(missing)} (real exchange candles live outside "
                    "the repository)")
    return SHARED


def real_run(replay_bot, run_bot, data: Path, **plugins):
    bot = replay_bot(config={"trading": {"symbols": SYMBOLS},
                             "plugins": {"replay": {"data_dir": str(data)}, **plugins}})
    run_bot(bot, CYCLES)
    return bot


def test_rejected_proposals_are_not_repeated_and_versions_need_acceptance(replay_bot, run_bot, shared_data):
    check_the_loop(real_run(replay_bot, run_bot, shared_data))


def test_a_strict_validator_rejects_and_the_same_change_waits_for_new_trades(replay_bot, run_bot, shared_data):
    bot = real_run(replay_bot, run_bot, shared_data, validator={"max_loss_pct": 0.5, "tolerance_pct": 0})
    check_the_loop(bot)
    rejected = [p for p in bot.state.proposals if p.verdict == "rejected"]
    assert len(rejected) >= 2, "the strict validator rejects proposals on these candles"
    events = [json.loads(line) for line in bot.audit_log.path.read_text().splitlines()]
    refused = [e for e in events if e["event"] == "proposal_refused"]
    assert refused and all(e["new_trades"] < e["needed"] for e in refused)
    assert len(bot.state.proposals) + len(refused) >= CYCLES / 2, "the adjuster keeps asking; the core says no"


def check_the_loop(bot) -> None:
    state, needed = bot.state, bot.settings.strategy_versions.new_evidence_trades
    assert state.iteration == CYCLES
    proposals = state.proposals
    for i, earlier in enumerate(proposals):
        for later in proposals[i + 1:]:
            if earlier.verdict == "rejected" and (later.strategy, later.params) == (earlier.strategy, earlier.params):
                assert later.evidence - earlier.evidence >= needed, (
                    f"proposed again in cycle {later.iteration} with {later.evidence - earlier.evidence} new trades "
                    f"after the rejection in cycle {earlier.iteration}")
    accepted = [p for p in proposals if p.verdict == "accepted"]
    history = [v for v in state.strategy_history if v.name == "sma_rsi"]
    assert len(history) <= len(accepted) + 1
    assert [v.version for v in history] == list(range(1, len(history) + 1)), "numbers go to accepted versions only"
    events = [json.loads(line)["event"] for line in bot.audit_log.path.read_text().splitlines()]
    judged = events.count("validation")
    assert judged <= len(proposals) * 2 + len(state.trades) + 1, "judged on proposals and new evidence only"
    assert judged < CYCLES / 2
