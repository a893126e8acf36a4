"""The charts plugin: real candlestick PNGs from headless Chromium (Debian's, driven by playwright),
screenshots of a configured URL served on loopback, and the ``ctx.chart`` seam other plugins use."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chart_support import BrowserSession, requires_chromium
from gobot.errors import ConfigError, PluginError
from gobot.testing.loopback_openai import decode_png
from gobot_hookspecs import hookimpl
from gobot_plugins.charts import chart_url, indicators
from gobot_plugins.charts.page import PAGE_HTML
from gobot_plugins.charts.renderer import png_size

DARK_BACKGROUND = (0x13, 0x17, 0x22)
UP, DOWN = (0x26, 0xA6, 0x9A), (0xEF, 0x53, 0x50)


@pytest.fixture(scope="module")
def browser():
    session = BrowserSession()
    yield session
    session.close()


class Looker:
    """Asks ``ctx.chart`` in the ideas phase, as the vision plugin does, and keeps what came back."""

    def __init__(self, asks):
        self.asks = asks
        self.results = {}
        self.spy = None
        self.seen = None

    @hookimpl
    async def gobot_generate_ideas(self, ctx):
        if self.spy is not None:
            self.seen = self.spy()
        for symbol, timeframe in self.asks:
            try:
                self.results[(symbol, timeframe, ctx.iteration)] = (await ctx.chart(symbol, timeframe, 60), ctx.now())
            except Exception as exc:  # kept, to assert on
                self.results[(symbol, timeframe, ctx.iteration)] = (exc, ctx.now())
        return None


# -- indicators and config --------------------------------------------------------------------------


def test_indicators_match_values_worked_out_by_hand():
    assert indicators.sma([1, 2, 3, 4, 5], 2) == [None, 1.5, 2.5, 3.5, 4.5]
    assert indicators.ema([2, 4, 6, 8], 3) == [None, None, 4.0, 6.0]  # seeded with SMA 4, alpha 0.5
    assert indicators.rsi([1, 2, 3, 4, 5], 3)[3:] == [100.0, 100.0]  # only gains
    upper, lower = indicators.bollinger([5, 5, 5, 5], 2)
    assert upper[1:] == lower[1:] == [5.0, 5.0, 5.0]  # no spread, no width


def test_an_unknown_indicator_is_a_config_error_that_says_what_to_write(replay_bot):
    with pytest.raises(ConfigError) as error:
        replay_bot(config={"plugins": {"enable": ["charts"], "charts": {"indicators": ["macd:12"]}}})
    assert "plugins.charts.indicators" in str(error.value)
    assert "sma:N" in str(error.value)


def test_url_mode_without_a_template_is_a_config_error(replay_bot):
    with pytest.raises(ConfigError) as error:
        replay_bot(config={"plugins": {"enable": ["charts"], "charts": {"mode": "url"}}})
    assert "url_template" in str(error.value)


def test_url_templates_are_filled_in():
    url = chart_url("http://h/c?s={base}{quote}&tf={timeframe}&m={minutes}&p={symbol}", "BTC/USDT", "15m")
    assert url == "http://h/c?s=BTCUSDT&tf=15m&m=15&p=BTC%2FUSDT"


# -- rendering (one browser for the module) ---------------------------------------------------------


@requires_chromium
def test_a_rendered_chart_is_a_full_size_png_with_candles_on_it(browser):
    chart = browser.render("BTC/USDT", "15m", limit=120)
    assert png_size(chart.png) == (1024, 640)
    assert chart.candles == 120
    assert len(chart.png) > 20_000  # a blank 1024x640 PNG is a few KB
    image = decode_png(chart.png)
    assert image.share_of(DARK_BACKGROUND) < 0.9
    colours = image.colours(step=2)
    assert len(colours) > 50
    assert UP in colours and DOWN in colours  # rising and falling candles both drawn


@requires_chromium
def test_the_same_candles_give_the_same_picture(browser):
    first = browser.render("ETH/USDT", "5m", limit=80)
    other = browser.render("ETH/USDT", "15m", limit=80)
    again = browser.render("ETH/USDT", "5m", limit=80)
    assert first.png == again.png  # so the vision cache's image hash finds the answer again
    assert other.png != first.png


@requires_chromium
def test_a_light_chart_without_indicators_still_has_volume(browser):
    chart = browser.render("BTC/USDT", "5m", limit=60, indicators=[], theme="light")
    image = decode_png(chart.png)
    assert image.share_of((255, 255, 255)) < 0.95
    assert chart.caption == "candlesticks and volume"


def test_the_chart_page_is_self_contained():
    lowered = PAGE_HTML.lower()
    for outside in ("http:", "https:", "<link", "src=", "@import", "url("):
        assert outside not in lowered, f"the chart page refers to {outside}"


# -- through the bot: ctx.chart -> gobot_render_chart ----------------------------------------------


@requires_chromium
def test_ctx_chart_renders_closed_candles_and_says_when_a_timeframe_is_missing(replay_bot, run_bot):
    looker = Looker([("BTC/USDT", "5m"), ("BTC/USDT", "15m"), ("BTC/USDT", "1m")])
    bot = replay_bot(config={"plugins": {"enable": ["charts"]}}, plugins=[("looker", looker)])
    charts = bot.plugin_set.pm.get_plugin("charts")
    looker.spy = lambda: charts.renderer._browser
    run_bot(bot, 2)
    five, now = looker.results[("BTC/USDT", "5m", 1)]
    fifteen, _ = looker.results[("BTC/USDT", "15m", 1)]
    missing, _ = looker.results[("BTC/USDT", "1m", 1)]
    assert five.source == "charts" and five.origin == "render" and five.candles == 60
    assert (five.width, five.height) == png_size(five.png) == (1024, 640)
    assert five.end <= now and fifteen.end <= now  # closed candles only: no lookahead
    assert "SMA 20" in five.caption
    assert isinstance(missing, LookupError) and "no 1m chart of BTC/USDT" in str(missing)
    assert looker.results[("BTC/USDT", "5m", 2)][0].png != five.png  # a new candle, a new picture
    # One browser for the run, closed at shutdown.
    assert looker.seen is not None and not looker.seen.is_connected()
    assert charts.renderer is None


def test_a_missing_chromium_stops_the_start_with_the_fix(replay_bot, run_bot):
    bot = replay_bot(config={"plugins": {"enable": ["charts"], "charts": {"executable_path": "/nonexistent/chromium"}}})
    with pytest.raises(PluginError) as error:
        run_bot(bot, 1)
    message = str(error.value)
    assert "plugin 'charts'" in message and "Chromium not found at /nonexistent/chromium" in message
    assert "apt-get install chromium" in message


# -- url mode against a page served on loopback ----------------------------------------------------

CHART_PAGE = b"""<!doctype html><html><body style="margin:0;background:#fff">
<script>
  // The chart "loads" a moment after the page: a screenshot taken at page load would miss it.
  const tf = new URLSearchParams(location.search).get("tf");
  setTimeout(() => {
    if (tf === "1h") return;  // this one never becomes ready
    const div = document.createElement("div");
    div.id = "chart-ready";
    div.style.cssText = "position:absolute;left:0;top:0;width:400px;height:300px;background:rgb(200,30,30)";
    document.body.appendChild(div);
  }, 300);
</script></body></html>"""


@pytest.fixture
def chart_site():
    paths = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(CHART_PAGE)))
            self.end_headers()
            self.wfile.write(CHART_PAGE)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", paths
    server.shutdown()
    server.server_close()


@requires_chromium
def test_url_mode_screenshots_the_page_once_the_selector_is_visible(replay_bot, run_bot, chart_site):
    base, paths = chart_site
    charts = {
        "mode": "url",
        "url_template": base + "/chart?s={base}{quote}&tf={timeframe}&token=s3cr3t",
        "wait_for_selector": "#chart-ready",
        "page_timeout_seconds": 1,
        "width": 800,
        "height": 600,
    }
    looker = Looker([("BTC/USDT", "15m"), ("BTC/USDT", "1h")])
    bot = replay_bot(config={"plugins": {"enable": ["charts"], "charts": charts}}, plugins=[("looker", looker)])
    run_bot(bot, 1)
    shot, _ = looker.results[("BTC/USDT", "15m", 1)]
    assert "/chart?s=BTCUSDT&tf=15m&token=s3cr3t" in paths
    assert (shot.width, shot.height) == (800, 600) and shot.candles == 0
    assert decode_png(shot.png).pixel(100, 100)[:3] == (200, 30, 30)  # the element that appeared late is on it
    assert shot.origin == f"{base}/chart" and "s3cr3t" not in shot.caption  # no query (tokens) in records
    failed, _ = looker.results[("BTC/USDT", "1h", 1)]
    assert isinstance(failed, PluginError)
    assert "'#chart-ready' did not appear" in str(failed)
    assert "s3cr3t" not in str(failed)
