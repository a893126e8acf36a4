"""The drift archive, on SQLite and on PostgreSQL: every trade the ``drift`` plugin measures against its paper
twin reaches the archiver through ``ctx.record_drift`` -> ``gobot_on_drift``, lands in the ``drift`` table
(migration 0006), and ``gobot report`` shows it per day, per symbol and in total, in the quote currency and in
R, with the parts (issue 21)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from gobot.cli import cli
from gobot_hookspecs import DRIFT_PARTS
from gobot_plugins.archiver.report import build_report, render_html, render_terminal, to_json
from gobot_plugins.archiver.schema import SCHEMA_REVISION
from gobot_plugins.drift import store as drift_store

# The twin fills worse than the paper executor (0.05 % slippage, 0.1 % fee): every trade has a gap.
TWIN = {"watch_paper": True, "on_breach": "alert", "slippage_percent": 0.3, "fee_percent": 0.2}


def test_a_run_with_drift_measurements_archives_them_and_the_report_shows_them(archive_bot, run_bot, open_store,
                                                                              database_url, tmp_path, monkeypatch):
    bot = archive_bot(config={"plugins": {"drift": TWIN}}, enable=["drift"], disable=["adjuster"])
    run_bot(bot, 100)
    store = open_store()
    rows = store.rows("drift", [bot.state.run_id], order_by=("closed_at", "id"))
    measured = {row["coid"]: row for row in drift_store.trades(bot.settings.state_path)}
    assert len(rows) == len(measured) >= 5, "the demo strategy trades, and each trade is measured"
    for row in rows:  # the archive holds what the drift plugin measured, to the last digit
        mine = measured[row["client_order_id"]]
        assert (row["symbol"], row["kind"], row["mode"], row["currency"]) == (mine["symbol"], "matched", "paper",
                                                                            "USDT")
        assert row["gap"] == pytest.approx(mine["gap"], abs=1e-12) and row["twin_pnl"] == mine["twin_pnl"]
        assert sum(row[part] for part in DRIFT_PARTS) == pytest.approx(row["gap"], abs=1e-9)
        assert row["gap_r"] == pytest.approx(row["gap"] / row["risk"]) and row["closed_at"].tzinfo is not None
    trades = {t.client_order_id: t for t in bot.state.trades}
    assert all(row["live_pnl"] == pytest.approx(trades[row["client_order_id"]].pnl) for row in rows)
    assert all(row["gap"] > 0 and row["fees"] > 0 and row["entry_slippage"] > 0 for row in rows), \
        "the twin pays more slippage and fees than the paper trade it shadows"

    data = build_report(store, bot.state.run_id)
    drift = data["drift"]
    total_gap = sum(r["gap"] for r in rows)
    [everything] = drift["by"]["all"]
    assert drift["trades"] == everything["trades"] == len(rows) and drift["missed"] == drift["paper_only"] == 0
    assert everything["gap"] == pytest.approx(total_gap)
    assert everything["gap_r"] == pytest.approx(sum(r["gap"] / r["risk"] for r in rows))
    assert everything["live"] - everything["twin"] == pytest.approx(total_gap)
    for part in DRIFT_PARTS:
        assert everything[part] == pytest.approx(sum(r[part] for r in rows))
    for by in ("day", "symbol"):
        lines = drift["by"][by]
        assert sum(line["trades"] for line in lines) == len(rows)
        assert lines[-1]["cumulative"] == pytest.approx(total_gap)
        assert lines[-1]["cumulative_r"] == pytest.approx(everything["gap_r"])
    assert {line["label"] for line in drift["by"]["symbol"]} == {r["symbol"] for r in rows}
    assert [line["label"] for line in drift["by"]["day"]] == sorted({f"{r['closed_at']:%Y-%m-%d}" for r in rows})

    assert json.loads(to_json(data))["drift"]["by"]["all"][0]["gap"] == pytest.approx(total_gap)
    shown = _terminal(data)
    assert "Drift: live vs paper twin, per day" in shown and "Drift: live vs paper twin, per symbol" in shown
    assert f"{total_gap:+.2f}" in shown and f"{everything['gap_r']:+.2f}" in shown
    page = render_html(data)
    assert "<h2>Drift: live vs paper twin</h2>" in page and "class=drift-symbol" in page
    assert f"<td class=pos>{total_gap:+.2f}</td>" in page

    config = tmp_path / "config.toml"  # `gobot report` itself, text and JSON, on the same archive
    config.write_text(f'state_dir = "{bot.settings.state_path}"\n', encoding="utf-8")
    monkeypatch.setenv("GOBOT_CONFIG", str(config))
    printed = CliRunner().invoke(cli, ["report", "--database-url", database_url, "--json"], catch_exceptions=False)
    assert printed.exit_code == 0 and json.loads(printed.output)["drift"]["by"]["all"][0]["gap"] == pytest.approx(
        total_gap)
    table = CliRunner().invoke(cli, ["report", "--database-url", database_url], catch_exceptions=False)
    assert table.exit_code == 0 and "Drift: live vs paper twin, per symbol" in table.output


def _terminal(data) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=240, color_system=None)
    render_terminal(data, console)
    return console.file.getvalue()


def test_an_archive_of_the_previous_schema_gains_the_drift_table_and_reports_without_a_drift_section(open_store):
    old = open_store(migrate=False)
    old.migrate("0005")
    with old.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO runs (run_id, mode, started_at, initial_capital, symbols) "
            "VALUES ('r-old', 'paper', :t, 100.0, '[\"BTC/USDT\"]')"), {"t": datetime(2025, 6, 1, tzinfo=timezone.utc)})
    upgraded = open_store()
    assert upgraded.revision() == SCHEMA_REVISION == "0008"
    assert upgraded.count("drift") == 0 and [r["run_id"] for r in upgraded.runs()] == ["r-old"]
    data = build_report(upgraded, "r-old")
    assert data["drift"] is None
    assert "Drift" not in _terminal(data) and "Drift" not in render_html(data)
