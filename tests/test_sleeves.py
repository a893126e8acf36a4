"""Profiles side by side: `gobot start --profile conservative --profile aggressive --profile scalping` runs
each profile on its own sleeve of capital and state folder, over the same market and time span, archived
together; a killed group resumes every sleeve; --live is refused; `gobot report` compares the profiles
(text, JSON, HTML) with the report's metrics, intervals and cautions."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot.testing import replay_test_risk_toml

GOBOT = str(Path(sys.executable).parent / "gobot")
PROFILES = ("conservative", "aggressive", "scalping")
#: The config's loop_interval (the default, 900 s) x 8: the span every sleeve trades.
CYCLES = 8
SPAN = timedelta(seconds=CYCLES * 900)
#: Cycles each profile runs in that span: its loop_interval is 3600, 900 and 300 s (gobot.profiles).
EXPECTED_CYCLES = {"conservative": 2, "aggressive": 8, "scalping": 24}


def write_config(folder: Path, data_dir: Path, archive: str = "") -> Path:
    config = folder / "config.toml"
    url = f'database_url = "{archive}"\n' if archive else ""
    config.write_text(f'state_dir = "state"\n[plugins]\nenable = ["archiver"]\n[plugins.replay]\n'
                      f'data_dir = "{data_dir}"\n[plugins.archiver]\n{url}' + replay_test_risk_toml())
    return config


def start(config: Path, *args: str) -> object:
    return CliRunner().invoke(cli, ["start", "--config", str(config), *PROFILE_ARGS, *args], catch_exceptions=False)


PROFILE_ARGS = [arg for name in PROFILES for arg in ("--profile", name)]


def spawn(config: Path, *args: str, kill_point: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GOBOT_TEST_KILL_POINT"}
    if kill_point:
        env["GOBOT_TEST_KILL_POINT"] = kill_point
    return subprocess.run([GOBOT, "start", "--config", str(config), *PROFILE_ARGS, "--max-iterations", str(CYCLES),
                           *args], env=env, capture_output=True, text=True, timeout=120)


def sleeve_state(folder: Path, profile: str) -> dict:
    return json.loads((folder / "state" / "sleeves" / profile / "state.json").read_text())


def archived_runs(folder: Path) -> list[tuple]:
    with sqlite3.connect(folder / "state" / "archive.db") as db:
        return db.execute("SELECT r.run_id, r.group_id, r.profile, r.initial_capital, (SELECT count(*) FROM cycles c "
                          "WHERE c.run_id = r.run_id) FROM runs r ORDER BY r.id").fetchall()


@pytest.fixture(scope="module")
def group_run(tmp_path_factory, synthetic_data_dir):
    """One side-by-side run of the three profiles, 8 base cycles long, archived to state/archive.db."""
    folder = tmp_path_factory.mktemp("sleeves")
    config = write_config(folder, synthetic_data_dir)
    result = start(config, "--max-iterations", str(CYCLES))
    assert result.exit_code == 0, result.output
    return folder, config, result.output


def test_each_profile_runs_on_its_own_sleeve_and_state_folder(group_run):
    folder, _config, output = group_run
    states = {p: sleeve_state(folder, p) for p in PROFILES}
    assert len({s["run_id"] for s in states.values()}) == 3
    for profile, state in states.items():
        assert state["initial_capital"] == pytest.approx(100 / 3)  # initial_capital_usd split equally
        assert state["finished"] is True
        assert (folder / "state" / "sleeves" / profile / "audit.jsonl").exists()
        assert f"Sleeve {profile}: run {state['run_id']}" in output
    assert not (folder / "state" / "state.json").exists()  # the parent folder holds no bot of its own
    assert "Profiles compared" in output and "win% 95% CI" in output
    for profile in PROFILES:  # the sleeves' cycle lines interleave: each names its profile ([plugins.console] label)
        assert re.search(rf"^{profile}\s+#1 ", output, re.M)
    assert "the group's time span ended" in output


def test_the_sleeves_trade_the_same_time_span_with_their_own_loop_intervals(group_run):
    folder, _config, _output = group_run
    group = json.loads((folder / "state" / "sleeves" / "group.json").read_text())
    start_at = datetime.fromisoformat(group["start"])
    assert datetime.fromisoformat(group["end"]) < start_at + SPAN
    for profile in PROFILES:
        state = sleeve_state(folder, profile)
        times = [datetime.fromisoformat(c["time"]) for c in state["cycles"]]
        assert state["iteration"] == EXPECTED_CYCLES[profile]
        assert times[0] == start_at  # every sleeve starts at the same moment of the market
        interval = (times[1] - times[0]) if len(times) > 1 else SPAN
        assert start_at + SPAN - interval <= times[-1] < start_at + SPAN  # and covers the whole span, no more


def test_one_archive_holds_the_three_runs_tagged_with_the_group_and_profile(group_run):
    folder, _config, _output = group_run
    group = json.loads((folder / "state" / "sleeves" / "group.json").read_text())["group_id"]
    rows = archived_runs(folder)
    assert [(g, p) for _r, g, p, _c, _n in rows] == [(group, p) for p in PROFILES]
    assert {r: n for r, _g, _p, _c, n in rows} == {sleeve_state(folder, p)["run_id"]: EXPECTED_CYCLES[p]
                                                   for p in PROFILES}
    assert not list((folder / "state" / "sleeves").glob("*/archive.db"))


def test_status_on_the_parent_folder_shows_every_sleeve(group_run):
    _folder, config, _output = group_run
    status = CliRunner().invoke(cli, ["status", "--config", str(config), "--json"], catch_exceptions=False)
    sleeves = json.loads(status.output)["sleeves"]
    assert sleeves["finished"] is True
    assert {p: s["iteration"] for p, s in sleeves["profiles"].items()} == EXPECTED_CYCLES
    text = CliRunner().invoke(cli, ["status", "--config", str(config)], catch_exceptions=False).output
    assert f"group {sleeves['group_id']}" in text and all(f"{p}: run" in text for p in PROFILES)


def test_shares_divide_the_capital_and_bad_shares_are_refused(tmp_path, synthetic_data_dir):
    config = write_config(tmp_path, synthetic_data_dir)
    done = start(config, "--max-iterations", "2", "--share", "scalping=50")
    assert done.exit_code == 0, done.output
    capitals = {p: sleeve_state(tmp_path, p)["initial_capital"] for p in PROFILES}
    assert capitals == pytest.approx({"conservative": 25, "aggressive": 25, "scalping": 50})
    for share, says in (("scalping=100", "above 0 and below 100"), ("momentum=10", "PROFILE=PERCENT"),
                        ("scalping=60", "")):
        args = ["--fresh", "--share", share] + (["--share", "aggressive=50"] if share == "scalping=60" else [])
        refused = CliRunner().invoke(cli, ["start", "--config", str(config), *PROFILE_ARGS, *args])
        assert refused.exit_code != 0 and says in str(refused.exception) and "--share" in str(refused.exception)


def test_live_with_several_profiles_is_refused(tmp_path, synthetic_data_dir):
    config = write_config(tmp_path, synthetic_data_dir)
    refused = CliRunner().invoke(cli, ["start", "--config", str(config), "--live", *PROFILE_ARGS])
    assert refused.exit_code != 0
    assert "paper only" in str(refused.exception)  # `gobot` prints it as one "Error: ..." line
    assert not (tmp_path / "state" / "sleeves").exists()  # refused before anything was started


@pytest.mark.slow
def test_a_killed_group_resumes_every_sleeve_to_the_same_end(tmp_path, synthetic_data_dir, group_run):
    config = write_config(tmp_path, synthetic_data_dir)
    crashed = spawn(config, kill_point="after_cycle:5")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    before = {p: sleeve_state(tmp_path, p) for p in PROFILES}
    group = json.loads((tmp_path / "state" / "sleeves" / "group.json").read_text())
    assert group["finished"] is False
    assert any(not s["finished"] for s in before.values())

    resumed = spawn(config)
    assert resumed.returncode == 0, resumed.stderr
    for profile, state in before.items():
        if not state["finished"]:
            line = f"Sleeve {profile}: resuming run {state['run_id']} after cycle {state['iteration']}"
            assert line in resumed.stdout
    after = {p: sleeve_state(tmp_path, p) for p in PROFILES}
    assert {p: s["run_id"] for p, s in after.items()} == {p: s["run_id"] for p, s in before.items()}
    assert {p: s["iteration"] for p, s in after.items()} == EXPECTED_CYCLES
    assert json.loads((tmp_path / "state" / "sleeves" / "group.json").read_text()) == {**group, "finished": True}
    rows = archived_runs(tmp_path)
    assert len(rows) == 3 and {g for _r, g, _p, _c, _n in rows} == {group["group_id"]}
    assert {p: n for _r, _g, p, _c, n in rows} == EXPECTED_CYCLES  # every cycle archived once
    uninterrupted = group_run[0]
    for profile in PROFILES:  # the same trades as the group that was never killed
        assert [t["pnl"] for t in after[profile]["trades"]] == pytest.approx(
            [t["pnl"] for t in sleeve_state(uninterrupted, profile)["trades"]])


def report(*args: str):
    return CliRunner().invoke(cli, ["report", *args], catch_exceptions=False)


def test_the_report_compares_the_latest_group_in_text_and_json(group_run):
    folder, config, _output = group_run
    text = report("--config", str(config))
    assert text.exit_code == 0, text.output
    assert "Profiles compared" in text.output and "caution:" in text.output
    for profile in PROFILES:
        assert profile in text.output
    data = json.loads(report("--config", str(config), "--json").output)
    rows = data["profiles"]["rows"]
    assert [r["profile"] for r in rows] == list(PROFILES)
    for row in rows:
        state = sleeve_state(folder, row["profile"])
        assert row["run_id"] == state["run_id"] and row["cycles"] == EXPECTED_CYCLES[row["profile"]]
        assert row["trades"] == len(state["trades"])
        assert row["initial_capital"] == pytest.approx(100 / 3)
        assert row["return_pct"] == pytest.approx(state["cycles"][-1]["equity"] / row["initial_capital"] - 1)
        if row["trades"]:
            assert row["win_rate_ci"][0] <= row["win_rate"] <= row["win_rate_ci"][1]
        assert row["sharpe"] is None  # under the report's minimum sample (30 trades): not shown
    assert any("too few closed trades" in c for c in data["profiles"]["cautions"])
    assert data["scope"].startswith(f"group {data['profiles']['group']}")
    assert data["start_equity"] == pytest.approx(100)  # the whole group's capital
    # each sleeve's versions of a strategy stay apart: its v1 is not another sleeve's v1
    assert {v["name"].split("/")[0] for v in data["versions"]} == set(PROFILES)
    labels = [row["label"] for row in data["by"]["strategy_version"]]
    assert labels and all(label.split("/")[0] in PROFILES for label in labels)
    assert sum(row["trades"] for row in data["by"]["strategy_version"]) == sum(r["trades"] for r in rows)

    one = json.loads(report("--config", str(config), "--json", "--run", rows[1]["run_id"]).output)
    assert [r["run_id"] for r in one["runs"]] == [rows[1]["run_id"]]  # a sleeve's own report ...
    assert one["profiles"]["group"] == data["profiles"]["group"]  # ... with its group compared
    by_group = json.loads(report("--config", str(config), "--json", "--run", data["profiles"]["group"]).output)
    assert len(by_group["runs"]) == 3


def test_the_html_report_has_the_table_and_every_sleeve_equity_in_one_chart(group_run, tmp_path):
    from tests.chart_page_support import ChartPage

    _folder, config, _output = group_run
    page = tmp_path / "report.html"
    done = report("--config", str(config), "--html", str(page))
    assert done.exit_code == 0, done.output
    text = page.read_text()
    assert "<h2>Profiles compared" in text and text.count('id="profiles-equity"') == 1
    with ChartPage(page) as chart:
        chart.wait_drawn()
        assert chart.errors == [] and chart.left == []
        assert chart.state("profiles-equity")["points"] == sum(EXPECTED_CYCLES.values())


def test_on_the_wall_clock_each_sleeve_runs_on_its_own_schedule_in_one_event_loop(tmp_path, synthetic_data_dir):
    """No simulated clock (no replay; a feed of current candles): the sleeves' schedulers run side by side in
    one asyncio loop, each every its own loop_interval, max_iterations scaled to one span of wall time."""
    import asyncio

    from gobot.config import load_settings
    from gobot.run.sleeves import build_bots, plan_group, run_group
    from servers.bots import WallClockMarket

    config = write_config(tmp_path, synthetic_data_dir)
    parent = load_settings(str(config))
    parent.orchestrator.loop_interval = 0.15  # the span: 4 x 0.15 s of wall time
    group = plan_group(str(config), parent, PROFILES, (), (), ["replay"], fresh=False)
    intervals = {"conservative": 0.3, "aggressive": 0.15, "scalping": 0.075}  # the profiles' 3600/900/300 s, sped up
    for sleeve in group.sleeves:
        sleeve.settings.orchestrator.loop_interval = intervals[sleeve.profile]
        sleeve.plugin_set.pm.register(WallClockMarket(), name="live_feed")
    build_bots(group, 4, lambda sleeve: None)
    assert not any(s.bot.clock.simulated for s in group.sleeves) and group.start is None
    asyncio.run(run_group(group))
    states = {s.profile: s.bot.state for s in group.sleeves}
    assert {p: s.iteration for p, s in states.items()} == {"conservative": 2, "aggressive": 4, "scalping": 8}
    firsts = [s.cycles[0].time for s in states.values()]
    lasts = [s.cycles[-1].time for s in states.values()]
    assert max(firsts) < min(lasts)  # they ran at the same time, not one after the other
    assert all(s.outcome.finished for s in group.sleeves)
