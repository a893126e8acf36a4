"""Money is labelled in the quote currency of the market, and a portfolio of several quotes counts in
its configured currency, converting at the latest close of the conversion pair (issue 19)."""

import json
import re

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot.research.synthetic import csv_name, generate, write_csv
from gobot.testing.fixtures import replay_settings
from gobot_hookspecs import Action, Signal, hookimpl, metrics
from gobot_hookspecs.money import amount_text, money, portfolio_currency, quote_of, rate, trade_rate

# -- the rule, in the contract ----------------------------------------------------------------------


def test_the_quote_of_a_symbol_is_its_money():
    assert [quote_of(s) for s in ("ETH/BTC", "BTC/USDT", "BTC/USDT:USDT", "XRP/ETH")] == ["BTC", "USDT", "USDT", "ETH"]


def test_the_portfolio_currency_is_the_one_quote_or_the_configured_one():
    assert portfolio_currency(["ETH/BTC", "LTC/BTC"]) == "BTC"
    assert portfolio_currency(["ETH/BTC", "BTC/USDT"], "USDT") == "USDT"
    with pytest.raises(ValueError, match="quoted in BTC, USDT, and no currency is set"):
        portfolio_currency(["ETH/BTC", "BTC/USDT"])
    with pytest.raises(ValueError, match="neither BTC/USDT nor USDT/BTC is among the symbols"):
        portfolio_currency(["ETH/BTC", "ETH/USDT"], "USDT")


def test_a_rate_is_the_conversion_pairs_close_and_never_a_guess():
    symbols = ["ETH/BTC", "BTC/USDT", "USDT/TRY"]
    assert rate("BTC", "USDT", {"BTC/USDT": 50000.0}, symbols) == 50000.0
    assert rate("TRY", "USDT", {"USDT/TRY": 40.0}, symbols) == pytest.approx(0.025)  # the inverted pair divides
    assert rate("USDT", "USDT", {}, symbols) == 1.0
    with pytest.raises(LookupError, match="no price of BTC/USDT yet"):
        rate("BTC", "USDT", {}, symbols)
    with pytest.raises(LookupError, match="no rate from ETH to USDT"):
        rate("ETH", "USDT", {"BTC/USDT": 50000.0}, symbols)


def test_money_is_shown_with_its_currency_and_its_precision():
    assert money(12.5, "USDT") == "12.50 USDT"
    assert money(-0.00123, "BTC", signed=True) == "-0.00123 BTC"
    assert money(1, "BTC", signed=True) == "+1.00 BTC"
    assert money(0.000000014, "BTC") == "0.00000001 BTC"  # a satoshi, not "0.00"
    assert amount_text(-0.00581665, "BTC", signed=True, significant=2) == "-0.0058"  # a narrow table column
    assert amount_text(12.345, "USDT", significant=2) == "12.35"


# -- a run on BTC-quoted markets -------------------------------------------------------------------

RELAXED_RISK = """
[plugins.risk_limits]
min_confidence_threshold = 0
max_total_exposure_usd = 0.15
daily_loss_limit_usd = 0.5
weekly_loss_limit_usd = 0.8
max_trades_per_day = 0
symbol_cooldown_minutes = 0
low_liquidity_hours = []
volatility_multiplier = 0
max_correlation = 1
[plugins.circuit_breaker]
circuit_breaker_threshold = 1000000
max_consecutive_losses = 1000000
"""


@pytest.fixture(scope="module")
def btc_run(tmp_path_factory):
    """110 replay cycles on two markets quoted in BTC, prices like the freqtrade sample data (0.02-0.08)."""
    folder = tmp_path_factory.mktemp("btc")
    data = folder / "data"
    for symbol, price in {"ETH/BTC": 0.09, "LTC/BTC": 0.016}.items():
        write_csv(data / csv_name(symbol, "5m"), generate(symbol, price, 3 * 288, seed=3))
    config = folder / "config.toml"
    config.write_text(f'state_dir = "state"\n[trading]\nsymbols = ["ETH/BTC", "LTC/BTC"]\ninitial_capital_usd = 1\n'
                      f'max_position_usd = 0.1\n[orchestrator]\ndaily_profit_target = 0.5\nmax_daily_loss = 0.5\n'
                      f'[plugins.replay]\ndata_dir = "{data}"\n{RELAXED_RISK}')
    runner = CliRunner()
    start = runner.invoke(cli, ["start", "--config", str(config), "--max-iterations", "110"])
    assert start.exit_code == 0, start.output
    return runner, str(config), start.output, folder


def no_usd(text):
    return "USD" not in text


def test_a_btc_quoted_run_shows_btc_in_its_alerts_and_summary_never_usd(btc_run):
    _, _, output, folder = btc_run
    assert "Closed " in output and "P&L" in output, "the run must close trades for the test to mean anything"
    closed = [line for line in output.splitlines() if "Closed " in line]
    assert closed and all(re.search(r": P&L [+-]\d+\.\d+ BTC — ", line) for line in closed), closed
    assert "Daily summary 2026-01-01: P&L" in output and "| equity " in output and " BTC |" in output
    assert "Summary (" in output and "equity 1." in output and no_usd(output)
    progress = json.loads((folder / "state" / "progress.json").read_text())
    assert progress["currency"] == "BTC"


def test_a_btc_quoted_run_shows_btc_in_status_risk_and_reports(btc_run, tmp_path):
    runner, config, _, _ = btc_run
    status = runner.invoke(cli, ["status", "--config", config])
    assert "BTC" in status.output and no_usd(status.output)
    assert json.loads(runner.invoke(cli, ["status", "--config", config, "--json"]).output)["currency"] == "BTC"
    risk = json.loads(runner.invoke(cli, ["risk", "status", "--config", config, "--json"]).output)
    units = {c["unit"] for p in risk["plugins"] for c in p["counters"]
             if "exposure" in c["name"] or "loss" in c["name"]}
    assert units == {"BTC"}
    html = tmp_path / "report.html"
    report = runner.invoke(cli, ["report", "--config", config, "--html", str(html)])
    assert report.exit_code == 0, report.output
    assert "money in BTC" in report.output and " BTC" in report.output and no_usd(report.output)
    page = html.read_text()
    assert "Equity (BTC)" in page and "P&amp;L BTC" in page and no_usd(page)
    as_json = json.loads(runner.invoke(cli, ["report", "--config", config, "--json"]).output)
    assert as_json["currency"] == "BTC"


def test_a_backtest_counts_in_the_tested_symbols_quote(btc_run, tmp_path):
    runner, config, _, folder = btc_run
    result = runner.invoke(cli, ["backtest", "--config", config, "--data", str(folder / "data"), "--sizing", "50%",
                                 "--risk", "none", "--trades", "3", "--html", str(tmp_path / "bt.html")])
    assert result.exit_code == 0, result.output
    assert "BTC" in result.output and no_usd(result.output)
    assert "equity, BTC" in (tmp_path / "bt.html").read_text() or "P&amp;L BTC" in (tmp_path / "bt.html").read_text()


# -- several quotes: refused without a currency, converted with one ---------------------------------


def test_several_quotes_without_a_currency_are_refused_naming_file_key_and_fix(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[trading]\nsymbols = ["ETH/BTC", "BTC/USDT"]\n')
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(config)])
    assert result.exit_code == 2
    assert (f"{config}:trading.currency: the symbols are quoted in BTC, USDT, and no currency is set to count the "
            "portfolio in — fix: the portfolio currency") in result.output
    assert 'set it (currency = "USDT")' in result.output
    config.write_text('[trading]\nsymbols = ["ETH/BTC", "ETH/USDT"]\ncurrency = "USDT"\n')
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(config)])
    assert result.exit_code == 2
    assert (f"{config}:trading.currency: BTC cannot be converted into USDT: neither BTC/USDT nor USDT/BTC"
            in result.output)


def flat_then_jump(path, symbol, before, after, candles=60, jump_at=30):
    step = 300_000
    t0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
    prices = [before if i < jump_at else after for i in range(candles)]
    rows = [(t0 + i * step, p, p, p, p, 1.0) for i, p in enumerate(prices)]
    write_csv(path / csv_name(symbol, "5m"), rows)


class Scripted:
    """LONG ETH/BTC in cycle 1 (stop and target far away), SHORT (an exit) in cycle 11, after the jump;
    it abstains on risk but keeps the intents it is shown, and keeps the alerts."""

    def __init__(self):
        self.intents, self.alerts = [], []

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        action = {1: Action.LONG, 11: Action.SHORT}.get(ctx.iteration)
        if action is None:
            return []
        return [Signal(symbol="ETH/BTC", action=action, confidence=0.99, stop_loss=0.01, take_profit=1.0)]

    @hookimpl
    def gobot_risk_check(self, intent):
        self.intents.append(intent)

    @hookimpl
    def gobot_send_alert(self, alert):
        self.alerts.append(alert)


def test_a_foreign_quote_converts_at_the_candles_price(tmp_path, plugin_set_factory, run_bot):
    """ETH/BTC in a USDT portfolio: sized, valued and realised at the BTC/USDT close of the moment.
    BTC/USDT 50000 then 60000, ETH/BTC 0.05 then 0.06 (from candle 30, seen in cycle 11)."""
    from gobot.run.bot import Bot

    data = tmp_path / "data"
    flat_then_jump(data, "BTC/USDT", 50000.0, 60000.0)
    flat_then_jump(data, "ETH/BTC", 0.05, 0.06)
    settings = replay_settings(tmp_path / "state", data, {
        "trading": {"symbols": ["ETH/BTC", "BTC/USDT"], "currency": "USDT", "initial_capital_usd": 100,
                    "max_position_usd": 10},
        "plugins": {"replay": {"warmup_candles": 2}, "paper": {"fee_percent": 0.1, "slippage_percent": 0}}})
    script = Scripted()
    bot = Bot(settings, plugin_set_factory(disable=["sma_rsi", "adjuster", "validator"],
                                           plugins=[("scripted", script)]))
    run_bot(bot, 11)  # cycle 11 sees the jump and asks for the exit, which fills in cycle 12
    [intent] = script.intents
    assert (intent.quote_rate, intent.notional_usd) == (50000.0, 10.0)
    assert intent.amount == pytest.approx(0.004)  # 10 USDT = 0.0002 BTC = 0.004 ETH at 0.05
    assert bot.state.positions["ETH/BTC"].amount == pytest.approx(0.004)
    entry_fee = 0.001 * 0.004 * 0.05  # BTC, paid at 50000
    assert bot.state.cash == pytest.approx(100 - entry_fee * 50000)
    assert bot.portfolio.equity() == pytest.approx(100 - entry_fee * 50000 + 0.004 * 0.01 * 60000)  # marked at 60000
    assert bot.portfolio.exposure() == pytest.approx(0.004 * 0.06 * 60000)
    run_bot(bot, 12)
    [trade] = bot.state.trades
    exit_fee = 0.001 * 0.004 * 0.06
    assert (trade.entry_price, trade.exit_price) == (0.05, 0.06)
    assert trade.fees == pytest.approx((entry_fee + exit_fee) * 60000)  # the whole trade at the close's rate
    assert trade.pnl == pytest.approx((0.004 * 0.01 - entry_fee - exit_fee) * 60000)  # 2.3736 USDT
    assert bot.state.cash == pytest.approx(100 - entry_fee * 50000 + (0.004 * 0.01 - exit_fee) * 60000)
    assert "Closed long ETH/BTC: P&L +2.37 USDT" in [a.title for a in script.alerts]
    assert "amount 0.004, fee 0.0000002 BTC" in [a.text for a in script.alerts]  # a fill's fee as charged
    assert trade_rate(trade, "USDT") == pytest.approx(60000)  # read off the trade: (pnl + fees) / gross in BTC
    assert metrics.r_multiple(trade, "USDT") == pytest.approx(trade.pnl / (0.04 * 0.004 * 60000))  # risk 9.60 USDT
    # the sizer's return is on the notional, whatever the currencies: +19.78 %, not 2.37 / 0.0002
    assert bot.state.plugin_state["kelly_size"]["returns"] == [
        pytest.approx((0.004 * 0.01 - entry_fee - exit_fee) / (0.004 * 0.05))]


def test_without_a_price_of_the_conversion_pair_there_is_no_rate():
    from gobot.run.portfolio import Portfolio
    from gobot.run.state import BotState

    state = BotState(run_id="r", cash=100.0, initial_capital=100.0, last_prices={"ETH/BTC": 0.05})
    portfolio = Portfolio(state, "USDT", ["ETH/BTC", "BTC/USDT"])
    assert portfolio.rate("BTC/USDT") == 1.0
    with pytest.raises(LookupError, match="no rate from BTC to USDT: no price of BTC/USDT yet"):
        portfolio.rate("ETH/BTC")
    state.last_prices["BTC/USDT"] = 42000.0
    assert portfolio.rate("ETH/BTC") == 42000.0
