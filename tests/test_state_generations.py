"""``StateStore.save``: state.json, its backup and the spare take turns (no file allocated or freed per save),
and whatever a crash, an operator or another program left behind, a save never writes into a file that
state.json or its backup also is."""

from __future__ import annotations

import json
import os
import stat

import pytest

from gobot.run.state import BotState, StateStore


def saved(store: StateStore, iteration: int) -> BotState:
    state = BotState(run_id="r1", iteration=iteration, cash=100.0, initial_capital=100.0)
    store.save(state)
    return state


def iteration(path) -> int:
    return json.loads(path.read_text())["iteration"]


def inodes(store: StateStore) -> list[int]:
    return [os.stat(p).st_ino for p in (store.state_file, store.backup_file, store.spare_file)]


def test_three_files_take_turns_and_each_save_keeps_the_previous_generation(tmp_path):
    store = StateStore(tmp_path / "state")
    for n in range(1, 4):
        saved(store, n)
    first = set(inodes(store))
    for n in range(4, 10):
        saved(store, n)
        assert iteration(store.state_file) == n and iteration(store.backup_file) == n - 1
        assert set(inodes(store)) == first  # the same three files, turn by turn: none made, none freed
        for path in (store.state_file, store.backup_file, store.spare_file):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and os.stat(path).st_nlink == 1
    assert sorted(p.name for p in store.dir.iterdir()) == [".state.json.spare", "state.json", "state.json.bak"]


def test_a_save_cut_between_its_renames_is_repaired_by_the_next(tmp_path):
    """A kill after the backup took state.json's file and before the spare replaced it leaves
    state.json and its backup one file, and the old backup's file under a temporary name (and an
    earlier cut, a temporary link of the backup)."""
    store = StateStore(tmp_path / "state")
    for n in range(1, 4):
        saved(store, n)
    os.link(store.backup_file, store.dir / ".state.json.spare.tmp")
    os.replace(store.backup_file, store.dir / "gone")
    os.link(store.state_file, store.backup_file)  # the backup is state.json's file now
    (store.dir / ".state.json.bak.tmp").write_text("left by an earlier cut")
    saved(store, 4)
    saved(store, 5)
    assert iteration(store.state_file) == 5 and iteration(store.backup_file) == 4
    assert len(set(inodes(store))) == 3 and not list(store.dir.glob("*.tmp"))


@pytest.mark.parametrize("planted", ["hard link to the backup", "symbolic link to state.json"])
def test_a_spare_that_is_another_file_is_never_written_into(tmp_path, planted):
    store = StateStore(tmp_path / "state")
    for n in range(1, 4):
        saved(store, n)
    store.spare_file.unlink()
    if planted.startswith("hard"):
        os.link(store.backup_file, store.spare_file)
    else:
        store.spare_file.symlink_to(store.state_file)
    saved(store, 4)
    assert iteration(store.state_file) == 4 and iteration(store.backup_file) == 3
    assert not store.spare_file.is_symlink() and os.stat(store.spare_file).st_nlink == 1


def test_a_state_json_changed_by_someone_else_is_not_kept_as_the_backup(tmp_path, caplog):
    store = StateStore(tmp_path / "state")
    for n in range(1, 3):
        saved(store, n)
    store.state_file.write_text(store.state_file.read_text().replace('"run_id": "r1"', '"run_id": "r2"'))
    saved(store, 3)
    assert iteration(store.state_file) == 3 and iteration(store.backup_file) == 1
    assert "changed outside this process" in caplog.text


def _save_many(folder, first: int, last: int) -> None:
    store = StateStore(folder)
    store.load()
    for n in range(first, last + 1):
        state = BotState(run_id="r1", iteration=n, cash=100.0, initial_capital=100.0)
        state.plugin_state["ballast"] = {"text": "x" * (400_000 + 37 * n)}  # generations of different lengths
        store.save(state)


def test_reading_while_a_bot_saves_never_meets_a_torn_file(tmp_path):
    """A reader (``gobot status``) beside a bot saving as fast as it can: the file it reads may be written
    in place two saves later (the spare), so a read that spans two saves is read again, never refused."""
    import multiprocessing

    folder = tmp_path / "state"
    _save_many(folder, 1, 3)
    writer = multiprocessing.get_context("fork").Process(target=_save_many, args=(folder, 4, 400))
    writer.start()
    reader, seen = StateStore(folder), []
    try:
        while writer.is_alive():
            seen.append(reader.load().iteration)  # raises StateError on a torn read
    finally:
        writer.join()
    assert writer.exitcode == 0 and len(seen) > 5 and seen == sorted(seen)
