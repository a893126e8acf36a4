"""`gobot report`: terminal tables, --json with the shared metrics, a self-contained --html page with
its plots, and clear errors — over an archive on SQLite or PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot_hookspecs import metrics


@pytest.fixture
def archived_run(tmp_path, synthetic_data_dir, database_url, monkeypatch, replay_bot, run_bot):
    """A 60-cycle run archived to ``database_url``, and a config file that points at both (as $GOBOT_CONFIG)."""
    import gobot.testing

    risk = getattr(gobot.testing, "REPLAY_TEST_RISK", {})
    sections = "".join(
        f"[plugins.{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
        for name, values in risk.items()
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'state_dir = "state"\n[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n{sections}'
        f'[plugins.archiver]\ndatabase_url = "{database_url}"\nmin_pattern_trades = 3\n'
    )
    monkeypatch.setenv("GOBOT_CONFIG", str(config))
    bot = replay_bot(config={"plugins": {"archiver": {"database_url": database_url, "min_pattern_trades": 3}}},
                     state_dir=tmp_path / "state")
    run_bot(bot, 60)
    assert bot.state.trades
    return bot


def report(*args):
    return CliRunner().invoke(cli, ["report", *args], catch_exceptions=False)


def test_the_terminal_report_shows_the_summary_and_every_table(archived_run):
    result = report()
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"run {archived_run.state.run_id}" in out
    for title in ("Summary", "By strategy version", "By symbol", "By side", "By hour of entry (UTC)",
                  "By confidence band", "Strategy versions side by side", "Patterns", "Activity", "Phase timings"):
        assert title in out, title
    wins = sum(1 for t in archived_run.state.trades if t.pnl > 0)
    assert f"({wins}/{len(archived_run.state.trades)}; 95% CI" in out
    assert "sma_rsi v1" in out and "BTC/USDT" in out
    assert re.search(r"Patterns.*: \d+ groups? tested, \d+ discover(y|ies) at FDR q = 0\.10", " ".join(out.split()))


def test_json_metrics_are_the_shared_metrics_of_the_archived_trades(archived_run):
    result = report("--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    trades = archived_run.state.trades
    expected = metrics.trade_metrics(trades, 100.0, curve=[(c.time, c.equity) for c in archived_run.state.cycles])
    summary = data["summary"]
    assert summary["trades"] == len(trades) and summary["wins"] == expected.wins
    for key in ("total_pnl", "avg_pnl", "expectancy", "expectancy_r", "max_drawdown", "sharpe", "sortino",
                "avg_holding_seconds"):
        assert summary[key] == pytest.approx(getattr(expected, key)), key
    by_symbol = {row["label"]: row for row in data["by"]["symbol"]}
    for symbol, group in metrics.group_trades(trades, "symbol").items():
        assert by_symbol[symbol]["trades"] == len(group)
        assert by_symbol[symbol]["total_pnl"] == pytest.approx(sum(t.pnl for t in group))
    assert {row["label"] for row in data["by"]["hour"]} == {t.opened_at.hour for t in trades}
    assert data["versions"][0]["name"] == "sma_rsi" and data["versions"][0]["params"]["slow"] >= 26
    assert all(p["trades"] >= 3 for p in data["patterns"])
    assert data["activity"]["cycles"] == 60 and set(data["phases"]) >= {"scan", "ideas", "validate", "total"}


def test_html_is_one_self_contained_page_with_the_four_plots(archived_run, tmp_path):
    target = tmp_path / "out" / "report.html"
    result = report("--html", str(target))
    assert result.exit_code == 0 and "HTML report written" in result.output
    page = target.read_text(encoding="utf-8")
    assert page.count("<div class=plot><svg") == 3  # drawdown, by hour, by band; equity and trades are interactive
    assert '<div id="equity" class="gtc">' in page and '<div id="tradechart" class="gtc">' in page
    for title in ("Equity (USDT)", "Drawdown from the running peak", "P&amp;L by hour of entry (UTC), USDT",
                  "P&amp;L by confidence band, USDT"):  # the bundled demo markets are quoted in USDT
        assert title in page or title.replace("&amp;", "&") in page, title
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "nothing may be fetched from elsewhere"
    assert "<h2>Patterns</h2>" in page and "95% Wilson interval" in page
    assert "Strategy versions side by side" in page


def test_a_missing_archive_or_run_is_a_clear_error(archived_run, tmp_path, database_url):
    result = report("--run", "r-nope")
    assert (result.exit_code == 1
            and "no run 'r-nope' in the archive; latest runs: " + archived_run.state.run_id in result.output)
    result = report("--database-url", f"sqlite:///{tmp_path / 'nothing.db'}")
    assert result.exit_code == 1 and "no archive at" in result.output and "gobot start" in result.output
    assert not (tmp_path / "nothing.db").exists(), "reading must not create an empty archive"
    assert report("--run", "x", "--all").exit_code == 2


def test_every_run_together(archived_run, replay_bot, run_bot, database_url, tmp_path):
    second = replay_bot(config={"plugins": {"archiver": {"database_url": database_url}}}, state_dir=tmp_path / "state")
    run_bot(second, 20)
    data = json.loads(report("--json", "--all").stdout)
    assert {r["run_id"] for r in data["runs"]} == {archived_run.state.run_id, second.state.run_id}
    assert data["summary"]["trades"] == len(archived_run.state.trades) + len(second.state.trades)
    latest = json.loads(report("--json").stdout)
    assert [r["run_id"] for r in latest["runs"]] == [second.state.run_id]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_gobot_help_lists_the_report_command(database_url):
    result = CliRunner().invoke(cli, ["--help"])
    assert re.search(r"^  report +Performance report from the archive", result.output, re.MULTILINE)
