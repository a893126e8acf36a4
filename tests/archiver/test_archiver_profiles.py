"""Profiles side by side on PostgreSQL: every sleeve of `gobot start --profile A --profile B` archives into the
one configured database, tagged with its group and profile, and `gobot report` compares them from there
(the SQLite case: tests/test_sleeves.py)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gobot.cli import cli
from tests.test_sleeves import EXPECTED_CYCLES, PROFILE_ARGS, PROFILES, write_config


def test_a_group_archived_on_postgresql_is_compared_by_the_report(tmp_path, synthetic_data_dir, postgres_url):
    config = write_config(tmp_path, synthetic_data_dir, archive=postgres_url)
    run = CliRunner().invoke(cli, ["start", "--config", str(config), *PROFILE_ARGS, "--max-iterations", "8"],
                             catch_exceptions=False)
    assert run.exit_code == 0, run.output
    assert not (tmp_path / "state" / "archive.db").exists()  # the configured database, not the default file
    done = CliRunner().invoke(cli, ["report", "--config", str(config), "--json"], catch_exceptions=False)
    data = json.loads(done.output)
    rows = data["profiles"]["rows"]
    assert [(r["profile"], r["cycles"]) for r in rows] == [(p, EXPECTED_CYCLES[p]) for p in PROFILES]
    group = json.loads((tmp_path / "state" / "sleeves" / "group.json").read_text())["group_id"]
    assert data["profiles"]["group"] == group and len(data["runs"]) == 3
