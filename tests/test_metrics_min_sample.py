"""Sharpe, Sortino and Calmar only over a minimum sample (issue 17): below MIN_RATIO_SAMPLE closed
trades the contract's trade metrics leave them undefined and every report prints "— (n=…)" — in
the backtester's text, JSON and HTML output, and in `gobot report`'s terminal and HTML output."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot_hookspecs import Action, Trade, metrics

DAY = datetime(2026, 1, 5, tzinfo=timezone.utc)


def trades(n: int, minutes_apart: float = 60) -> list[Trade]:
    out = []
    for i in range(n):
        opened = DAY + timedelta(minutes=i * minutes_apart)
        pnl = 1.5 if i % 3 else -1.0
        out.append(Trade(symbol="BTC/USDT", direction=Action.LONG, amount=1, entry_price=100, exit_price=100 + pnl,
                         opened_at=opened, closed_at=opened + timedelta(minutes=minutes_apart / 2), fees=0.0, pnl=pnl,
                         exit_reason="signal", confidence=0.8, strategy="s", strategy_version=1))
    return out


def test_two_trades_have_no_sharpe_only_their_count():
    two = [*trades(1), *trades(1)]
    two[1] = two[1].model_copy(update={"pnl": -3.0, "opened_at": DAY + timedelta(minutes=5),
                                       "closed_at": DAY + timedelta(minutes=6)})
    raw = metrics.trade_metrics(two, 100.0, min_sample=0)
    assert raw.sharpe is not None and abs(raw.sharpe) > 100  # what the report used to print
    m = metrics.trade_metrics(two, 100.0)
    assert (m.trades, m.sharpe, m.sortino) == (2, None, None)
    assert metrics.ratio_text(m.sharpe, m.trades) == "— (n=2)"


def test_from_the_minimum_sample_on_the_ratios_are_reported():
    assert metrics.MIN_RATIO_SAMPLE == 30
    below = metrics.trade_metrics(trades(29), 100.0)
    enough = metrics.trade_metrics(trades(30), 100.0)
    assert below.sharpe is None and below.sortino is None
    assert enough.sharpe is not None and enough.sortino is not None
    assert metrics.ratio_text(enough.sharpe, 30) == f"{enough.sharpe:.2f}"
    assert metrics.ratio_text(None, 45) == "—"  # undefined for another reason (no dispersion): no n to blame
    assert metrics.enough_for_ratios(30) and not metrics.enough_for_ratios(29)


# -- the backtester ----------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path, synthetic_data_dir):
    path = tmp_path / "config.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n[backtest]\ndata_dir = "{synthetic_data_dir}"\n',
                    encoding="utf-8")
    return path


FAST = ("-p", "sma_cross", "-s", "sma_cross", "--sizing", "all-in", "--risk", "none")


def test_a_short_backtest_shows_no_ratios_in_text_json_and_html(config, tmp_path):
    few = ("--from", "2026-01-01", "--to", "2026-01-01T12:00", "--set", "fast=5", "--set", "slow=20")
    document = json.loads(CliRunner().invoke(cli, ["backtest", "--config", str(config), *FAST, *few, "--json"],
                                             catch_exceptions=False).output)
    n = document["metrics"]["trades"]
    assert 0 < n < metrics.MIN_RATIO_SAMPLE, n
    assert (document["metrics"]["sharpe"], document["metrics"]["sortino"],
            document["metrics"]["calmar"]) == (None, None, None)
    page = tmp_path / "bt.html"
    text = CliRunner().invoke(cli, ["backtest", "--config", str(config), *FAST, *few, "--html", str(page)],
                              catch_exceptions=False)
    flat = " ".join(text.output.split())
    assert f"Sharpe / Sortino — / — (n={n}; shown from 30 trades)" in flat and f"Calmar — (n={n})" in flat
    assert f"— / — (n={n}; shown from 30 trades)" in page.read_text(encoding="utf-8")


def test_a_long_backtest_shows_its_ratios(config):
    document = json.loads(CliRunner().invoke(cli, ["backtest", "--config", str(config), *FAST, "--set", "fast=5",
                                                   "--set", "slow=20", "--json"], catch_exceptions=False).output)
    assert document["metrics"]["trades"] >= metrics.MIN_RATIO_SAMPLE
    assert isinstance(document["metrics"]["sharpe"], float) and isinstance(document["metrics"]["sortino"], float)


# -- gobot report (the archiver) ---------------------------------------------------------------------


def test_the_performance_report_prints_the_sample_instead_of_a_ratio(tmp_path, synthetic_data_dir, monkeypatch,
                                                                     replay_bot, run_bot):
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "state"\n[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n'
                      f'[plugins.archiver]\ndatabase_url = "{url}"\n', encoding="utf-8")
    monkeypatch.setenv("GOBOT_CONFIG", str(config))
    bot = replay_bot(config={"plugins": {"archiver": {"database_url": url}}}, state_dir=tmp_path / "state")
    run_bot(bot, 60)
    n = len(bot.state.trades)
    assert 0 < n < metrics.MIN_RATIO_SAMPLE
    data = json.loads(CliRunner().invoke(cli, ["report", "--json"], catch_exceptions=False).stdout)
    assert data["summary"]["sharpe"] is None and data["summary"]["sortino"] is None
    text = CliRunner().invoke(cli, ["report"], env={"COLUMNS": "200"}, catch_exceptions=False).output
    summary = next(line for line in text.splitlines() if line.lstrip().startswith("Sharpe"))
    assert summary.split() == ["Sharpe", "—", f"(n={n})", "Sortino", "—", f"(n={n})"], summary
    [symbol_row] = [line for line in text.split("By symbol", 1)[1].splitlines() if line.startswith("BTC/USDT")]
    assert "— (n=" in symbol_row
    page = tmp_path / "r.html"
    CliRunner().invoke(cli, ["report", "--html", str(page)], catch_exceptions=False)
    html = page.read_text(encoding="utf-8")
    assert f"<span class=muted>Sharpe</span><b>— (n={n})</b>" in html
    assert "— (n=" in html.split("By symbol", 1)[1]  # the per-group tables too
