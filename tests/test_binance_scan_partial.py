"""A failed auxiliary request does not take a symbol out of the cycle (issue 15, finding 4).

The binance plugin's scan asks for candles, the ticker, the order book and, on futures, the
funding rate and the open interest. Only the price (the ticker) and the candles are required: a
failed order book, funding rate or open interest request still gives a snapshot, which names the
field in ``missing``; only checks that need it fail closed. The real ccxt client, through the
plugin, against the Binance test server.
"""

from __future__ import annotations

import asyncio

import pytest

from gobot_hookspecs import Action
from servers.binance import BinanceTestServer, Fault
from servers.bots import Ideas, binance_bot, keys


@pytest.fixture
def server():
    with BinanceTestServer() as running:
        yield running


def cycles(bot, n: int) -> list:
    async def go():
        await bot.startup()
        try:
            return [await bot.run_cycle() for _ in range(n)]
        finally:
            await bot.shutdown("test over")

    return asyncio.run(go())


@pytest.mark.parametrize("market, path, field, extras_gone", [
    ("spot", "/api/v3/depth", "order_book", []),
    ("futures", "/fapi/v1/depth", "order_book", []),
    ("futures", "/fapi/v1/premiumIndex", "funding_rate", ["funding_rate", "next_funding_time"]),
    ("futures", "/fapi/v1/openInterest", "open_interest", ["open_interest", "open_interest_value"]),
], ids=["spot-depth", "futures-depth", "futures-premiumIndex", "futures-openInterest"])
def test_a_failed_auxiliary_request_still_gives_a_snapshot_naming_what_is_missing(
        tmp_path, server, monkeypatch, market, path, field, extras_gone):
    keys(monkeypatch)
    server.inject(Fault(path=path, method="GET", action="status", status=503, when="before"))
    bot = binance_bot(tmp_path / "state", server, market=market)
    [report] = cycles(bot, 1)
    assert not server.faults, f"the scan did ask for {path}"
    [snap] = bot.ctx.snapshots
    assert snap.symbol == "BTC/USDT" and snap.price == 50000 and len(snap.candles) == 30
    assert snap.missing == [field]
    for key in extras_gone:
        assert key not in snap.extras
    assert snap.extras["min_notional"] == 5  # the market's rules are not a request of the scan
    assert [s.symbol for s in report.signals] == ["BTC/USDT"]  # the symbol stayed in the cycle


def test_a_complete_scan_names_nothing_missing(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    bot = binance_bot(tmp_path / "state", server, market="futures")
    cycles(bot, 1)
    [snap] = bot.ctx.snapshots
    assert snap.missing == [] and snap.extras["funding_rate"] == pytest.approx(0.0001)


def test_without_a_price_the_symbol_is_still_left_out(tmp_path, server, monkeypatch, caplog):
    keys(monkeypatch)
    server.inject(Fault(path="/api/v3/ticker/24hr", method="GET", action="status", status=503, when="before"))
    bot = binance_bot(tmp_path / "state", server)
    cycles(bot, 1)
    assert bot.ctx.snapshots == []
    assert "no market data for BTC/USDT" in caplog.text


def test_the_spread_check_fails_closed_without_the_order_book_naming_it(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    server.inject(Fault(path="/api/v3/depth", method="GET", action="status", status=503, when="before"))
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}),
                      config={"plugins": {"risk_limits": {"max_spread_pct": 0.5, "max_total_exposure_usd": 1000,
                                                          "low_liquidity_hours": []}}})
    reports = cycles(bot, 2)
    [veto] = [v for v in reports[0].vetoes if v.plugin == "risk_limits"]
    assert veto.reason == ("spread unknown: the order book of BTC/USDT is missing this cycle "
                           "(could not be fetched; fail closed; max_spread_pct = 0 turns this check off)")
    assert reports[0].orders == []
    # the next cycle has its book: the spread (0.00004 %) is judged and the order goes out
    assert reports[1].vetoes == [] and [o.status for o in reports[1].orders] == ["filled"]


def test_checks_that_do_not_need_the_order_book_trade_without_it(tmp_path, server, monkeypatch):
    keys(monkeypatch)
    server.inject(Fault(path="/api/v3/depth", method="GET", action="status", status=503, when="before"))
    bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}))  # max_spread_pct off
    [report] = cycles(bot, 1)
    assert bot.ctx.snapshots[0].missing == ["order_book"]
    assert report.vetoes == [] and [o.status for o in report.orders] == ["filled"]
