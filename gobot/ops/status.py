"""What the operator's view shows: the core's own counters, the plugins' statuses (``gobot_status``),
health, the JSON documents of the API and the Prometheus exposition. Pure Python and no web
library: ``gobot/ops/server.py`` serves these over HTTP.
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import TYPE_CHECKING, Any, Callable

from gobot.ops.chart import story_id, traded_symbols
from gobot.run.counters import CoreCounters
from gobot.run.plugin_statuses import breaker_state, breaker_status
from gobot.run.summary import progress as progress_document
from gobot.run.summary import run_metrics
from gobot.run.versions import strategy_status
from gobot_hookspecs import PluginStatus
from gobot_hookspecs.money import decimals

if TYPE_CHECKING:
    from gobot.run.bot import Bot
    from gobot.run.runner import Runner

log = logging.getLogger(__name__)

STALL_MINIMUM_SECONDS = 60.0


def stall_after(bot: Bot, configured: float | None) -> float:
    """Seconds without a completed cycle after which the loop counts as stalled."""
    if configured:
        return configured
    return max(3 * bot.settings.orchestrator.loop_interval, STALL_MINIMUM_SECONDS)


def health(bot: Bot, counters: CoreCounters, statuses: dict[str, PluginStatus | str], stall_seconds: float | None,
           now: float | None = None) -> dict[str, Any]:
    """Liveness, last cycle age, exchange reachability, breaker state and every plugin's verdict.

    ``healthy`` is False when the loop stalled (no cycle completed for ``stall_after``), the
    circuit breaker is tripped, the exchange is reported unreachable, or a plugin says unhealthy.
    """
    now = time.time() if now is None else now
    since = counters.last_cycle_at or counters.started
    age = now - since
    limit = stall_after(bot, stall_seconds)
    checks: dict[str, dict[str, Any]] = {}
    checks["loop"] = {
        "ok": age <= limit,
        "last_cycle_age_seconds": round(age, 3),
        "stall_after_seconds": limit,
        "detail": (f"last cycle completed {age:.1f} s ago" if counters.last_cycle_at
                   else f"no cycle completed yet ({age:.1f} s)")
        + ("" if age <= limit else f": stalled (more than {limit:g} s)"),
    }
    checks["exchange"] = exchange_check(bot, statuses)
    breaker = breaker_status(statuses)
    tripped = breaker is not None and breaker.healthy is False
    state = breaker_state(statuses)
    checks["circuit_breaker"] = {
        "ok": not tripped,
        "state": state,
        "detail": f"circuit breaker {state}: no new positions" if tripped
        else (f"circuit breaker {state}" if breaker is not None else "no circuit breaker installed"),
    }
    for plugin, status in statuses.items():
        if status is breaker:  # its verdict is the circuit_breaker check above
            continue
        if isinstance(status, str):
            checks[f"plugin:{plugin}"] = {"ok": None, "detail": f"status unknown: {status}"}
        elif status.healthy is not None or status.reason:
            checks[f"plugin:{plugin}"] = {"ok": status.healthy, "state": status.state, "detail": status.reason}
    healthy = all(check["ok"] is not False for check in checks.values())
    problems = [f"{name}: {check['detail']}" for name, check in checks.items() if check["ok"] is False]
    return {
        "healthy": healthy,
        "status": "ok" if healthy else "unhealthy",
        "problems": problems,
        "alive": True,
        "run_id": bot.state.run_id,
        "iteration": bot.state.iteration,
        "last_cycle_age_seconds": round(age, 3),
        "exchange_reachable": checks["exchange"]["ok"],
        "breaker": checks["circuit_breaker"]["state"],
        "paused": bot.store.paused,
        "kill_switch": bot.kill_switch_on(),
        "checks": checks,
    }


def exchange_check(bot: Bot, statuses: dict[str, PluginStatus | str]) -> dict[str, Any]:
    """Reachability as an exchange plugin reports it (``data["exchange_reachable"]``), else whether
    the last market scan covered every configured symbol (None before the first scan)."""
    for plugin, status in statuses.items():
        if isinstance(status, PluginStatus) and isinstance(status.data.get("exchange_reachable"), bool):
            reachable = status.data["exchange_reachable"]
            return {"ok": reachable, "source": plugin,
                    "detail": status.reason or ("reachable" if reachable else "unreachable")}
    if not bot.state.cycles:
        return {"ok": None, "source": "market scan", "detail": "no market scan yet"}
    covered = {snap.symbol for snap in bot.ctx.snapshots}
    missing = [s for s in bot.settings.trading.symbols if s not in covered]
    sources = sorted({snap.source for snap in bot.ctx.snapshots})
    if missing:
        return {"ok": False, "source": "market scan",
                "detail": f"no market data for {', '.join(missing)} in the last scan"}
    return {"ok": True, "source": "market scan", "detail": f"last scan covered every symbol ({', '.join(sources)})"}


def status_document(bot: Bot, runner: Runner | None, counters: CoreCounters, statuses: dict[str, PluginStatus | str],
                    health_doc: dict[str, Any], controls: bool) -> dict[str, Any]:
    """``GET /api/status``: what the bot is, holds and did last, and who is plugged in."""
    state = bot.state
    progress = progress_document(bot, health_doc["breaker"])
    last = state.cycles[-1] if state.cycles else None
    policy = bot.ctx.rate_limiter
    return {
        "run_id": state.run_id,
        "mode": bot.environment,
        "running": runner is not None and runner.outcome is None,
        "outcome": runner.outcome.reason if runner is not None and runner.outcome else None,
        "clock": bot.clock.now().isoformat(),
        "simulated_clock": bool(getattr(bot.clock, "simulated", False)),
        "loop_interval": bot.settings.orchestrator.loop_interval,
        "iteration": state.iteration,
        "max_iterations": progress["max_iterations"],
        "currency": progress["currency"],
        "currency_decimals": decimals(progress["currency"]),  # the dashboard shows amounts as money() does
        "equity": progress["equity"],
        "cash": round(state.cash, max(4, decimals(progress["currency"]))),
        "pnl": progress["pnl"],
        "daily_pnl": progress["daily_pnl"],
        "initial_capital": state.initial_capital,
        "max_drawdown_pct": round(state.max_drawdown * 100, 4),
        "open_positions": [
            {**p.model_dump(mode="json"), "id": story_id(s, p.client_order_id, p.opened_at),
             "price": state.last_prices.get(s),
             "unrealised_pnl": round(p.unrealised_pnl(state.last_prices.get(s, p.entry_price)) * bot.portfolio.rate(s),
                                     max(4, decimals(progress["currency"])))}
            for s, p in state.positions.items()
        ],
        "closed_trades": len(state.trades),
        "symbols": traded_symbols(bot),  # the chart's symbol selector
        "last_cycle": last.model_dump(mode="json") if last else None,
        "paused": bot.store.paused,
        "kill_switch": bot.kill_switch_on(),
        "finished": state.finished,
        "finish_reason": state.finish_reason,
        "breaker": health_doc["breaker"],
        "strategies": strategy_status(state),  # each active version's judgement, and what a failure did
        "rate_limiter": {
            "policy": type(policy).__name__ if policy is not None else None,
            "samples": [s.model_dump() | {"plugin": p} for p, st in statuses.items() if isinstance(st, PluginStatus)
                        for s in st.metrics if s.name.startswith("gobot_rate_limit_")],
        },
        "plugins": [info.as_dict() for info in sorted(bot.plugin_set.plugins.values(), key=lambda i: i.name)],
        "plugin_status": {p: (st.model_dump(mode="json") if isinstance(st, PluginStatus) else {"error": st})
                          for p, st in statuses.items()},
        "health": health_doc,
        "controls": controls,
        "counters": counters.as_dict(),
    }


def trades_document(bot: Bot, limit: int) -> dict[str, Any]:
    """The newest ``limit`` closed trades, newest first, each with its ``id`` on the chart (``/api/chart``)."""
    trades = bot.state.trades
    return {"total": len(trades),
            "trades": [{**t.model_dump(mode="json"), "id": story_id(t.symbol, t.client_order_id, t.opened_at)}
                       for t in trades[-limit:]][::-1]}


def cycles_document(bot: Bot, limit: int) -> dict[str, Any]:
    cycles = bot.state.cycles
    return {"total": bot.state.iteration, "cycles": [c.model_dump(mode="json") for c in cycles[-limit:]][::-1]}


def metrics_document(bot: Bot, counters: CoreCounters, points: int = 500) -> dict[str, Any]:
    """``GET /api/metrics``: the run's performance, the core's counters and the equity curve."""
    metrics = run_metrics(bot.state, bot.portfolio)
    cycles = bot.state.cycles
    step = max(1, math.ceil(len(cycles) / points))
    digits = max(4, decimals(bot.ctx.currency))
    curve = [[c.time.isoformat(), round(c.equity, digits)] for c in cycles[::step]]
    if cycles and (len(cycles) - 1) % step:
        curve.append([cycles[-1].time.isoformat(), round(cycles[-1].equity, digits)])
    return {"run": metrics, "counters": counters.as_dict(), "equity_curve": curve}


# -- Prometheus text exposition (format 0.0.4) ------------------------------------------------


class Exposition:
    """Collects metric families and renders them; one HELP/TYPE header per family."""

    def __init__(self) -> None:
        self.families: dict[str, tuple[str, str, list[tuple[dict[str, str], float]]]] = {}

    def add(self, name: str, value: float, labels: dict[str, str] | None = None, *, kind: str = "gauge",
            help: str = "") -> None:
        family = name
        if kind == "summary":
            family = name.removesuffix("_sum").removesuffix("_count")
        elif kind == "counter" and not name.endswith("_total"):
            raise ValueError(f"counter {name} must end in _total")
        _, _, samples = self.families.setdefault(family, (kind, help, []))
        samples.append(({**(labels or {}), "__name__": name}, float(value)))

    def render(self) -> str:
        lines = []
        for family, (kind, help_text, samples) in self.families.items():
            if help_text:
                lines.append(f"# HELP {family} {_escape_help(help_text)}")
            lines.append(f"# TYPE {family} {'counter' if kind == 'counter' else kind}")
            for labels, value in samples:
                name = labels.pop("__name__")
                text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items()))
                lines.append(f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}")
        return "\n".join(lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def prometheus_text(bot: Bot, counters: CoreCounters, statuses: dict[str, PluginStatus | str],
                    health_doc: dict[str, Any], extra: Callable[[Exposition], None] | None = None) -> str:
    """``GET /metrics``: the core's gauges and counters, ``extra``'s (the server's own), then every plugin's samples."""
    state = bot.state
    out = Exposition()
    out.add("gobot_up", 1, help="1 while the bot's process answers")
    out.add("gobot_healthy", 1 if health_doc["healthy"] else 0, help="1 when GET /health is healthy (HTTP 200)")
    out.add("gobot_info", 1, {"run_id": state.run_id, "mode": bot.environment},
            help="the run and its mode (paper, live, testnet)")
    out.add("gobot_cycles_total", counters.cycles, kind="counter", help="cycles completed by this process")
    out.add("gobot_iteration", state.iteration, help="cycles completed in the current run")
    out.add("gobot_cycle_duration_seconds_sum", counters.cycle_seconds_sum, kind="summary",
            help="wall time of a whole cycle, seconds")
    out.add("gobot_cycle_duration_seconds_count", counters.cycles, kind="summary")
    for phase in counters.phase_seconds_sum:
        out.add("gobot_phase_duration_seconds_sum", counters.phase_seconds_sum[phase], {"phase": phase}, kind="summary",
                help="wall time of each cycle phase, seconds")
        out.add("gobot_phase_duration_seconds_count", counters.phase_count[phase], {"phase": phase}, kind="summary")
    last = state.cycles[-1] if state.cycles else None
    for phase, ms in (last.phase_ms.items() if last else ()):
        out.add("gobot_last_cycle_phase_seconds", ms / 1000, {"phase": phase},
                help="the last cycle's phase timings, seconds")
    out.add("gobot_last_cycle_age_seconds", health_doc["last_cycle_age_seconds"],
            help="wall time since the last completed cycle (or the start), seconds")
    for status, count in sorted(counters.orders.items()):
        out.add("gobot_orders_total", count, {"status": status}, kind="counter",
                help="orders by status (filled, open, rejected, proposed, ...)")
    for (plugin, reason), count in sorted(counters.vetoes.items()):
        out.add("gobot_risk_vetoes_total", count, {"plugin": plugin, "reason": reason}, kind="counter",
                help="risk vetoes by plugin and reason (numbers in the reason shown as N)")
    for channel in sorted(set(counters.alerts_sent) | set(counters.alerts_failed)):
        out.add("gobot_alerts_sent_total", counters.alerts_sent.get(channel, 0), {"channel": channel},
                kind="counter", help="alerts handed to a channel without error")
    for channel in sorted(set(counters.alerts_sent) | set(counters.alerts_failed)):
        out.add("gobot_alerts_failed_total", counters.alerts_failed.get(channel, 0), {"channel": channel},
                kind="counter", help="alerts whose channel raised")
    out.add("gobot_equity", bot.portfolio.equity(),
            help="cash plus open positions at the latest prices, portfolio currency")
    out.add("gobot_cash", state.cash, help="cash, portfolio currency")
    out.add("gobot_portfolio_currency_info", 1, {"currency": bot.ctx.currency},
            help="the currency gobot_equity, gobot_cash and gobot_exposure are in")
    out.add("gobot_open_positions", len(state.positions), help="open positions")
    out.add("gobot_exposure", bot.portfolio.exposure(), help="notional of open positions, portfolio currency")
    out.add("gobot_closed_trades", len(state.trades), help="closed trades in the current run")
    out.add("gobot_paused", 1 if health_doc["paused"] else 0, help="1 while paused: no new positions")
    out.add("gobot_kill_switch", 1 if health_doc["kill_switch"] else 0, help="1 while the kill switch is engaged")
    breaker = health_doc["breaker"]
    out.add("gobot_circuit_breaker_open", 0 if health_doc["checks"]["circuit_breaker"]["ok"] else 1,
            help="1 while the circuit breaker stops trading (OPEN or a hard stop)")
    out.add("gobot_circuit_breaker_state", 1, {"state": breaker}, help="the circuit breaker's state, as a label")
    if extra is not None:
        extra(out)
    for plugin, status in statuses.items():
        if isinstance(status, str):
            continue
        for sample in status.metrics:
            labels = {k: v for k, v in sample.labels.items() if _LABEL_NAME.match(k) and k != "plugin"}
            kind = sample.type if not (sample.type == "counter" and not sample.name.endswith("_total")) else "gauge"
            existing = out.families.get(sample.name)
            if existing is not None and existing[0] != kind:
                log.warning("plugin '%s': metric %s is already a %s; sample dropped", plugin, sample.name, existing[0])
                continue
            out.add(sample.name, sample.value, {**labels, "plugin": plugin}, kind=kind, help=sample.help)
    return out.render()
