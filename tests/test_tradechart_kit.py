"""The chart kit (gobot_hookspecs.tradechart) in headless Chromium: what page() and embed() draw (candles,
markers, the trades table, the drill-down), the symbol and timeframe switches, the column encoding decoded
by the page, a year of 1m candles kept small and fast, and no request leaving 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import math
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gobot_hookspecs import Action, Candles, Side, StoryFill, StorySignal, StoryVerdict, TradeStory
from gobot_hookspecs import indicators as py_indicators
from gobot_hookspecs.tradechart import (
    LIBRARY_VERSION,
    asset,
    chart_payload,
    chart_series,
    embed,
    equity_embed,
    page,
)
from gobot_hookspecs.tradechart.encoding import decode_candles, encode_candles

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
                                reason=f"{CHROMIUM} missing: `make test` installs Debian's chromium package")
START = 1_735_689_600  # 2025-01-01 00:00 UTC, seconds
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
       "RU5ErkJggg==")


def walk(count: int, step: int, start_price: float, seed: int) -> Candles:
    """Deterministic candles: a small zigzag walk, ``step`` seconds apart from START."""
    closes, price = [], start_price
    for i in range(count):
        price = round(price * (1 + 0.002 * (((i * 7919 + seed) % 13) - 6) / 6), 2)
        closes.append(price)
    opens = [closes[0]] + closes[:-1]
    return Candles(timeframe="1m", timestamp=[(START + i * step) * 1000 for i in range(count)], open=opens,
                   high=[round(max(o, c) + 0.5, 2) for o, c in zip(opens, closes)],
                   low=[round(min(o, c) - 0.5, 2) for o, c in zip(opens, closes)], close=closes,
                   volume=[float(1 + i % 5) for i in range(count)])


def at(minute: int) -> datetime:
    return datetime.fromtimestamp(START + minute * 60, timezone.utc)


def story(trade_id: str, candles: Candles, entry: int, exit_: int | None, long: bool = True) -> TradeStory:
    """A trade entered at candle ``entry``'s close and left at candle ``exit_``'s (None: still open)."""
    closed = exit_ is not None
    symbol = "BTC/USDT" if trade_id.startswith("B") else "ETH/USDT"
    step = (candles.timestamp[1] - candles.timestamp[0]) // 60_000
    price, exit_price = candles.close[entry], candles.close[exit_] if closed else None
    entry, exit_ = entry * step, exit_ * step if closed else None
    return TradeStory(
        id=trade_id, symbol=symbol, direction=Action.LONG if long else Action.SHORT, amount=0.25,
        entry_time=at(entry), entry_price=price, exit_time=at(exit_) if closed else None,
        exit_price=exit_price, exit_reason="take_profit" if closed else None,
        stop_loss=price * 0.98, take_profit=price * 1.03, pnl=1.5 if closed else None, fees=0.2, currency="USDT",
        signal=StorySignal(source="sma_rsi", action=Action.LONG, confidence=0.73,
                           rationale=f"{trade_id}: <b>crossed</b> up </script>"),
        verdicts=[StoryVerdict(plugin="risk_limits", approved=True, reason=f"{trade_id} exposure ok"),
                  StoryVerdict(plugin="circuit_breaker", approved=True, reason="CLOSED")],
        sizing=f"fixed_fraction 10% ({trade_id})",
        fills=[StoryFill(time=at(entry), side=Side.BUY, purpose="open", price=price, amount=0.25, fee=0.1,
                         commissions={"BNB": 0.0002})]
        + ([StoryFill(time=at(exit_), side=Side.SELL, purpose="close", price=exit_price, amount=0.25, fee=0.1)]
           if closed else []),
        images=[PNG, PNG] if trade_id == "B2" else [], answer="LONG 0.73: breakout" if trade_id == "B2" else None,
    )


BTC = walk(600, 60, 42_000.0, 1)
ETH = walk(300, 300, 2_500.0, 2)  # 5m candles
STORIES = [story("B1", BTC, 30, 90), story("B2", BTC, 200, 260, long=False), story("B3", BTC, 500, None),
           story("E1", ETH, 20, 80)]


def payload(**extra):
    series = [chart_series("BTC/USDT", "1m", BTC, indicators=("sma:20", "bb:20", "rsi:14")),
              chart_series("ETH/USDT", "5m", ETH.model_copy(update={"timeframe": "5m"}), indicators=("ema:10",))]
    return chart_payload(series, STORIES, currency="USDT", title="kit test",
                         equity=([(START + i * 3600) * 1000 for i in range(10)], [1000.0 + i for i in range(10)]),
                         **extra)


# -- the browser --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


class Tab:
    """A page whose every request is routed: only data:, about: and 127.0.0.1 pass."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1280, "height": 1000})
        self.leaks: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self.route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def route(self, route):
        url = route.request.url
        if url.startswith(("data:", "about:", "http://127.0.0.1:")):
            route.continue_()
        else:
            self.leaks.append(url)
            route.abort()

    def show(self, html: str, url: str | None = None):
        if url:
            self.page.goto(url)
        else:
            self.page.set_content(html, wait_until="load")
        self.page.wait_for_function("window.gobotReady === true", timeout=20_000)
        return self.page

    def js(self, script: str, arg=None):
        return self.page.evaluate(script, arg)


@pytest.fixture
def tab(browser):
    opened = Tab(browser)
    yield opened
    opened.context.close()
    assert opened.leaks == [], f"requests left the page: {opened.leaks}"
    assert opened.errors == [], f"page errors: {opened.errors}"


CHART = "gobotCharts.tradechart"


# -- drawing ------------------------------------------------------------------------------------------------
def test_page_draws_candles_one_marker_per_entry_and_exit_and_the_trades_table(tab):
    page_ = tab.show(page(payload(), title="BTC/USDT <test>"))
    assert page_.title() == "BTC/USDT <test>"
    assert page_.locator("#tradechart canvas").count() > 0
    state = tab.js(f"{CHART}.state()")
    assert state["symbol"] == "BTC/USDT" and state["timeframe"] == "1m" and state["auto"] is True
    assert state["barsDrawn"] == 600
    assert state["markers"] == 3 + 2  # three entries, two exits (B3 is open)
    assert page_.locator("tr.gtc-trade").count() == 3
    assert tab.js(f"{CHART}.countCandles({START + 600}, {START + 1140})") == 10
    assert page_.locator("#equity canvas").count() > 0
    assert page_.locator("#equity .gtc-axis-label").inner_text() == "USDT"
    assert "P&L (USDT)" in page_.locator("#tradechart thead").inner_text()
    assert "TradingView" in page_.locator("footer").inner_text()


def test_the_timeframe_switch_aggregates_and_auto_picks_the_finest_that_fits(tab):
    tab.show(page(payload(), title="t"))
    assert tab.js(f"{CHART}.setTimeframe('5m')") is True
    state = tab.js(f"{CHART}.state()")
    assert (state["timeframe"], state["auto"], state["barsDrawn"]) == ("5m", False, 120)
    assert tab.js(f"{CHART}.countCandles({START}, {START + 3599})") == 12
    tab.page.select_option("select.gtc-timeframe", "1h")
    assert tab.js(f"{CHART}.state()")["barsDrawn"] == 10
    tab.page.select_option("select.gtc-timeframe", "auto")
    assert tab.js(f"{CHART}.state()")["timeframe"] == "1m"
    assert "15m" in tab.js(f"{CHART}.state()")["timeframes"]


def test_the_symbol_selector_changes_what_is_drawn(tab):
    page_ = tab.show(page(payload(), title="t"))
    page_.select_option("select.gtc-symbol", "ETH/USDT")
    state = tab.js(f"{CHART}.state()")
    assert (state["symbol"], state["timeframe"], state["barsDrawn"], state["markers"]) == ("ETH/USDT", "5m", 300, 2)
    assert "1m" not in state["timeframes"]  # ETH's candles are 5m: nothing finer
    assert [row.get_attribute("data-trade-id") for row in page_.locator("tr.gtc-trade").all()] == ["E1"]
    assert tab.js(f"{CHART}.setSymbol('BTC/USDT')") is True
    assert tab.js(f"{CHART}.state()")["markers"] == 5


def test_no_candles_says_so_and_one_candle_draws(tab):
    page_ = tab.show(page(chart_payload([chart_series("A/B", "1m", Candles(timeframe="1m"))], STORIES,
                                        currency="USDT"), title="t"))
    assert page_.locator(".gtc-empty-note").inner_text() == "no candles to draw"
    assert tab.js(f"{CHART}.state()")["barsDrawn"] == 0
    tab.show(page(chart_payload([chart_series("A/B", "1h", walk(1, 3600, 10.0, 1))], [], currency="USDT"), title="t"))
    assert tab.js(f"{CHART}.state()")["barsDrawn"] == 1 and not page_.locator(".gtc-empty-note").is_visible()


# -- drill-down ---------------------------------------------------------------------------------------------
def test_clicking_a_trade_row_opens_its_drill_down(tab):
    page_ = tab.show(page(payload(), title="t"))
    page_.click('tr.gtc-trade[data-trade-id="B2"]')
    panel = page_.locator('.gtc-drilldown[data-trade-id="B2"]')
    assert panel.is_visible()
    assert "B2: <b>crossed</b> up </script>" in panel.locator(".gtc-signal").inner_text()  # as text, not markup
    assert panel.locator(".gtc-signal b").count() == 0
    assert "73%" in panel.locator(".gtc-signal").inner_text()
    verdicts = panel.locator(".gtc-verdict")
    assert [v.get_attribute("data-plugin") for v in verdicts.all()] == ["risk_limits", "circuit_breaker"]
    assert "B2 exposure ok" in verdicts.first.inner_text()
    assert panel.locator(".gtc-sizing").inner_text() == "fixed_fraction 10% (B2)"
    assert panel.locator(".gtc-fill").count() == 2
    assert "0.0002 BNB" in panel.locator(".gtc-fill").first.inner_text()
    assert panel.locator("img.gtc-image").count() == 2
    assert panel.locator("img.gtc-image").first.get_attribute("src") == PNG
    assert panel.locator(".gtc-answer").inner_text() == "LONG 0.73: breakout"
    state = tab.js(f"{CHART}.state()")
    assert state["openTrade"] == "B2"
    assert state["visibleFrom"] < START + 200 * 60 and state["visibleTo"] > START + 260 * 60
    page_.click(".gtc-drilldown .gtc-close")
    assert not panel.is_visible() and tab.js(f"{CHART}.state()")["openTrade"] is None


@pytest.mark.parametrize("trade_id, kind", [("B1", "exit"), ("B2", "entry")])
def test_clicking_a_marker_opens_that_trades_drill_down(tab, trade_id, kind):
    page_ = tab.show(page(payload(), title="t"))
    point = tab.js(f"{CHART}.markerPoint('{trade_id}', '{kind}')")
    page_.mouse.move(point["x"], point["y"])  # the legend names the trade under the mouse
    side = "long" if trade_id == "B1" else "short"
    page_.locator(".gtc-legend", has_text=f"trade {trade_id} · {side} {kind}").wait_for(timeout=5_000)
    page_.mouse.click(point["x"], point["y"])
    panel = page_.locator(f'.gtc-drilldown[data-trade-id="{trade_id}"]')
    panel.wait_for(state="visible", timeout=5_000)
    assert panel.locator(".gtc-verdict").count() == 2
    assert panel.locator("img.gtc-image").count() == (2 if trade_id == "B2" else 0)
    assert page_.locator("tr.gtc-selected").get_attribute("data-trade-id") == trade_id


def test_show_trade_on_another_symbol_switches_to_it(tab):
    page_ = tab.show(page(payload(), title="t"))
    assert tab.js(f"{CHART}.showTrade('E1')") is True
    assert tab.js(f"{CHART}.state()")["symbol"] == "ETH/USDT"
    assert page_.locator('.gtc-drilldown[data-trade-id="E1"] .gtc-fill').count() == 2
    assert tab.js(f"{CHART}.showTrade('nope')") is False


# -- embedding ----------------------------------------------------------------------------------------------
def test_two_embeds_and_an_equity_line_on_one_page(tab):
    body = (embed(payload(), element_id="first")
            + embed(payload(symbol="ETH/USDT"), element_id="second", height=300, include_assets=False)
            + equity_embed([(START + i * 60) * 1000 for i in range(30)], [100 + i for i in range(30)],
                           currency="EUR", element_id="curve", include_assets=False))
    page_ = tab.show(f"<!doctype html><html><body>{body}</body></html>")
    assert tab.js("gobotCharts.first.state().symbol") == "BTC/USDT"
    assert tab.js("gobotCharts.second.state().symbol") == "ETH/USDT"
    assert tab.js("gobotCharts.curve.state()") == {"points": 30, "currency": "EUR"}
    assert page_.locator("#curve .gtc-axis-label").inner_text() == "EUR"
    tab.js("gobotCharts.curve.update({t: [1735689600000, 1735693200000, 1735696800000], v: [1, 2, 3]})")
    assert tab.js("gobotCharts.curve.state()") == {"points": 3, "currency": "EUR"}
    assert page_.locator("#first canvas").count() > 0 and page_.locator("#second canvas").count() > 0
    assert body.count(LIBRARY_VERSION) >= 1 and body.count("Copyright (c) 2026 TradingView") == 1


class AssetServer:
    """The kit's assets served from 127.0.0.1, as the dashboard serves them, and a page mounting the chart."""

    def __init__(self, html: str):
        files = {"/": html.encode(), "/lightweight-charts.js": asset("lightweight-charts.js"),
                 "/tradechart.js": asset("tradechart.js"), "/tradechart.css": asset("tradechart.css")}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = files.get(self.path)
                self.send_response(200 if body else 404)
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_served_assets_and_mount_from_javascript(tab):
    data = json.dumps(payload()).replace("<", "\\u003c")  # safe inside <script>
    html = f"""<!doctype html><html><head><link rel="stylesheet" href="/tradechart.css"></head><body>
<div id="chart"></div><script src="/lightweight-charts.js"></script><script src="/tradechart.js"></script>
<script>
window.picked = [];
window.c = GobotTradeChart.mount(document.getElementById("chart"), {data},
                                 {{height: 400, onTrade: id => window.picked.push(id)}});
window.c.ready.then(() => {{ window.gobotReady = true; }});
</script></body></html>"""
    server = AssetServer(html)
    try:
        page_ = tab.show("", url=server.url)
        assert tab.js("c.state().markers") == 5
        page_.click('tr.gtc-trade[data-trade-id="B1"]')
        assert tab.js("window.picked") == ["B1"]
        assert tab.js("GobotTradeChart.library") == LIBRARY_VERSION
    finally:
        server.close()


def test_update_keeps_the_zoom_and_draws_the_new_trades(tab):
    tab.show(page(payload(), title="t"))
    tab.js(f"{CHART}.setRange({START + 6000}, {START + 12000})")
    tab.page.click('tr.gtc-trade[data-trade-id="B1"]')
    tab.js(f"{CHART}.setRange({START + 6000}, {START + 12000})")
    series = f"{CHART}.chart.panes().flatMap(pane => pane.getSeries()).length"
    drawn = tab.js(series)
    before = tab.js(f"{CHART}.state()")
    more = payload()
    more["trades"] = more["trades"] + [{**more["trades"][0], "id": "B9", "entry": START + 7200, "exit": START + 9000}]
    tab.js(f"p => {CHART}.update(p)", more)
    after = tab.js(f"{CHART}.state()")
    assert (after["visibleFrom"], after["visibleTo"]) == (before["visibleFrom"], before["visibleTo"])
    assert after["trades"] == before["trades"] + 1
    assert tab.page.locator('tr.gtc-trade[data-trade-id="B9"]').count() == 1
    assert tab.js(series) == drawn  # the same indicator series, given new values
    assert after["openTrade"] == "B1" and tab.page.locator('.gtc-drilldown[data-trade-id="B1"]').is_visible()
    tab.js(f"{CHART}.setRange({START + 30_000}, {START + 36_000})")  # up to the newest candle: it follows new ones
    longer = payload()
    longer["series"][0] = chart_series("BTC/USDT", "1m", walk(660, 60, 42_000.0, 1), indicators=("sma:20",))
    tab.js(f"p => {CHART}.update(p)", longer)
    followed = tab.js(f"{CHART}.state()")
    assert (followed["visibleFrom"], followed["visibleTo"]) == (START + 33_600, START + 39_600)


# -- encoding and indicators, checked against the page ------------------------------------------------------
def test_the_encoding_round_trips_through_the_page(tab):
    import numpy as np

    tab.show(page(payload(), title="t"))
    rng = np.random.default_rng(3)
    close = 0.0123 * np.exp(np.cumsum(rng.normal(0, 0.01, 2_000)))  # not round: ~7 significant digits kept
    columns = dict(timestamp=(START + np.arange(2_000) * 60) * 1000, open=np.r_[close[0], close[:-1]],
                   high=close * 1.004, low=close * 0.996, close=close, volume=rng.gamma(2.0, 3.0, 2_000))
    columns["timestamp"][1000:] += 3_600_000  # a gap of an hour
    from types import SimpleNamespace

    series = chart_series("X/Y", "1m", SimpleNamespace(**columns), indicators=())
    decoded = tab.js("s => GobotTradeChart.decode(s)", series)
    python = decode_candles(series)
    tick = 10.0 ** -series["decimals"]
    assert decoded["t"] == [t / 1000 for t in columns["timestamp"].tolist()]
    for js_name, name in (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close")):
        assert decoded[js_name] == python[name]  # the same floats: both divide the ticks by 10 ** decimals
        assert np.max(np.abs(np.array(decoded[js_name]) - columns[name])) <= tick / 2 + 1e-12
    assert np.allclose(decoded["v"], columns["volume"], atol=10.0 ** -series["volume_decimals"])
    huge = encode_candles([0, 60_000], [3e9, 3.1e9], [3.2e9, 3.3e9], [2.9e9, 3e9], [3.1e9, 3.2e9], [4e10, 1e3])
    assert tab.js("s => GobotTradeChart.decode({...s, step: 60})", huge)["c"] == [3.1e9, 3.2e9]
    lists = encode_candles(*(columns[n].tolist() for n in ("timestamp", "open", "high", "low", "close", "volume")))
    assert lists == {k: v for k, v in series.items() if k in lists}  # the pure-Python path writes the same bytes


def test_the_page_indicators_agree_with_the_contracts(tab):
    tab.show(page(payload(), title="t"))
    closes = BTC.close
    for name, period in (("sma", 20), ("ema", 10), ("rsi", 14)):
        page_values = tab.js(f"v => Array.from(GobotTradeChart.indicators.{name}(v, {period}))", closes)
        expected = getattr(py_indicators, name)(closes, period)
        assert len(page_values) == len(expected)
        for got, want in zip(page_values, expected):
            assert (want is None and math.isnan(got)) or abs(got - want) < 1e-9


def test_a_year_of_1m_candles_with_7000_trades_stays_small_and_fast(tab):
    from types import SimpleNamespace

    import numpy as np

    minutes = 525_600
    rng = np.random.default_rng(5)
    close = (30_000 * np.exp(np.cumsum(rng.normal(0, 0.0007, minutes)))).round(2)
    candles = SimpleNamespace(timestamp=(START + np.arange(minutes, dtype="i8") * 60) * 1000,
                              open=np.r_[close[0], close[:-1]], high=close + 5, low=close - 5, close=close,
                              volume=rng.gamma(2.0, 5.0, minutes).round(3))
    entries = np.sort(rng.choice(minutes - 500, 7_000, replace=False)).tolist()
    trades = [{"id": str(i), "symbol": "BTC/USDT", "direction": "LONG", "amount": 0.1, "entry_time": at(m),
               "entry_price": float(close[m]), "exit_time": at(m + 300), "exit_price": float(close[m + 300]),
               "pnl": 1.0, "verdicts": [{"plugin": "risk_limits", "approved": True, "reason": "ok"}]}
              for i, m in enumerate(entries)]
    html = page(chart_payload([chart_series("BTC/USDT", "1m", candles, indicators=("sma:20", "rsi:14"))], trades,
                              currency="USDT"), title="a year")
    assert len(html.encode()) < 10_000_000
    tab.show(html)
    state = tab.js(f"{CHART}.state()")
    width = tab.js("document.querySelector('#tradechart .gtc-chart').clientWidth")
    assert state["barsDrawn"] <= min(3_000, width) and state["trades"] == 7_000  # auto: a bar a pixel at most
    assert state["timeframe"] in ("4h", "6h", "8h", "12h")
    state_before_zoom = state["timeframe"]
    assert state["markers"] <= 200  # grouped: one per group of bars and kind
    noon = START + 100 * 86_400 + 43_200
    tab.js(f"{CHART}.setRange({noon}, {noon + 43_200})")  # half a day: 720 1m candles
    state = tab.js(f"{CHART}.state()")
    assert state["timeframe"] == "1m" and tab.js(f"{CHART}.countCandles({noon}, {noon + 43_199})") == 720
    assert 720 < state["barsDrawn"] <= 6_000  # the view and some either side, not the year
    tab.js(f"{CHART}.fit()")
    assert tab.js(f"{CHART}.state()")["timeframe"] == state_before_zoom


# -- Python side --------------------------------------------------------------------------------------------
def test_the_python_api_checks_its_arguments():
    with pytest.raises(ValueError, match="indicator"):
        chart_series("BTC/USDT", "1m", BTC, indicators=("macd:12",))
    with pytest.raises(ValueError, match="timeframe"):
        chart_series("BTC/USDT", "7m", BTC)
    with pytest.raises(ValueError, match="oldest first"):
        chart_series("BTC/USDT", "1m", BTC.model_copy(update={"timestamp": BTC.timestamp[::-1]}))
    with pytest.raises(ValueError, match="NaN"):
        chart_series("BTC/USDT", "1m", BTC.model_copy(update={"close": [float("nan")] + BTC.close[1:]}))
    with pytest.raises(ValueError, match="no series"):
        chart_payload([chart_series("BTC/USDT", "1m", BTC)], [], currency="USDT", symbol="ETH/USDT")
    with pytest.raises(ValueError, match="element_id"):
        embed(payload(), element_id="x\"><script>")
    with pytest.raises(ValueError, match="chart asset"):
        asset("../secret")
    assert asset("lightweight-charts.js").startswith(b"/*!\n * @license\n * TradingView Lightweight Charts")
    assert f"v{LIBRARY_VERSION}".encode() in asset("lightweight-charts.js")[:200]
    assert b"Apache License" in asset("LICENSE") and b"TradingView" in asset("NOTICE")


def test_ticks_write_round_prices_exactly_and_keep_eight_digits_of_others():
    from gobot_hookspecs.tradechart.encoding import price_decimals, volume_decimals

    assert price_decimals([42_000.5, 42_001.25]) == 2 and price_decimals([0.00162008, 0.00161]) == 8
    assert price_decimals([43_251.123456789]) == 3  # 8 significant digits of the largest
    assert price_decimals([1.0 / 3.0]) == 8
    assert volume_decimals([12.5, 3.25]) == 2
    assert volume_decimals([108.1485384, 82.390199, 212.3036932]) == 1  # 4 digits of the median (108.1)
    assert volume_decimals([3e9, 2.5e10]) == -2  # hundreds: an int32 holds the largest
    huge = encode_candles([0, 60_000], [3e9, 3.1e9], [3.2e9, 3.3e9], [2.9e9, 3e9], [3.1e9, 3.2e9], [4e10, 1e3])
    assert huge["decimals"] == -2 and decode_candles(huge)["close"] == [3.1e9, 3.2e9]
    assert decode_candles(huge)["volume"] == [4e10, 1e3]


def test_the_payload_is_json_and_script_safe():
    data = payload()
    assert json.loads(json.dumps(data)) == data
    html = embed(data)
    assert "</script> " not in html.split('type="application/json"')[1].split("</script>")[0]
    assert data["trades"][0]["side"] == "long" and data["trades"][1]["side"] == "short"
    assert data["trades"][0]["entry"] == START + 30 * 60


def test_the_contract_does_not_import_the_chart_kit():
    code = "import sys, gobot_hookspecs; print('gobot_hookspecs.tradechart' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
