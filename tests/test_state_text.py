"""``StateText``: the kept texts of the state's lists give the file a dump of the whole state would give.

The append-only lists go last, one item a line; the lists of models inside the rest (strategy versions,
proposals, learnings) are reused item by item and must read exactly as the dump of the rest writes them,
also when an item is changed in place, is of a subclass, or holds a secret.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from gobot.run.state import BotState, CycleRow, StateText, parse_state
from gobot.secrets import redact
from gobot_hookspecs import Learning, StrategyProposal, StrategyVersion

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SECRET = "s3cret-token-for-tests-Xq"


def _state() -> BotState:
    version = StrategyVersion(name="sma", version=1, params={"fast": 5.0, "slow": 20.0}, created_at=T0)
    return BotState(
        run_id="r1", cash=100.0, initial_capital=100.0, iteration=2, strategies={"sma": version},
        strategy_history=[version],
        proposals=[StrategyProposal(strategy="sma", base_version=1, params={"fast": 6.0, "slow": 20.0},
                                    changes={"fast": 6.0}, reason="r", created_at=T0, verdict="rejected",
                                    reasons=["worse"])],
        learnings=[Learning(id=f"L{i}", text=f"learning {i}", evidence={"trend": "flat", "n": i, "x": [1.5, None]},
                            iteration=i, created_at=T0) for i in range(3)],
        plugin_state={"p": {"a": [1, 2], "b": {"c": "d"}}},
        cycles=[CycleRow(iteration=i, time=T0) for i in (1, 2)],
        vetoes=[{"iteration": 1, "symbol": "BTC/USDT", "reasons": "x"}],
    )


def _whole(state: BotState) -> str:
    """What the text must be: the dump of the state without the lists, then the lists one item a line."""
    head = redact(state.model_dump_json(indent=1, exclude=set(StateText.LISTS)))
    tail = ",\n ".join(
        f'"{name}": [\n  ' + ",\n  ".join(StateText._text(item) for item in getattr(state, name)) + "\n ]"
        if getattr(state, name) else f'"{name}": []' for name in StateText.LISTS)
    return f"{head[:-2]},\n {tail}\n}}"


def test_kept_texts_read_as_the_whole_dump_through_appends_trims_and_changes_in_place():
    state, rows = _state(), StateText()
    assert rows.text(state) == _whole(state)
    parse_state(rows.text(state).encode())  # a state file that reads back
    state.learnings = (state.learnings + [Learning(id="L9", text="new", evidence={"k": 1}, created_at=T0)])[-3:]
    state.proposals.append(state.proposals[0].model_copy(update={"verdict": "accepted", "version": 2}))
    state.strategy_history.append(StrategyVersion(name="sma", version=2, params={"fast": 6.0, "slow": 20.0}))
    assert rows.text(state) == _whole(state)
    state.learnings[0].evidence["trend"] = "bullish"  # changed in place after all: written as it is now
    state.learnings[1].text = "edited"
    state.strategy_history[0].params["fast"] = 7.0
    assert rows.text(state) == _whole(state)
    state.learnings, state.proposals, state.strategy_history = [], [], []
    assert rows.text(state) == _whole(state)


def test_an_item_of_a_subclass_is_written_as_the_field_declares_it():
    class Richer(Learning):
        extra: str = "not a field of Learning"

    state, rows = _state(), StateText()
    rows.text(state)
    state.learnings.append(Richer(id="L7", text="richer", created_at=T0))
    assert rows.text(state) == _whole(state)
    assert "not a field of Learning" not in rows.text(state)


def test_secrets_in_kept_items_are_masked_also_when_set_after_the_item_was_kept(monkeypatch):
    state, rows = _state(), StateText()
    state.learnings.append(Learning(id="L5", text=f"token {SECRET} seen", created_at=T0))
    rows.text(state)  # kept before the secret is known
    monkeypatch.setenv("TELEGRAM_TOKEN", SECRET)
    text = rows.text(state)
    assert SECRET not in text
    assert json.loads(text)["learnings"][-1]["text"] == "token *** seen"
