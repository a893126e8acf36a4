"""Bots wired to the Binance test server: the real binance and adaptive_rate_limit plugins, the
real ccxt client, a scripted idea plugin, and a recorder of events (for tests and chaos tests)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gobot.config import settings_from_dict
from gobot.orchestrator import Bot
from gobot.plugin_manager import build_plugin_set
from gobot_hookspecs import Action, Signal, hookimpl

from .binance import API_KEY, API_SECRET, BinanceTestServer

#: Default plugins a Binance bot does not need in these tests (replay's simulated clock must go).
NOT_NEEDED = ("replay", "sma_rsi", "adjuster", "validator", "archiver", "kelly_size", "console", "charts", "vision")


class Ideas:
    """Says what ``wanted`` says per symbol (HOLD otherwise): the tests decide the trades."""

    def __init__(self, wanted: dict[str, Action] | None = None):
        self.wanted = dict(wanted or {})

    @hookimpl
    def gobot_generate_ideas(self, snapshots):
        return [Signal(symbol=s.symbol, action=self.wanted.get(s.symbol, Action.HOLD), confidence=0.9, rationale="scripted")
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
                    # no low-liquidity window: the default 02:00-04:00 UTC would fail these tests at that wall-clock hour
                    "risk_limits": {"max_total_exposure_usd": 1000, "low_liquidity_hours": []}},
    }


def binance_bot(state_dir: Path, server: BinanceTestServer, *, ideas: Ideas | None = None, recorder: Recorder | None = None,
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
