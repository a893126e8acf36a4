"""``gobot start --fresh`` says in one line what it starts afresh and what it keeps in the state folder."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gobot.cli import cli


@pytest.fixture
def config(tmp_path, monkeypatch, synthetic_data_dir):
    monkeypatch.delenv("GOBOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text(f'state_dir = "state"\n[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n',
                                          encoding="utf-8")
    return tmp_path


def start(*args):
    result = CliRunner().invoke(cli, ["start", "--quiet", "--max-iterations", "1", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_fresh_names_what_survives_in_the_state_folder(config):
    start()
    (config / "state" / "vision").mkdir()  # what the vision and telegram plugins would have left
    (config / "state" / "telegram-outbox.json").write_text("[]", encoding="utf-8")
    [note] = [line for line in start("--fresh") if line.startswith("--fresh")]
    assert note.startswith("--fresh: a new run, the previous one's state archived in runs/; kept: ")
    for kept in ("the archive (archive.db)", "the vision answer cache and spend ledger (vision/)",
                 "the Telegram outbox", "the audit log", "earlier runs (runs/)"):
        assert kept in note


def test_fresh_with_nothing_to_archive_says_so(config):
    [note] = [line for line in start("--fresh") if line.startswith("--fresh")]
    assert note.startswith("--fresh: a new run (none to archive); kept: ")


def test_without_fresh_there_is_no_such_line(config):
    assert not [line for line in start() if line.startswith("--fresh")]
