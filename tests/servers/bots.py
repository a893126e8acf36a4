"""Bots wired to the Binance test server: the real binance and adaptive_rate_limit plugins, the
real ccxt client, a scripted idea plugin, and a recorder of events (for tests and chaos tests)."""

from __future__ import annotations

import asyncio
import json
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gobot.config import settings_from_dict
from gobot.host.plugin_manager import build_plugin_set
from gobot.run.bot import Bot
from gobot_hookspecs import Action, Candles, MarketSnapshot, Signal, hookimpl

from .binance import API_KEY, API_SECRET, BinanceTestServer

#: Default plugins a Binance bot does not need in these tests (replay's simulated clock must go).
NOT_NEEDED = ("replay", "sma_rsi", "adjuster", "validator", "archiver", "kelly_size", "console", "charts", "vision")


class Ideas:
    """Says what ``wanted`` says per symbol (HOLD otherwise): the tests decide the trades."""

    def __init__(self, wanted: dict[str, Action] | None = None):
        self.wanted = dict(wanted or {})

    @hookimpl
    def gobot_generate_ideas(self, snapshots):
        return [Signal(symbol=s.symbol, action=self.wanted.get(s.symbol, Action.HOLD), confidence=0.9,
                       rationale="scripted")
                for s in snapshots]


class MovableWallClock:
    """The wall clock, which a test may move forward (say, past the circuit breaker's recovery timeout)."""

    simulated = False
    end = None

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, seconds: float) -> None:
        pass  # on the wall clock cycles do not move time; only the test does

    @hookimpl(tryfirst=True)
    def gobot_clock(self):
        return self


class Recorder:
    """Keeps every alert, execution error and fill it hears about."""

    def __init__(self) -> None:
        self.alerts: list[Any] = []
        self.errors: list[Any] = []
        self.fills: list[Any] = []

    @hookimpl
    def gobot_send_alert(self, alert):
        self.alerts.append(alert)

    @hookimpl
    def gobot_on_execution_error(self, error):
        self.errors.append(error)

    @hookimpl
    def gobot_on_fill(self, fill):
        self.fills.append(fill)


def binance_settings(state_dir: Path, server: BinanceTestServer, **binance: Any) -> dict[str, Any]:
    section = {"mode": "testnet", "market": "spot", "api_url": server.url, "timeframe": "1m", "lookback_candles": 30,
               "ttl_ticker": 0, "ttl_order_book": 0, "ttl_ohlcv": 0, "retry_backoff": 0.05, "request_timeout": 2,
               "recv_window_ms": 1000} | binance
    return {
        "state_dir": str(state_dir),
        "trading": {"symbols": ["BTC/USDT"], "max_position_usd": 100, "initial_capital_usd": 10000},
        "plugins": {"enable": ["binance", "adaptive_rate_limit"], "binance": section,
                    # no low-liquidity window: the default 02:00-04:00 UTC would fail these tests at that
                    # wall-clock hour
                    "risk_limits": {"max_total_exposure_usd": 1000, "low_liquidity_hours": []}},
    }


def binance_bot(state_dir: Path, server: BinanceTestServer, *, ideas: Ideas | None = None,
                recorder: Recorder | None = None,
                config: dict[str, Any] | None = None, live: bool = False, plugins: list[tuple[str, Any]] = (),
                **binance: Any) -> Bot:
    data = binance_settings(state_dir, server, **binance)
    for key, value in (config or {}).items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    settings = settings_from_dict(data, "test-config.toml", base_dir=str(state_dir.parent))
    extra = [("ideas", ideas or Ideas())] + ([("recorder", recorder)] if recorder is not None else []) + list(plugins)
    plugin_set = build_plugin_set(enable=settings.plugins.enable, disable=NOT_NEEDED, extra_plugins=extra, live=live)
    return Bot(settings, plugin_set, live=live)


def keys(monkeypatch: Any) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", API_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", API_SECRET)


class WallClockMarket:
    """Market data on the wall clock (no replay, so no simulated clock): 60 closed 5m candles of a
    small repeating pattern ending before ``ctx.now()``, for each of ``symbols``."""

    def __init__(self, *symbols: str):
        self.symbols = symbols or ("BTC/USDT",)

    @hookimpl
    def gobot_scan_market(self, ctx):
        now = ctx.now()
        ms = int(now.timestamp() * 1000) // 300_000 * 300_000 - 300_000
        prices = [100.0 + (i % 7) for i in range(60)]
        candles = Candles(timeframe="5m", timestamp=[ms - (59 - i) * 300_000 for i in range(60)], open=prices,
                          high=[p + 1 for p in prices], low=[p - 1 for p in prices], close=prices, volume=[1.0] * 60)
        return [MarketSnapshot(symbol=s, time=now, price=prices[-1], candles=candles) for s in self.symbols]


def run_cycles(bot: Bot, n: int, between: Any = None) -> list:
    """Start ``bot``, run ``n`` cycles (calling ``between(i)`` after cycle i), shut it down; the reports."""
    async def go():
        await bot.startup()
        reports = []
        try:
            for i in range(n):
                reports.append(await bot.run_cycle())
                if between is not None:
                    between(i)
        finally:
            await bot.shutdown("test over")
        return reports

    return asyncio.run(go())


# -- for `gobot start` as a subprocess ----------------------------------------------------------------


def install_plugin_dist(folder: Path, name: str, source: str) -> Path:
    """A pip-installed-looking plugin distribution ``name`` (module ``name``, entry point in the
    ``gobot`` group) in ``folder``: put it on the subprocess's PYTHONPATH."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    dist = f"gobot_plugin_{name}"
    info = folder / f"{dist}-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: 1.0\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[gobot]\n{name} = {name}\n", encoding="utf-8")
    return folder


def write_start_config(folder: Path, server_url: str, *, market: str, ideas: str, archiver: bool = False,
                       share: str = "none") -> Path:
    """``folder/config.toml`` for ``gobot start`` in testnet mode against the test server: one symbol,
    the ``ideas`` plugin deciding, every risk limit and the breaker out of the way of the trades."""
    enable = ["binance", "adaptive_rate_limit", ideas] + (["archiver"] if archiver else [])
    disable = (["replay", "sma_rsi", "adjuster", "validator", "kelly_size", "charts", "vision"]
               + ([] if archiver else ["archiver"]))
    config = folder / "config.toml"
    config.write_text(textwrap.dedent(f"""
        state_dir = "state"
        [trading]
        symbols = ["BTC/USDT"]
        max_position_usd = 100
        initial_capital_usd = 10000
        [orchestrator]
        loop_interval = 0.05
        [plugins]
        enable = {json.dumps(enable)}
        disable = {json.dumps(disable)}
        [plugins.risk_limits]
        max_total_exposure_usd = 1000
        symbol_cooldown_minutes = 0
        max_trades_per_day = 0
        low_liquidity_hours = []
        [plugins.circuit_breaker]
        circuit_breaker_threshold = 1000000
        max_consecutive_losses = 1000000
        failure_threshold = 1000000
        [plugins.archiver]
        pattern_discovery = false
        [plugins.adaptive_rate_limit]
        share = "{share}"
        [plugins.binance]
        mode = "testnet"
        market = "{market}"
        api_url = "{server_url}"
        timeframe = "1m"
        lookback_candles = 30
        recv_window_ms = 5000
        retry_backoff = 0.05
        ttl_ticker = 0
        ttl_order_book = 0
        ttl_ohlcv = 0
    """), encoding="utf-8")
    return config
