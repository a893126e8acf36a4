"""Bench: the adaptive rate limiter at 3x the allowed rate against the Binance test server.

Every scenario sends a fixed number of ticker requests (weight 2) through the real ccxt client
to a loopback Binance-compatible server whose weight budget is ``--limit`` per ``--window``-second window,
offering three times what that budget allows, while a CRITICAL request is sent every 50 ms. It
reports the share of the allowed weight used in the saturated windows (target >= 95 %), the 429s
and 418s received (target 0), and the p50/p99 wait of the CRITICAL requests in the queue (target
p99 < 50 ms); then the same with 3 processes sharing one budget through SQLite and through Redis
(target: combined weight never above the limit, 0 429s, CRITICAL p99 < 50 ms), and with the
limiter configured at twice the exchange's real limit (the server bans at the 4th refusal; target:
at most 3 429s and no 418 while the budget adapts). Two baselines run in the same process: no
limiter at all, and ccxt's own enableRateLimit throttle.

A second table times a close-out after a ban-level backoff: 5 429s, then a 418 ban of
``--ban`` seconds, with the budget shared through SQLite or Redis; once the ban is over (the
exchange reachable again), a CRITICAL market order is sent by the same process and by a new one
(which finds the persisted ban in the shared store) — target < 5 s; and the real command: a spot
testnet bot holding a position is SIGKILLed, the IP earns the same 429s and ban, and once the
exchange answers again ``gobot kill --close-positions`` runs with no bot running, timed as a whole
process until the account is flat — target < 5 s.

    .venv/bin/python bench/rate_limiter.py [--limit 600] [--window 2] [--requests 1800] [--ban 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WEIGHT = 2  # spot ticker/24hr with a symbol
REDIS_URL = "redis://127.0.0.1:6379/0"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def drive(url: str, limit: int, window: float, requests: int, rate_factor: float, mode: str, share: str = "none",
                scope: str = "bench", processes: int = 1, configured_factor: float = 1.0) -> dict:
    """Offer ``requests`` ticker calls at ``rate_factor`` x this process's part of the budget (the
    limiter told the budget is ``configured_factor`` x the exchange's)."""
    from gobot_hookspecs import Priority
    from gobot_plugins.adaptive_rate_limit import AdaptiveRateLimitConfig
    from gobot_plugins.adaptive_rate_limit.budgets import open_store
    from gobot_plugins.adaptive_rate_limit.policy import AdaptiveRateLimiter
    from gobot_plugins.binance.client import make_exchange, priority

    config = SimpleNamespace(request_timeout=10, mode="live", testnet=False, api_url=url)
    policy = None
    if mode == "adaptive":
        policy = AdaptiveRateLimiter(AdaptiveRateLimitConfig(share=share, requests_per_hour=None),
                                     store=open_store(share))
    exchange = make_exchange(config, market="spot", policy=policy)
    if mode == "ccxt":
        exchange.enableRateLimit = True
    await exchange.load_markets()
    if policy is not None:
        policy.scope = None  # force set_limits to rebuild under the shared scope
        policy.set_limits([rule.model_copy(update={"limit": int(rule.limit * configured_factor)})
                           if rule.kind == "weight" else rule
                           for rule in policy.limits if rule.window_seconds != 3600], scope)
    statuses: dict[str, int] = {}
    critical_waits: list[float] = []
    done = asyncio.Event()
    interval = 1.0 / (rate_factor * limit / window / WEIGHT / processes)

    async def one(prio) -> None:
        import ccxt

        try:
            with priority(prio):
                await exchange.fetch_ticker("BTC/USDT")
            statuses["200"] = statuses.get("200", 0) + 1
        except ccxt.DDoSProtection as exc:
            key = "418" if " 418 " in str(exc) else "429"
            statuses[key] = statuses.get(key, 0) + 1
        except Exception as exc:  # noqa: BLE001 - counted, the bench goes on
            statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1

    async def criticals() -> None:
        while not done.is_set():
            await asyncio.sleep(0.05)
            await one(Priority.CRITICAL)

    started = time.time()
    side = asyncio.ensure_future(criticals())
    tasks = []
    for i in range(requests):
        tasks.append(asyncio.ensure_future(one(Priority.LOW)))
        await asyncio.sleep(max(0.0, started + (i + 1) * interval - time.time()))
    await asyncio.gather(*tasks)
    done.set()
    await side
    if policy is not None:
        critical_waits = list(policy.stats["waits"][Priority.CRITICAL])
        policy.close()
    await exchange.close()
    return {"statuses": statuses, "critical_waits": critical_waits, "seconds": time.time() - started}


def worker_main(args: argparse.Namespace) -> None:
    if args.close_out:
        result = asyncio.run(close_out(args.url, args.share, args.scope))
    else:
        result = asyncio.run(drive(args.url, args.limit, args.window, args.requests, 3.0, "adaptive", args.share,
                                   args.scope, processes=args.processes))
    Path(args.out).write_text(json.dumps(result))


def paced_exchange(url: str, share: str, scope: str) -> tuple:
    """The limiter on ``share`` and a ccxt client (with the test server's keys) it paces."""
    from gobot_plugins.adaptive_rate_limit import AdaptiveRateLimitConfig
    from gobot_plugins.adaptive_rate_limit.budgets import open_store
    from gobot_plugins.adaptive_rate_limit.policy import AdaptiveRateLimiter
    from gobot_plugins.binance.client import make_exchange
    from tests.servers.binance import API_KEY, API_SECRET

    policy = AdaptiveRateLimiter(AdaptiveRateLimitConfig(share=share, requests_per_hour=None), store=open_store(share))
    config = SimpleNamespace(request_timeout=10, mode="live", testnet=False, api_url=url)
    exchange = make_exchange(config, market="spot", policy=policy, api_key=API_KEY, secret=API_SECRET)
    exchange.gobot_scope = scope
    return policy, exchange


async def critical_order(exchange) -> float:
    """Seconds for a CRITICAL market order (a close) to be paced, sent and answered."""
    from gobot_hookspecs import Priority
    from gobot_plugins.binance.client import priority

    started = time.time()
    with priority(Priority.CRITICAL):
        await exchange.create_order("BTC/USDT", "market", "buy", 0.001)
    return time.time() - started


async def close_out(url: str, share: str, scope: str) -> dict:
    """A new process (``gobot kill --close-positions`` with no bot running): set up, then one CRITICAL close."""
    policy, exchange = paced_exchange(url, share, scope)
    try:
        await exchange.load_markets()
        return {"critical_seconds": await critical_order(exchange)}
    finally:
        policy.close()
        await exchange.close()


async def ban_then_close(server, share: str, scope: str, ban: float, close: bool = True) -> dict:
    """5 429s (another program on this IP fills the window each time), then a 418 ban of ``ban`` s;
    once the ban is over, the same process sends a CRITICAL close (unless ``close`` is False)."""
    import ccxt

    from gobot_hookspecs import ExecutionFailed

    policy, exchange = paced_exchange(server.url, share, scope)
    try:
        await exchange.load_markets()
        for _ in range(5):
            with server.lock:  # the rest of this window is used up elsewhere: our next request gets a 429
                window = server._weight["spot"]
                now = time.time()
                window.start, window.used = now - now % server.window_seconds, server.weight_limit
            try:
                await exchange.fetch_ticker("BTC/USDT")
            except (ccxt.DDoSProtection, ExecutionFailed):
                pass
            # the exchange's window ends
            await asyncio.sleep(server.window_seconds - time.time() % server.window_seconds)
        server.banned_until = time.time() + ban
        try:
            await exchange.fetch_ticker("BTC/USDT")
        except (ccxt.DDoSProtection, ExecutionFailed):
            pass
        await asyncio.sleep(max(0.0, server.banned_until - time.time()))  # the exchange answers again
        seconds = await critical_order(exchange) if close else None
        return {"critical_seconds": seconds, "429": policy.stats["status_429"], "418": policy.stats["status_418"]}
    finally:
        policy.close()
        await exchange.close()


def scenario_close_out(name: str, share: str, limit: int, window: float, ban: float) -> list[dict]:
    """The same process after a ban, and a new one after the persisted ban expired (see the module docstring)."""
    from tests.servers.binance import BinanceTestServer

    scope = f"bench-ban-{os.getpid()}-{time.time_ns()}"
    with BinanceTestServer(window_seconds=window, weight_limit=limit, ban_after_429s=100, ban_seconds=ban) as server, \
            tempfile.TemporaryDirectory() as tmp:
        same = asyncio.run(ban_then_close(server, share, scope, ban))
        out = Path(tmp) / "close-out.json"
        env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        started = time.time()
        proc = subprocess.run([sys.executable, __file__, "--worker", "--close-out", "--url", server.url, "--share",
                               share, "--scope", scope, "--out", str(out)], env=env, timeout=600)
        whole = time.time() - started
        if proc.returncode != 0:
            raise SystemExit(f"the close-out process failed ({share})")
        new = json.loads(out.read_text())
        statuses = dict(server.status_counts)
    return [
        {"scenario": f"{name}: same process", "seconds": same["critical_seconds"], "whole": None,
         "before": f"{same['429']} x 429, {same['418']} x 418"},
        {"scenario": f"{name}: next process", "seconds": new["critical_seconds"], "whole": whole,
         "before": f"ban persisted; server saw {statuses.get(429, 0)} x 429, {statuses.get(418, 0)} x 418"},
    ]


def scenario_cli_close_out(name: str, share_kind: str, ban: float) -> dict:
    """The real command: a spot testnet bot holds a position and is SIGKILLed; the IP then earns
    5 429s and a ``ban`` s ban, recorded in the shared store; once the exchange answers again,
    ``gobot kill --close-positions`` runs with no bot running. Timed as a whole process."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_exchange_lifecycle import GOBOT, Lifecycle
    from tests.servers.binance import BinanceTestServer

    with BinanceTestServer(ban_after_429s=100, ban_seconds=ban) as server, tempfile.TemporaryDirectory() as tmp:
        share = f"sqlite:{Path(tmp) / 'budgets.sqlite'}" if share_kind == "sqlite" else REDIS_URL
        life = Lifecycle(Path(tmp), server, "spot", share=share)
        life.step({"BTC/USDT": "LONG"})  # a position, its OCO; the bot is SIGKILLed
        before = asyncio.run(ban_then_close(server, share, "binance:spot:testnet", ban, close=False))
        started = time.time()
        done = subprocess.run([GOBOT, "kill", "--close-positions", "--config", str(life.config), "--reason", "bench"],
                              env=life.env, cwd=life.folder, capture_output=True, text=True, timeout=600)
        whole = time.time() - started
        flat = float(server.balance("BTC")) < 1e-5 and "Flat after" in done.stdout
    return {"scenario": f"{name}: gobot kill --close-positions", "seconds": whole, "whole": whole, "flat": flat,
            "before": f"{before['429']} x 429, {before['418']} x 418; " + ("flat" if flat
                                                                           else f"NOT FLAT: {done.stdout[-200:]}")}


def steady_share(windows: list[tuple[float, int]], limit: int) -> tuple[float, float]:
    """Mean and max of used/limit over the windows of the run, leaving out the partial first and last."""
    inner = [used for _, used in windows[1:-1]] or [used for _, used in windows]
    return statistics.mean(inner) / limit, max(used for _, used in windows) / limit


def scenario_in_process(name: str, mode: str, limit: int, window: float, requests: int, configured_factor: float = 1.0,
                        ban_after: int = 3) -> dict:
    from tests.servers.binance import BinanceTestServer

    with BinanceTestServer(window_seconds=window, weight_limit=limit, ban_after_429s=ban_after,
                           ban_seconds=1) as server:
        result = asyncio.run(drive(server.url, limit, window, requests, 3.0, mode, configured_factor=configured_factor))
        mean, peak = steady_share(server.windows(), limit)
        return row(name, result["statuses"], server.status_counts, mean, peak, result["critical_waits"],
                   result["seconds"])


def scenario_processes(name: str, share: str, limit: int, window: float, requests: int, processes: int = 3) -> dict:
    from tests.servers.binance import BinanceTestServer

    scope = f"bench-{os.getpid()}-{time.time_ns()}"
    with BinanceTestServer(window_seconds=window, weight_limit=limit,
                           ban_after_429s=3, ban_seconds=1) as server, tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / f"worker-{i}.json" for i in range(processes)]
        env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", "--url", server.url, "--limit", str(limit),
                                   "--window", str(window),
                                   "--requests", str(requests // processes), "--share", share, "--scope", scope,
                                   "--processes", str(processes), "--out", str(out)], env=env) for out in outs]
        for proc in procs:
            if proc.wait(timeout=600) != 0:
                raise SystemExit(f"a bench worker failed ({share})")
        results = [json.loads(out.read_text()) for out in outs]
        statuses: dict[str, int] = {}
        for result in results:
            for key, count in result["statuses"].items():
                statuses[key] = statuses.get(key, 0) + count
        waits = [w for result in results for w in result["critical_waits"]]
        mean, peak = steady_share(server.windows(), limit)
        return row(name, statuses, server.status_counts, mean, peak, waits, max(r["seconds"] for r in results))


def row(name, client_statuses, server_statuses, mean, peak, waits, seconds) -> dict:
    return {
        "scenario": name,
        "requests": sum(client_statuses.values()),
        "share": mean,
        "peak": peak,
        "429": server_statuses.get(429, 0),
        "418": server_statuses.get(418, 0),
        "p50": percentile(waits, 50) * 1000,
        "p99": percentile(waits, 99) * 1000,
        "seconds": seconds,
    }


def redis_reachable() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except Exception:  # noqa: BLE001
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=600, help="server weight budget per window")
    parser.add_argument("--window", type=float, default=2.0, help="the server's window, seconds (Binance: 60)")
    parser.add_argument("--requests", type=int, default=1800, help="ticker requests per scenario")
    parser.add_argument("--ban", type=float, default=2.0, help="the ban (418) before the close-out, seconds")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--close-out", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--url", "--share", "--scope", "--out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return

    from rich.console import Console
    from rich.table import Table

    rows = [
        scenario_in_process("no limiter (baseline)", "none", args.limit, args.window, args.requests // 2),
        scenario_in_process("ccxt enableRateLimit (baseline)", "ccxt", args.limit, args.window, args.requests // 4),
        scenario_in_process("adaptive, 1 process", "adaptive", args.limit, args.window, args.requests),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(scenario_processes("adaptive, 3 processes, SQLite", f"sqlite:{Path(tmp) / 'budget.sqlite'}",
                                       args.limit, args.window, args.requests))
    redis = redis_reachable()
    if redis:
        rows.append(scenario_processes("adaptive, 3 processes, Redis", REDIS_URL, args.limit, args.window,
                                       args.requests))
    else:
        print("Redis at 127.0.0.1:6379 is not reachable: its rows are left out")
    # The server bans at the 4th refusal: "at most 3 429s and no 418" means it never got there.
    above = scenario_in_process("adaptive, configured 2x the limit", "adaptive", args.limit, args.window, args.requests,
                                configured_factor=2.0, ban_after=4)
    rows.append(above)

    table = Table(title=f"Rate limiter at 3x the allowed rate: {args.limit} weight per {args.window:g} s window, "
                        f"ticker weight {WEIGHT}")
    for column in ("scenario", "requests", "used/allowed", "peak/limit", "429s", "418s", "CRIT p50 ms",
                   "CRIT p99 ms", "seconds"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for r in rows:
        table.add_row(r["scenario"], str(r["requests"]), f"{r['share']:.1%}", f"{r['peak']:.1%}", str(r["429"]),
                      str(r["418"]), f"{r['p50']:.1f}", f"{r['p99']:.1f}", f"{r['seconds']:.1f}")
    console = Console(width=130)
    console.print(table)

    closes = []
    with tempfile.TemporaryDirectory() as tmp:
        closes += scenario_close_out("SQLite", f"sqlite:{Path(tmp) / 'budget.sqlite'}", args.limit, args.window,
                                     args.ban)
    closes.append(scenario_cli_close_out("SQLite", "sqlite", args.ban))
    if redis:
        closes += scenario_close_out("Redis", REDIS_URL, args.limit, args.window, args.ban)
        closes.append(scenario_cli_close_out("Redis", "redis", args.ban))
    table = Table(title=f"Close-out after a ban-level backoff (5 x 429, then a {args.ban:g} s ban), once the exchange "
                        "answers again: a CRITICAL market order, and the real gobot kill --close-positions "
                        "(whole process)")
    for column in ("scenario", "before it", "CRITICAL order ms", "whole process s"):
        table.add_column(column, justify="left" if column in ("scenario", "before it") else "right")
    for r in closes:
        table.add_row(r["scenario"], r["before"], f"{r['seconds'] * 1000:.1f}",
                      "" if r["whole"] is None else f"{r['whole']:.1f}")
    console.print(table)

    adaptive = rows[2]
    ccxt_row = rows[1]
    console.print(f"adaptive vs ccxt's throttle: {adaptive['share'] / ccxt_row['share']:.2f}x the weight used; "
                  f"vs no limiter: {rows[0]['429']} -> {adaptive['429']} 429s, "
                  f"{rows[0]['418']} -> {adaptive['418']} 418s")
    shared = [r for r in rows if "processes" in r["scenario"]]
    targets = [
        ("share used >= 95 % (1 process)", adaptive["share"] >= 0.95),
        ("0 429s (1 process)", adaptive["429"] == 0),
        ("CRITICAL p99 < 50 ms (1 process)", adaptive["p99"] < 50),
    ] + [(f"combined weight <= limit, 0 429s ({r['scenario']})", r["peak"] <= 1.0 and r["429"] == 0) for r in shared] \
      + [(f"CRITICAL p99 < 50 ms ({r['scenario']})", r["p99"] < 50) for r in shared] \
      + [(f"at most 3 429s, no 418 ({above['scenario']})", above["429"] <= 3 and above["418"] == 0)] \
      + [(f"close-out < 5 s ({r['scenario']})", r["seconds"] < 5 and r.get("flat", True)) for r in closes]
    for text, ok in targets:
        console.print(f"{'OK  ' if ok else 'MISS'} {text}")


if __name__ == "__main__":
    main()
