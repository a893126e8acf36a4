"""The operator's HTTP server (`gobot start --serve`): /health for supervisors, Prometheus /metrics,
the JSON API and the controls, driven with httpx against the real server on 127.0.0.1, around a
real replay whose cycles complete only when the test lets them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gobot.errors import StartRefused
from gobot.ops.server import check_bind, is_loopback
from gobot_hookspecs import MetricSample, PluginStatus, hookimpl
from server_support import TOKEN, Pacer, auth, served, until

# -- health ---------------------------------------------------------------------------------


def test_health_is_200_while_cycles_complete_and_503_once_the_loop_stalls(replay_bot):
    pacer = Pacer(free=2)
    bot = replay_bot(plugins=[("pacer", pacer)])

    async def scenario():
        async with served(bot, stall_seconds=1.0) as (server, runner, task, client):
            await until(lambda: bot.counters.cycles == 3, what="three cycles")
            healthy = await client.get("/health")
            assert healthy.status_code == 200, healthy.json()
            doc = healthy.json()
            assert doc["healthy"] and doc["alive"] and doc["iteration"] == 3
            assert doc["last_cycle_age_seconds"] < 1.0
            assert doc["exchange_reachable"] is True  # the last scan covered every symbol
            assert doc["breaker"] in ("CLOSED", "not installed")  # circuit_breaker's state, if it is enabled

            async def stalled():
                return (await client.get("/health")).status_code == 503

            deadline = time.monotonic() + 10
            while not await stalled():
                assert time.monotonic() < deadline, "/health never turned unhealthy"
                await asyncio.sleep(0.05)
            doc = (await client.get("/health")).json()
            assert doc["status"] == "unhealthy"
            assert any(p.startswith("loop: last cycle completed") and "stalled (more than 1 s)" in p
                       for p in doc["problems"])

            pacer.allow(1)  # the loop moves again: healthy at once
            await until(lambda: bot.counters.cycles == 4, what="the fourth cycle")
            assert (await client.get("/health")).status_code == 200

    asyncio.run(scenario())


class Breaker:
    """Stands in for the circuit breaker (which is disabled), under another name: the core knows a breaker
    only by its ``gobot_status`` answer (``breaker=True``), as it knows the real one."""

    def __init__(self):
        self.trip_at = 2
        self.state = "CLOSED"

    @hookimpl
    def gobot_report(self, ctx):
        self.state = "OPEN" if ctx.iteration >= self.trip_at else "CLOSED"

    @hookimpl
    def gobot_status(self):
        return PluginStatus(breaker=True, state=self.state, healthy=self.state != "OPEN",
                            reason=f"breaker {self.state}")


def test_health_is_503_while_the_circuit_breaker_is_open(replay_bot):
    pacer = Pacer(free=0)
    bot = replay_bot(plugins=[("breaker_stub", Breaker()), ("pacer", pacer)], disable=["circuit_breaker"])

    async def scenario():
        async with served(bot) as (server, runner, task, client):
            await until(lambda: bot.counters.cycles == 1, what="one cycle")
            doc = (await client.get("/health")).json()
            assert doc["healthy"] and doc["breaker"] == "CLOSED"
            pacer.allow(1)
            await until(lambda: bot.counters.cycles == 2, what="two cycles")
            response = await client.get("/health")
            assert response.status_code == 503
            assert response.json()["problems"] == ["circuit_breaker: circuit breaker OPEN: no new positions"]
            metrics = (await client.get("/metrics")).text
            assert "gobot_circuit_breaker_open 1\n" in metrics
            assert 'gobot_circuit_breaker_state{state="OPEN"} 1\n' in metrics

    asyncio.run(scenario())


class Limiter:
    """A plugin contributing to the operator's view through ``gobot_status``."""

    def __init__(self):
        self.banned = False

    @hookimpl
    def gobot_status(self):
        samples = [MetricSample(name="gobot_rate_limit_weight_used", value=420, labels={"budget": "REQUEST_WEIGHT/1m"},
                                help="weight used in the current window")]
        samples += [MetricSample(name="gobot_rate_limit_queue_depth", value=depth, labels={"priority": name},
                                 help="requests waiting, by priority") for name, depth in (("CRITICAL", 0), ("LOW", 3))]
        return PluginStatus(healthy=not self.banned, reason="HTTP 418: banned for 120 s" if self.banned else "",
                            state="BANNED" if self.banned else "OK", metrics=samples,
                            data={"exchange_reachable": not self.banned})


class BrokenStatus:
    @hookimpl
    def gobot_status(self):
        raise RuntimeError("status store gone")


def test_plugins_add_samples_and_verdicts_through_gobot_status(replay_bot):
    limiter = Limiter()
    bot = replay_bot(plugins=[("limiter", limiter), ("broken", BrokenStatus()), ("pacer", Pacer(0))])

    async def scenario():
        async with served(bot) as (server, runner, task, client):
            await until(lambda: bot.counters.cycles == 1, what="one cycle")
            metrics = (await client.get("/metrics")).text
            assert 'gobot_rate_limit_weight_used{budget="REQUEST_WEIGHT/1m",plugin="limiter"} 420\n' in metrics
            assert 'gobot_rate_limit_queue_depth{plugin="limiter",priority="LOW"} 3\n' in metrics
            health = await client.get("/health")
            assert health.status_code == 200  # a raising status hook is unknown, not unhealthy
            assert health.json()["checks"]["plugin:broken"] == {
                "ok": None, "detail": "status unknown: RuntimeError: status store gone"}
            status = (await client.get("/api/status")).json()
            assert status["plugin_status"]["limiter"]["state"] == "OK"
            assert [s["name"] for s in status["rate_limiter"]["samples"]].count("gobot_rate_limit_queue_depth") == 2
            assert bot.failures == [] and bot.state.cycles[-1].note == ""  # the cycle's record is not touched

            limiter.banned = True
            health = await client.get("/health")
            assert health.status_code == 503
            assert health.json()["exchange_reachable"] is False
            assert "plugin:limiter: HTTP 418: banned for 120 s" in health.json()["problems"]

    asyncio.run(scenario())


# -- metrics and the JSON API ------------------------------------------------------------------


class BrokenChannel:
    @hookimpl
    def gobot_send_alert(self, alert):
        raise ConnectionError("chat server down")


def test_metrics_are_valid_prometheus_text_with_every_promised_family(replay_bot):
    from prometheus_client.parser import text_string_to_metric_families

    bot = replay_bot(plugins=[("broken_channel", BrokenChannel()), ("limiter", Limiter())])

    async def scenario():
        async with served(bot, max_iterations=40) as (server, runner, task, client):
            await asyncio.wait_for(asyncio.shield(task), 30)
            return (await client.get("/metrics")), (await client.get("/api/metrics")).json()

    response, metrics_json = asyncio.run(scenario())
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    samples = {f.name: {tuple(sorted(s.labels.items())): s.value for s in f.samples} for f in families.values()}
    assert families["gobot_cycles"].type == "counter"
    assert samples["gobot_cycles"][()] == 40
    phase_counts = {dict(k)["phase"]: v for k, v in
                    ((k, v) for f in [families["gobot_phase_duration_seconds"]] for s in f.samples
                     if s.name.endswith("_count") for k, v in [(tuple(s.labels.items()), s.value)])}
    assert phase_counts == {p: 40 for p in ("scan", "ideas", "adjust", "validate", "execute", "report")}
    assert samples["gobot_orders"][(("status", "new"),)] >= 1  # paper orders fill at the next candle
    vetoes = samples["gobot_risk_vetoes"]
    assert vetoes and all(dict(k)["plugin"] and dict(k)["reason"] for k in vetoes)
    # numbers folded: few label values
    assert any("below min_confidence_threshold N" in dict(k)["reason"] for k in vetoes)
    assert samples["gobot_alerts_sent"][(("channel", "console"),)] > 0
    assert (samples["gobot_alerts_failed"][(("channel", "broken_channel"),)]
            == samples["gobot_alerts_sent"][(("channel", "console"),)])
    assert samples["gobot_equity"][()] == pytest.approx(bot.portfolio.equity())
    assert samples["gobot_open_positions"][()] == len(bot.state.positions)
    breaker = bot.state.plugin_state.get("circuit_breaker", {}).get("state", "not installed")
    assert samples["gobot_circuit_breaker_state"] == {(("state", breaker),): 1}
    assert samples["gobot_rate_limit_queue_depth"][(("plugin", "limiter"), ("priority", "LOW"))] == 3
    assert metrics_json["run"]["cycles"] == 40
    assert len(metrics_json["equity_curve"]) == 40
    assert metrics_json["counters"]["alerts_failed"]["broken_channel"] > 0


def test_the_json_api_shows_status_trades_and_cycles(replay_bot):
    bot = replay_bot()

    async def scenario():
        async with served(bot, max_iterations=40) as (server, runner, task, client):
            await asyncio.wait_for(asyncio.shield(task), 30)
            return [(await client.get(path)).json() for path in ("/api/status", "/api/trades?limit=5",
                                                                 "/api/cycles?limit=3")]

    status, trades, cycles = asyncio.run(scenario())
    assert status["run_id"] == bot.state.run_id and status["iteration"] == 40 and status["mode"] == "paper"
    assert status["finished"] and not status["running"]
    assert {p["name"] for p in status["plugins"] if p["status"] == "enabled"} >= {"replay", "paper", "sma_rsi"}
    assert len(status["open_positions"]) == len(bot.state.positions)
    assert trades["total"] == len(bot.state.trades) >= 1
    newest = bot.state.trades[-1]
    assert trades["trades"][0] == {**newest.model_dump(mode="json"),  # newest first, with its id on the chart
                                   "id": newest.client_order_id}
    assert [c["iteration"] for c in cycles["cycles"]] == [40, 39, 38]
    assert set(cycles["cycles"][0]["phase_ms"]) == {"scan", "ideas", "adjust", "validate", "execute", "report"}


# -- the chart: /api/chart and the chart kit's files ---------------------------------------------------


def ledger_ids(bot, symbol: str) -> list[str]:
    """The ids the chart gives the run's trades and open position on ``symbol``, oldest first."""
    trades = [t.client_order_id for t in bot.state.trades if t.symbol == symbol]
    position = bot.state.positions.get(symbol)
    return trades + ([position.client_order_id] if position else [])


async def archived_chart(client, symbol: str) -> httpx.Response:
    """``/api/chart`` of ``symbol`` once the archive has stored the newest fills (its writer may be a batch
    behind the ledger: a chart shows the ledger's facts at once and the archive's details when they are in)."""
    deadline = time.monotonic() + 10
    while True:
        response = await client.get("/api/chart", params={"symbol": symbol})
        if all(len(t["fills"]) == (1 if t["exit"] is None else 2) for t in response.json()["trades"]):
            return response
        assert time.monotonic() < deadline, "the archive never told every trade's fills"
        await asyncio.sleep(0.1)


class StoryQuestions:
    """Counts the chart's questions to the archive (answers none: the archiver answers them)."""

    def __init__(self):
        self.asked = 0

    @hookimpl(tryfirst=True)
    def gobot_trade_stories(self):
        self.asked += 1


def test_the_chart_api_gives_the_runs_candles_and_its_trades_with_their_stories(replay_bot):
    from gobot.research.backtest.chart import strategy_indicators
    from gobot_hookspecs.tradechart.encoding import decode_candles

    questions = StoryQuestions()
    bot = replay_bot(plugins=[("pacer", Pacer(free=60)), ("questions", questions)])

    async def scenario():
        async with served(bot) as (server, runner, task, client):
            await until(lambda: bot.counters.cycles == 61, what="61 cycles")
            symbol = next(t.symbol for t in bot.state.trades)
            response = await archived_chart(client, symbol)
            built = server.charts_built
            again = await client.get("/api/chart", params={"symbol": symbol})
            built = server.charts_built - built
            candles = await bot.ctx.candles(symbol, "5m", 1000)
            first = (await client.get("/api/chart")).json()  # no symbol: the first configured one
            coarser = (await client.get("/api/chart", params={"symbol": symbol, "timeframe": "15m"})).json()
            asked, before = questions.asked, server.charts_built
            for limit in (900, 800):  # other documents of the same trades: the archive's answer is reused
                assert (await client.get("/api/chart", params={"symbol": symbol, "limit": limit})).status_code == 200
            assert questions.asked == asked
            crowd = await asyncio.gather(*(client.get("/api/chart", params={"symbol": symbol, "limit": 700})
                                           for _ in range(20)))  # twenty pages at once: one build for all
            assert {r.content for r in crowd} == {crowd[0].content} and server.charts_built == before + 3
            few = (await client.get("/api/chart", params={"symbol": symbol, "limit": "5"})).json()
            many = (await client.get("/api/chart", params={"symbol": symbol, "limit": "100000"})).json()
            return symbol, response, again, candles, first, coarser, few, many, built

    symbol, response, again, candles, first, coarser, few, many, built = asyncio.run(scenario())
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert again.content == response.content and built == 0  # shared: one build per version, symbol, timeframe, limit
    payload = response.json()
    assert payload["kind"] == "gobot-tradechart" and payload["currency"] == "USDT" and payload["symbol"] == symbol
    [series] = payload["series"]
    assert (series["symbol"], series["timeframe"], series["count"]) == (symbol, "5m", len(candles))
    assert decode_candles(series)["timestamp"] == candles.timestamp  # the bot's newest closed candles, as it sees them
    version = bot.state.strategies["sma_rsi"]  # its current version's indicators, as `gobot plot` draws them
    assert series["indicators"] == strategy_indicators(bot.strategies["sma_rsi"], version.params)
    assert any(spec.startswith("rsi:") for spec in series["indicators"])
    assert first["symbol"] == bot.settings.trading.symbols[0]
    assert coarser["series"][0]["timeframe"] == "15m"
    assert few["series"][0]["count"] == 5 and many["series"][0]["count"] == len(candles) <= 1000

    trades = {t["id"]: t for t in payload["trades"]}
    assert list(trades) == ledger_ids(bot, symbol)  # every trade on the symbol, and the open position
    for trade in (t for t in bot.state.trades if t.symbol == symbol):
        shown = trades[trade.client_order_id]
        assert (shown["entry_price"], shown["exit_price"], shown["pnl"]) == (trade.entry_price, trade.exit_price,
                                                                             trade.pnl)
        assert {v["plugin"] for v in shown["verdicts"]} == {"risk_limits", "circuit_breaker"}  # from the archive
        assert shown["signal"]["rationale"] and shown["sizing"] and len(shown["fills"]) == 2
    position = bot.state.positions.get(symbol)
    if position is not None:
        shown = trades[position.client_order_id]
        assert shown["exit"] is None and (shown["stop"], shown["target"]) == (position.stop_loss, position.take_profit)


class BrokenArchive:
    @hookimpl(tryfirst=True)
    def gobot_trade_stories(self):
        raise RuntimeError("archive offline")


def test_the_chart_shows_the_bots_own_ledger_when_the_archive_fails(replay_bot):
    bot = replay_bot(plugins=[("pacer", Pacer(free=60)), ("broken_archive", BrokenArchive())])

    async def scenario():
        async with served(bot) as (server, runner, task, client):
            await until(lambda: bot.counters.cycles == 61, what="61 cycles")
            symbol = next(t.symbol for t in bot.state.trades)
            return symbol, await client.get("/api/chart", params={"symbol": symbol})

    symbol, response = asyncio.run(scenario())
    assert response.status_code == 200
    trades = response.json()["trades"]
    assert [t["id"] for t in trades] == ledger_ids(bot, symbol)
    assert all(t["verdicts"] == [] and t["signal"]["confidence"] > 0 for t in trades)  # what the ledger knows


@pytest.mark.parametrize("query, status, error", [
    ({"symbol": "DOGE/USDT"}, 404, "no chart of 'DOGE/USDT': this run trades BTC/USDT, ETH/USDT"),
    ({"timeframe": "7m"}, 400, "unknown timeframe '7m'"),
    ({"limit": "many"}, 400, "limit must be a whole number of candles"),
])
def test_the_chart_api_refuses_what_the_run_does_not_trade(replay_bot, query, status, error):
    bot = replay_bot(plugins=[("pacer", Pacer(free=1))])

    async def scenario():
        async with served(bot) as (server, runner, task, client):
            await until(lambda: bot.counters.cycles == 2, what="two cycles")
            return await client.get("/api/chart", params=query)

    response = asyncio.run(scenario())
    assert response.status_code == status and response.json()["error"].startswith(error)


def test_the_chart_kits_files_come_from_the_bot_with_etags_and_the_api_behind_the_token(replay_bot):
    from gobot.ops.server import LIBRARY_STYLE_HASH, PAGE_POLICY
    from gobot_hookspecs.tradechart import asset

    bot = replay_bot(plugins=[("pacer", Pacer(free=1))])

    async def scenario():
        async with served(bot) as (server, runner, task, client):
            await until(lambda: bot.counters.cycles == 2, what="two cycles")
            files = {name: await client.get(f"/assets/{name}")
                     for name in ("lightweight-charts.js", "tradechart.js", "tradechart.css")}
            etag = files["tradechart.js"].headers["ETag"]
            unchanged = await client.get("/assets/tradechart.js", headers={"If-None-Match": etag})
            server.loopback = False  # as on a LAN address: everything but the page's files needs the token
            refused = await client.get("/api/chart")
            allowed = await client.get("/api/chart", headers=auth())
            page_files = [(await client.get(path)).status_code
                          for path in ("/", "/dashboard.js", *(f"/assets/{name}" for name in files))]
            return files, unchanged, refused, allowed, page_files

    files, unchanged, refused, allowed, page_files = asyncio.run(scenario())
    for name, response in files.items():
        assert response.status_code == 200 and response.content == asset(name)
        assert response.headers["Cache-Control"] == "no-cache" and response.headers["ETag"]
    assert files["tradechart.css"].headers["Content-Type"].startswith("text/css")
    assert files["tradechart.js"].headers["Content-Type"].startswith("text/javascript")
    assert unchanged.status_code == 304 and not unchanged.content
    assert refused.status_code == 401 and allowed.status_code == 200
    assert page_files == [200] * 5
    # The page's one inline style is the library's attribution logo: its hash is the one the policy allows.
    library = asset("lightweight-charts.js").decode()
    style = re.search(r'innerText="(a#tv-attr-logo[^"]*)"', library).group(1)
    assert LIBRARY_STYLE_HASH == "sha256-" + base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert LIBRARY_STYLE_HASH in PAGE_POLICY


# -- controls and their protection ----------------------------------------------------------------


def test_a_control_without_the_token_is_rejected_and_changes_nothing(replay_bot):
    bot = replay_bot(plugins=[("pacer", Pacer(0))])

    async def scenario():
        async with served(bot) as (server, runner, task, client):
            await until(lambda: bot.counters.cycles == 1, what="one cycle")
            for headers in ({}, auth("wrong-token"), {"Authorization": TOKEN}):
                for action in ("pause", "unpause", "kill"):
                    response = await client.post(f"/api/{action}", headers=headers)
                    assert response.status_code == 401, (action, headers)
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert not bot.store.paused and not bot.kill_switch_on()
            assert (await client.get("/api/pause")).status_code == 405  # a GET never changes state

            paused = await client.post("/api/pause", headers=auth())
            assert paused.status_code == 200 and paused.json()["paused"] is True
            assert bot.store.paused and bot.ctx.paused
            assert (await client.post("/api/unpause", headers=auth())).json()["paused"] is False
            killed = await client.post("/api/kill", headers=auth())
            assert killed.json()["kill_switch"] is True and bot.kill_switch_on()

    asyncio.run(scenario())
    events = [line for line in (bot.settings.state_path / "audit.jsonl").read_text().splitlines()
              if '"event": "paused"' in line]
    assert events and "dashboard (127.0.0.1)" in events[0]
    log = (bot.settings.state_path / "gobot.log")
    assert not log.exists() or TOKEN not in log.read_text()


def test_without_a_token_in_the_environment_the_controls_are_off(replay_bot):
    bot = replay_bot(plugins=[("pacer", Pacer(0))])

    async def scenario():
        async with served(bot, token=None) as (server, runner, task, client):
            await until(lambda: bot.counters.cycles == 1, what="one cycle")
            response = await client.post("/api/pause", headers=auth())
            assert response.status_code == 403 and "GOBOT_DASHBOARD_TOKEN" in response.json()["error"]
            assert (await client.get("/api/status")).json()["controls"] is False
            assert not bot.store.paused

    asyncio.run(scenario())


def test_a_loopback_server_answers_loopback_host_names_only(replay_bot):
    bot = replay_bot(plugins=[("pacer", Pacer(0))])

    async def scenario():
        async with served(bot) as (server, runner, task, client):
            assert (await client.get("/api/status", headers={"Host": "attacker.example"})).status_code == 421
            assert (await client.get("/api/status", headers={"Host": f"localhost:{server.port}"})).status_code == 200
            page = await client.get("/")
            assert page.status_code == 200 and "Content-Security-Policy" in page.headers
            # no CDN
            assert "<script src=\"/dashboard.js\"" in page.text and "http" not in page.text.split("<footer")[0]

    asyncio.run(scenario())


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                            ("127.0.0.2", True), ("0.0.0.0", False), ("192.168.1.10", False),
                                            ("bot.example.org", False)])
def test_which_hosts_count_as_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_a_non_loopback_bind_needs_a_token():
    with pytest.raises(StartRefused,
                       match=r'\[server\] host = "0.0.0.0" is not a loopback address: set GOBOT_DASHBOARD_TOKEN'):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", TOKEN)
    check_bind("127.0.0.1", None)


@pytest.mark.parametrize("token, why", [("a", "it has 1 character, at least 16 are needed"),
                                        ("   ", "it contains whitespace"),
                                        ("correct horse battery staple", "it contains whitespace"),
                                        ("0123456789abcde", "it has 15 characters, at least 16 are needed"),
                                        ("aaaaaaaaaaaaaaaaaaaa",
                                         "it has only 1 different characters, at least 6 are needed")])
def test_a_non_loopback_bind_needs_a_strong_token(token, why):
    """Issue 16, finding 8: "a" and "   " were accepted on 0.0.0.0."""
    with pytest.raises(StartRefused) as refused:
        check_bind("0.0.0.0", token)
    message = str(refused.value)
    assert message == ('GOBOT_DASHBOARD_TOKEN is too weak for [server] host = "0.0.0.0" (not a loopback address): '
                       f'{why}; set a random one, e.g. GOBOT_DASHBOARD_TOKEN=$(openssl rand -hex 16), '
                       "or bind to 127.0.0.1")
    assert "\n" not in message and (len(token) < 5 or token not in message)  # one line; the token itself never shown
    check_bind("0.0.0.0", "3f9c2a71e04b5d86c1a7e93b2f60d4a8")  # openssl rand -hex 16
    check_bind("127.0.0.1", token)  # on loopback the token only guards the controls


# -- the command line ---------------------------------------------------------------------------

GATE = """
import asyncio
from pathlib import Path

from gobot_hookspecs import hookimpl


class Gate:
    '''Holds the run after its first cycle until the file GO appears in the state folder.'''

    @hookimpl
    async def gobot_on_cycle_end(self, ctx):
        go = ctx.config.state_path / "GO"
        for _ in range(3000):  # at most 60 s
            if go.exists():
                return
            await asyncio.sleep(0.02)
"""


def gobot_env(pythonpath: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOBOT_CONFIG", "GOBOT_DASHBOARD_TOKEN")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.mark.slow
def test_gobot_start_serve_runs_the_server_in_the_bots_process(tmp_path, synthetic_data_dir, installed_plugin):
    site = installed_plugin("gate", GATE, attr="Gate")
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "state"\n[plugins]\nenable = ["gate"]\n[server]\nport = 0\n'
                      f'[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n', encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "gobot", "start", "--serve", "--quiet", "--config", str(config),
                                "--max-iterations", "2"], cwd=tmp_path,
                                env=gobot_env(site, GOBOT_DASHBOARD_TOKEN=TOKEN),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stderr:  # "Dashboard: http://127.0.0.1:PORT/ — health ..., controls on"
            if line.startswith("Dashboard: "):
                url = line.split()[1]
                assert line.rstrip().endswith("controls on") and TOKEN not in line
                break
        assert url, "no Dashboard line on stderr"
        with httpx.Client(base_url=url, timeout=10) as client:
            deadline = time.monotonic() + 20
            while client.get("/api/status").json()["iteration"] < 1:
                assert time.monotonic() < deadline
            assert client.get("/health").status_code == 200
            assert "gobot_cycles_total 1\n" in client.get("/metrics").text
            assert client.post("/api/pause").status_code == 401
            assert client.post("/api/pause", headers=auth()).json()["paused"] is True
        assert (tmp_path / "state" / "PAUSED").exists()
        (tmp_path / "state" / "GO").touch()
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "max_iterations (2) reached" in out
    assert TOKEN not in (tmp_path / "state" / "gobot.log").read_text()


@pytest.mark.parametrize("token, error", [
    (None, 'Error: [server] host = "0.0.0.0" is not a loopback address: set GOBOT_DASHBOARD_TOKEN'),
    ("a", 'Error: GOBOT_DASHBOARD_TOKEN is too weak for [server] host = "0.0.0.0" (not a loopback address): it has 1 '
          "character, at least 16 are needed; set a random one, e.g. GOBOT_DASHBOARD_TOKEN=$(openssl rand -hex 16)"),
    ("   ", "Error: GOBOT_DASHBOARD_TOKEN is too weak for [server] host = \"0.0.0.0\" (not a loopback address): "
           "it contains whitespace"),
])
def test_gobot_start_refuses_a_public_address_without_a_strong_token(tmp_path, synthetic_data_dir, token, error):
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "state"\n[server]\nenabled = true\nhost = "0.0.0.0"\n'
                      f'[plugins.replay]\ndata_dir = "{synthetic_data_dir}"\n', encoding="utf-8")
    extra = {} if token is None else {"GOBOT_DASHBOARD_TOKEN": token}
    done = subprocess.run([sys.executable, "-m", "gobot", "start", "--config", str(config)], cwd=tmp_path,
                          env=gobot_env(tmp_path, **extra), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert error in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # one line, no traceback
    assert not (tmp_path / "state" / "state.json").exists()  # refused before anything ran
    checked = subprocess.run([sys.executable, "-m", "gobot", "config", "check", "--config", str(config)], cwd=tmp_path,
                             env=gobot_env(tmp_path, **extra), capture_output=True, text=True, timeout=60)
    assert checked.returncode != 0 and "server.host" in checked.stdout + checked.stderr  # config check says so too
    assert "Traceback" not in checked.stderr
