"""Exchange chaos: the real binance plugin and ccxt against the loopback Binance server with faults
injected (5xx bursts, latency spikes, dropped connections, 429 storms, a 418 ban, clock skew giving
-1021, insufficient balance, rejected orders). For each fault: the loop keeps running (every cycle
completes), it backs off or refuses, it alerts, the circuit breaker opens where it should (a ban),
and when the fault stops the bot trades again — with exactly one entry order on the exchange. After
a ban the breaker recovers by its own rules: the bot's clock moves past the recovery timeout, one
probe trade goes through, wins, and the breaker closes.

``make chaos`` repeats every fault ``count(1, 5)`` times and prints the faults x outcome table.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest

from chaos_support import count, record_figures
from gobot_hookspecs import Action
from server_support import until
from servers.binance import BinanceTestServer, Fault
from servers.bots import Ideas, MovableWallClock, Recorder, binance_bot, keys

ORDER = "/api/v3/order"
ROUNDS = count(1, 5)


@dataclass
class Outcome:
    cycles: int
    errors: list[str]
    alerts: list[str]
    breaker: str
    entries: int
    position: bool
    statuses: dict[int, int]
    breaker_path: str  # the breaker's states, cycle by cycle, repeats folded: "CLOSED → OPEN → HALF_OPEN → CLOSED"
    trades: list[float]  # closed trades' P&L


def crowd(server: BinanceTestServer) -> None:
    """Another program on this IP used the whole weight window: the next requests get 429."""
    with server.lock:
        window = server._weight["spot"]
        now = time.time()
        window.start, window.used = now - now % server.window_seconds, server.weight_limit


FAULTS = {
    # name: (server options, what to do before faulty cycle i, cycles with the fault, healthy cycles after)
    "5xx burst": ({}, lambda s, i: s.inject(Fault(action="status", status=503, when="before",
                                                  times=8)) if i == 0 else None, 2, 3),
    "5xx text burst": ({}, lambda s, i: s.inject(Fault(action="status", status=502, text=True, when="before",
                                                       times=8)) if i == 0 else None, 2, 3),
    "latency spike": ({}, lambda s, i: s.inject(Fault(action="delay", delay=0.8, times=6)) if i == 0 else None, 2, 3),
    "dropped connections": ({}, lambda s, i: s.inject(Fault(action="drop", when="before", times=8)) if i == 0 else None,
                            2, 3),
    "order dropped after send": ({}, lambda s, i: s.inject(Fault(path=ORDER, method="POST", action="drop",
                                                                 when="after")) if i == 0 else None, 1, 3),
    "429 storm": ({"window_seconds": 1, "weight_limit": 400, "ban_after_429s": 5}, lambda s, i: crowd(s), 2, 3),
    "418 ban": ({}, lambda s, i: setattr(s, "banned_until", time.time() + 1.5) if i == 0 else None, 2, 4),
    "clock skew (-1021)": ({}, lambda s, i: setattr(s, "clock_skew_ms", 8000), 2, 3),
    "insufficient balance": ({"quote_balance": 1.0}, lambda s, i: None, 2, 0),
    "order rejected (400)": ({}, lambda s, i: s.inject(Fault(path=ORDER, method="POST", action="status", status=400,
                                                             when="before", times=3)) if i == 0 else None, 2, 3),
}


def heal(server: BinanceTestServer, name: str) -> None:
    with server.lock:
        server.faults.clear()
        server.clock_skew_ms = 0
        server.banned_until = 0.0


def run_fault(tmp_path, name: str) -> Outcome:
    options, inject, faulty, healthy = FAULTS[name]
    with BinanceTestServer(**options) as server:
        recorder, ideas, clock = Recorder(), Ideas({"BTC/USDT": Action.LONG}), MovableWallClock()
        bot = binance_bot(tmp_path / "state", server, ideas=ideas, recorder=recorder, plugins=[("clock", clock)],
                          request_timeout=0.5, max_attempts=2)
        path: list[str] = []

        async def cycle() -> None:
            await bot.run_cycle()
            state = bot.state.plugin_state.get("circuit_breaker", {}).get("state", "CLOSED")
            if not path or path[-1] != state:
                path.append(state)

        async def go():
            await bot.startup()
            done = 0
            try:
                for i in range(faulty):
                    inject(server, i)
                    await cycle()
                    done += 1
                heal(server, name)
                if name == "418 ban":  # the ban ends (real time), the recovery timeout passes (moved clock): a probe
                    limiter = bot.ctx.rate_limiter
                    await until(lambda: limiter.banned_until <= limiter.clock(), timeout=10, what="the end of the ban")
                    clock.offset += timedelta(
                        minutes=bot.plugin_configs["circuit_breaker"].recovery_timeout_minutes + 1)
                    await cycle()  # HALF_OPEN: the probe entry is sent
                    await cycle()  # its fill arrives
                    server.set_price("BTCUSDT", 51000.0)
                    ideas.wanted["BTC/USDT"] = Action.SHORT
                    await cycle()  # the exit is sent
                    ideas.wanted["BTC/USDT"] = Action.HOLD
                    await cycle()  # its fill closes the probe with a profit
                    return done + 4
                for _ in range(healthy):
                    await cycle()
                    done += 1
            finally:
                await bot.shutdown("chaos over")
            return done

        done = asyncio.run(go())
        with server.lock:
            entries = [o for o in server.state.orders.values() if o["side"] == "BUY" and o["status"] == "FILLED"]
            coids = [o["clientOrderId"] for o in server.state.orders.values()]
            statuses = dict(server.status_counts)
        assert len(coids) == len(set(coids)), f"{name}: a client order id twice on the exchange"
        return Outcome(cycles=done, errors=[e.kind for e in recorder.errors],
                       alerts=sorted({a.kind for a in recorder.alerts}),
                       breaker=bot.state.plugin_state.get("circuit_breaker", {}).get("state", "?"),
                       entries=len(entries), position="BTC/USDT" in bot.state.positions, statuses=statuses,
                       breaker_path=" → ".join(path), trades=[t.pnl for t in bot.state.trades])


@pytest.mark.parametrize("name", list(FAULTS))
def test_the_loop_survives_the_fault_alerts_and_recovers(tmp_path, monkeypatch, name):
    keys(monkeypatch)
    _options, _inject, faulty, healthy = FAULTS[name]
    for round_ in range(ROUNDS):
        outcome = run_fault(tmp_path / f"r{round_}", name)
        assert outcome.cycles == faulty + healthy  # the loop kept running: no cycle raised
        assert outcome.entries <= 1  # never a duplicate entry
        if name == "insufficient balance":
            assert outcome.entries == 0 and not outcome.position
            assert outcome.errors and "execution_error" in outcome.alerts
        elif name == "418 ban":
            assert "exchange_ban" in outcome.alerts and "banned" in outcome.errors
            # The breaker heard it and held entries; once the recovery timeout passed, one probe trade won.
            assert outcome.breaker_path == "OPEN → HALF_OPEN → CLOSED", outcome
            assert outcome.entries == 1 and len(outcome.trades) == 1 and outcome.trades[0] > 0, outcome
        else:
            assert outcome.entries == 1 and outcome.position, outcome  # recovered: traded once the fault stopped
        if name in ("5xx burst", "5xx text burst", "dropped connections", "order rejected (400)", "clock skew (-1021)"):
            assert outcome.alerts != ["run_started", "run_stopped"], outcome  # something was said
        if name == "429 storm":
            assert (outcome.statuses.get(429, 0) >= 1 and outcome.statuses.get(418, 0) == 0
                    and "rate_limited" in outcome.alerts)
        if name == "clock skew (-1021)":
            assert outcome.statuses.get(400, 0) >= 1
        recovered = outcome.position or bool(outcome.trades)
        print(f"{name}: cycles {outcome.cycles}, errors {len(outcome.errors)}, breaker {outcome.breaker_path}, "
              f"entries {outcome.entries}, recovered {recovered}, alerts {', '.join(outcome.alerts)}")
        record_figures(f"exchange chaos: {name}", rounds=1, survived=1, cycles=outcome.cycles,
                       errors=len(outcome.errors), entries=outcome.entries, recovered=int(recovered),
                       breaker=outcome.breaker_path,
                       alerts=", ".join(a for a in outcome.alerts if a not in ("run_started", "run_stopped")))
