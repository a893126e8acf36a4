"""`gobot backtest --html` read in headless Chromium: the candle chart with one marker per entry and exit,
a clicked trade's story (signal, risk verdicts, sizing, fills), the equity and drawdown curves with
their axes, nothing fetched; and the stories themselves, held to the trades they tell."""

from __future__ import annotations

import json
import math
import textwrap

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from tests.chart_page_support import ChartPage

RISK = ("risk_limits", "circuit_breaker")


@pytest.fixture
def config(tmp_path, synthetic_data_dir):
    from gobot.testing import replay_test_risk_toml

    sections = replay_test_risk_toml()
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(f"""\
        state_dir = "{tmp_path / 'state'}"
        [backtest]
        data_dir = "{synthetic_data_dir}"
        """) + sections, encoding="utf-8")
    return path


def backtest(config, *args: str):
    result = CliRunner().invoke(cli, ["backtest", "--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_html_report_charts_every_trade_with_its_story_and_the_equity_with_axes(config, tmp_path):
    args = ("-s", "sma_rsi", "--data", "ETH/USDT", "--risk", "plugins", "--sizing", "plugins")
    expected = json.loads(backtest(config, *args, "--json"))
    closed, still_open = len(expected["trades"]), len(expected["open_positions"])
    assert closed > 3 and expected["currency"] == "USDT"
    page = tmp_path / "bt.html"
    backtest(config, *args, "--html", str(page))
    with ChartPage(page) as chart:
        chart.wait_drawn()
        assert all(chart.canvases(chart_id) > 0 for chart_id in ("tradechart", "equity", "drawdown"))
        state = chart.state()
        assert state["symbol"] == "ETH/USDT" and state["barsDrawn"] > 0
        assert state["markers"] == 2 * closed + still_open
        assert chart.page.locator("#tradechart tr.gtc-trade").count() == closed + still_open
        # the equity curve: its y-axis says the currency, its time axis has dates
        assert chart.page.locator("#equity .gtc-axis-label").inner_text() == "USDT"
        assert chart.page.locator("#drawdown .gtc-axis-label").inner_text() == "%"
        assert chart.page.evaluate("window.gobotCharts.equity.state().points") > 100
        last = expected["trades"][-1]  # one symbol: the newest closed trade was opened as number `closed`
        story = chart.open_trade(f"bt-{closed}")
        assert {plugin for plugin, _ in story["verdicts"]} == set(RISK)
        assert any("within limits" in text for _, text in story["verdicts"])  # risk_limits' reason, as it gave it
        assert "sizer plugin" in story["sizing"] and "USDT" in story["sizing"]
        assert "RSI14" in story["signal"]
        assert f"{last['exit_price']:,.2f}" in story["fills"][1] and last["exit_reason"] in story["fills"][1]
        assert not chart.errors and not chart.left


def test_every_story_agrees_with_the_trade_it_tells(config):
    from gobot.cli.common import load
    from gobot.research.backtest.engine import run
    from gobot.research.backtest.setup import BacktestSetup
    from gobot.research.backtest.stories import trade_stories

    setup = BacktestSetup.build(*load(str(config), explain=False))
    strategy = setup.strategy("sma_rsi")
    params = setup.params(strategy)
    execution = setup.execution(risk="plugins")
    gate = setup.gate(execution, strategy).keep_decisions()
    result = run(strategy, params, setup.series(["BTC/USDT", "ETH/USDT"]), execution, gate=gate)
    stories = trade_stories(result, gate, strategy)
    assert len(stories) == len(result.trades) + len(result.simulation.open_positions)
    assert [s.id for s in stories] == [f"bt-{n}" for n in range(1, len(stories) + 1)]
    assert [s.entry_time for s in stories] == sorted(s.entry_time for s in stories)
    told = {(s.symbol, s.entry_time): s for s in stories}
    for trade in result.trades:
        story = told[(trade.symbol, trade.opened_at)]
        assert (story.exit_time, story.exit_price, story.exit_reason) == (trade.closed_at, trade.exit_price,
                                                                          trade.exit_reason)
        assert story.pnl == trade.pnl and math.isclose(story.fees, trade.fees, rel_tol=1e-12)
        assert story.stop_loss == trade.initial_stop_loss and story.currency == "USDT"
        assert [f.purpose for f in story.fills] == ["open", "close"]
        assert sum(f.fee for f in story.fills) == story.fees
        direction = 1 if trade.direction.value == "LONG" else -1  # the target rests beyond the entry, the stop before
        assert direction * (story.take_profit - story.entry_price) > 0 > direction * (story.stop_loss
                                                                                     - story.entry_price)
        assert {v.plugin for v in story.verdicts} == set(RISK) and all(v.approved for v in story.verdicts)
        assert story.signal.rationale and story.signal.action == trade.direction
