"""Alert delivery, shared by the running bot, ``gobot alerts test`` and ``gobot watchdog``.

- ``deliver(hooks, ctx, alert)``: redact secrets, then hand the alert to every channel
  (``gobot_send_alert``), each in isolation. ``drain`` and ``AlertChannels`` both use it.
- ``drain(bot)``: the running bot's one way of delivering what waits on ``ctx`` (execution errors,
  then alerts), called at the points its docstring lists.
- ``AlertChannels``: the enabled alert channels without a running bot. ``gobot_startup`` is not
  called; ``close()`` calls ``gobot_shutdown``, in which channels deliver what they queued.
- ``sample_alerts(now)``: one realistic alert of every kind in ``gobot_hookspecs.ALERT_KINDS``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel

from gobot.config import Settings
from gobot.host.hook_caller import HookCaller, HookFailure
from gobot.host.plugin_manager import PluginInfo, PluginSet
from gobot.host.rate_limit import NoWaitPolicy
from gobot.run import RunningBot
from gobot.secrets import redact
from gobot_hookspecs import Alert, ExecutionError, Severity

log = logging.getLogger(__name__)

SEND_HOOK = "gobot_send_alert"


def redacted(alert: Alert) -> Alert:
    """The alert with every secret value from the environment masked (title, text and data)."""
    raw = alert.model_dump_json()
    clean = redact(raw)
    return alert if clean == raw else Alert.model_validate_json(clean)


async def deliver(hooks: HookCaller, ctx: Any, alert: Alert) -> list[HookFailure]:
    """Hand ``alert`` (redacted) to every enabled channel, each in isolation; return the failures."""
    return await hooks.notify(SEND_HOOK, ctx=ctx, alert=redacted(alert))


async def drain(bot: RunningBot) -> None:
    """Deliver what waits on ``bot.ctx``, always in this order: every execution error reported outside
    an order (``ctx.report_execution_error``; see ``execution_error``: the circuit breaker counts it),
    every drift measurement (``ctx.record_drift``, to ``gobot_on_drift``), then every alert in the order
    it was raised, each to every channel in isolation, audited. Close requests (``ctx.close_positions``)
    are not drained: the validate phase turns them into CRITICAL intents.

    The bot drains at these points of its life, and only there (``Bot.drain``):

    1. start-up, after ``run_started``;
    2. scan, after the fills are synced and before ``gobot_on_scan_end``: a failure seen while
       syncing (an exchange ban) reaches the breaker before it ticks and before any risk check;
    3. execute, before the first order: what ideas, adjust and validate raised (vetoes, failures
       reported meanwhile) goes out first, and the breaker has seen every failure;
    4. execute, after the last order: order failures, opened and closed trades;
    5. the cycle's end, after ``gobot_on_cycle_end`` (the state is saved by then);
    6. shutdown, and the end of an operator session (``Bot.close_session``).
    """
    ctx, channels = bot.ctx, None  # the channels are looked up once there is an alert (not at every drain)
    while ctx.pending_execution_errors:
        await execution_error(bot, ctx.pending_execution_errors.pop(0))
    while ctx.pending_drift:  # ctx.record_drift: a trade measured against its paper twin
        await bot.hooks.notify("gobot_on_drift", ctx=ctx, measurement=ctx.pending_drift.pop(0))
    while ctx.pending_alerts:
        alert = ctx.pending_alerts.pop(0)
        channels = bot.plugin_set.implementers(SEND_HOOK) if channels is None else channels
        bot.audit("alert", alert=alert)
        failed = [f.plugin for f in await deliver(bot.hooks, ctx, alert)]  # the same code as `gobot alerts test`
        bot.counters.alert_delivered(channels, failed)
        if len(failed) >= len(channels):  # no channel delivered it
            bot.audit("alert_undelivered", kind=alert.kind, title=alert.title, failed=failed)


async def execution_error(bot: RunningBot, error: ExecutionError) -> None:
    """Audit it, tell every plugin (the circuit breaker counts these) and raise a CRITICAL alert."""
    bot.audit("execution_error", error=error)
    await bot.hooks.notify("gobot_on_execution_error", ctx=bot.ctx, error=error)
    title = f"Order failed: {error.symbol}" if error.symbol else f"Execution error ({error.kind})"
    named = not error.plugin or f"'{error.plugin}'" in error.message
    text = error.message if named else f"plugin '{error.plugin}': {error.message}"
    bot.ctx.alert(Alert(kind="execution_error", title=title, text=text, severity=Severity.CRITICAL,
                        data={"kind": error.kind, "retryable": error.retryable}))


class DeliveryContext:
    """``ctx`` for alert channels without a running bot: ``config``, ``plugin_config``, ``now``,
    ``audit`` (kept in memory, and logged) and a ``plugin_state`` that is not persisted."""

    live = False
    paused = False
    iteration = 0

    def __init__(self, settings: Settings, plugin_configs: dict[str, BaseModel], run_id: str = ""):
        self.config = settings
        self.currency = settings.trading.portfolio_currency
        self.run_id = run_id
        self.snapshots: list = []
        self.rate_limiter = NoWaitPolicy()
        self.audit_events: list[dict[str, Any]] = []
        self._plugin_configs = plugin_configs
        self._plugin_state: dict[str, dict[str, Any]] = {}

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def plugin_config(self, name: str) -> BaseModel | None:
        return self._plugin_configs.get(name)

    def plugin_state(self, name: str) -> dict[str, Any]:
        return self._plugin_state.setdefault(name, {})

    def audit(self, event: str, **data: Any) -> None:
        self.audit_events.append({"event": event, **data})
        log.info("%s", redact(f"{event}: {data}"))

    def alert(self, alert: Alert) -> None:
        log.warning("alert raised outside a running bot, not delivered: %s", redact(alert.title))

    def positions(self) -> dict:
        return {}

    def closed_trades(self) -> list:
        return []

    def _no_bot(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("not available without a running bot (gobot alerts test, gobot watchdog)")

    pause = unpause = kill = close_positions = _no_bot


class AlertChannels:
    """The enabled alert channels of a configuration, usable without a running bot.

    Built from the same ``[plugins]`` choices as the bot; every plugin that does not implement
    ``gobot_send_alert`` is unregistered, so only the channels' sections are validated and only
    the channels' ``gobot_shutdown`` runs.
    """

    def __init__(self, settings: Settings, plugin_set: PluginSet):
        from gobot.config import load_plugin_configs

        self.failed: list[PluginInfo] = plugin_set.failures
        self.names = plugin_set.implementers(SEND_HOOK)
        pm = plugin_set.pm
        for name, plugin in pm.list_name_plugin():
            if plugin is not None and name not in self.names:
                pm.unregister(name=name)
        self.hooks = HookCaller(pm)
        self.ctx = DeliveryContext(settings, load_plugin_configs(settings, self.hooks))
        self.handed: list[tuple[Alert, list[HookFailure]]] = []

    async def send(self, alert: Alert) -> list[HookFailure]:
        if alert.time is None:
            alert = alert.model_copy(update={"time": self.ctx.now()})
        failures = await deliver(self.hooks, self.ctx, alert)
        self.handed.append((alert, failures))
        return failures

    async def close(self) -> list[HookFailure]:
        """``gobot_shutdown`` for every channel: each delivers what it queued, within its own bound."""
        return await self.hooks.notify("gobot_shutdown", ctx=self.ctx)

    def receipts(self) -> list[dict[str, Any]]:
        """The ``alert_delivery`` events the channels reported, in order."""
        return [event for event in self.ctx.audit_events if event["event"] == "alert_delivery"]

    def report(self) -> dict[str, dict[str, Any]]:
        """Per channel: alerts delivered, not delivered (with why), and those it did not report on."""
        out: dict[str, dict[str, Any]] = {
            name: {"handed": len(self.handed), "delivered": [], "failed": [], "unreported": []} for name in self.names
        }
        for alert, failures in self.handed:
            for failure in failures:
                out[failure.plugin]["failed"].append({"kind": alert.kind,
                                                      "detail": f"{type(failure.error).__name__}: {failure.error}"})
        for receipt in self.receipts():
            row = out.setdefault(receipt.get("channel", "?"),
                                 {"handed": 0, "delivered": [], "failed": [], "unreported": []})
            key = "delivered" if receipt.get("delivered") else "failed"
            row[key].append({"kind": receipt.get("kind", ""), "detail": str(receipt.get("detail", ""))})
        for name, row in out.items():
            seen = {item["kind"] for item in row["delivered"] + row["failed"]}
            row["unreported"] = [alert.kind for alert, _ in self.handed
                                 if alert.kind not in seen and name in self.names]
        return out


def sample_alerts(now: datetime | None = None) -> list[Alert]:
    """One alert of every kind in ``ALERT_KINDS``, shaped like the real ones (``gobot alerts test``)."""
    now = now or datetime.now(timezone.utc)
    curve = [[(now - timedelta(hours=24 - h)).isoformat(), round(100 + 1.5 * h - 0.08 * h * h, 2)] for h in range(25)]
    samples = [
        Alert(kind="run_started", title="gobot paper: run r20260102-030405-abc123 started",
              data={"plugins": ["replay", "sma_rsi", "risk_limits", "paper", "console"]}),
        Alert(kind="run_stopped", title="gobot stopped: max_iterations (50) reached"),
        Alert(kind="validation_skipped", title="LIVE without a passing readiness report (--skip-validation)",
              severity=Severity.CRITICAL, text="failing: paper_days (3 < 14), max_drawdown (12.0 % > 10 %)"),
        Alert(kind="run_completed", title="Run complete: daily profit target reached (+51.20 USDT >= 50)"),
        Alert(kind="daily_summary", title="Daily summary 2026-01-02: P&L +6.10 USDT (+6.1 %)",
              text="4 trades closed (3 won, 75 %), realised +5.80 USDT; equity 106.10 USDT; 2 risk vetoes",
              data={"day": "2026-01-02", "currency": "USDT", "pnl": 6.1, "equity": 106.1, "equity_curve": curve}),
        Alert(kind="trade_opened", title="Opened long BTC/USDT @ 50012.5", text="amount 0.0002, fee 0.01 USDT",
              data={"symbol": "BTC/USDT", "price": 50012.5, "amount": 0.0002}),
        Alert(kind="trade_closed", title="Closed long BTC/USDT: P&L +0.19 USDT", text="50012.5 -> 51000 (take_profit)",
              data={"symbol": "BTC/USDT", "pnl": 0.19, "exit_reason": "take_profit"}),
        Alert(kind="order_proposed", title="Proposed buy ETH/USDT", text="10.00 USDT (auto_execute = false)"),
        Alert(kind="risk_veto", title="Risk veto: buy ETH/USDT", severity=Severity.WARNING, text="risk_limits: "
                   "confidence 0.61 < 0.75; risk_limits: exposure 35.00 > 30.00 USDT", data={"symbol": "ETH/USDT"}),
        Alert(kind="loss_limit", title="Daily loss limit reached: no new trades until 00:00",
              severity=Severity.CRITICAL, text="loss 21.40 USDT >= daily_loss_limit_usd 20", data={"period": "daily"}),
        Alert(kind="execution_error", title="Order failed: BTC/USDT", severity=Severity.CRITICAL,
              text="plugin 'binance': network: timed out after 10 s (will retry with the same client order id)",
              data={"kind": "network", "retryable": True}),
        Alert(kind="order_not_placed", title="Order gb7b1fe345920d5b639c0288ae for BTC/USDT was never placed",
              severity=Severity.WARNING, text="after an unconfirmed send, the exchange has no order with this id"),
        Alert(kind="unprotected_position", title="Position BTC/USDT has no exchange stop", severity=Severity.CRITICAL,
              text="stop-loss/take-profit for BTC/USDT could not be placed: -2010 insufficient balance"),
        Alert(kind="reconciliation", title="BTC/USDT: the exchange's book and the bot's differ",
              severity=Severity.WARNING, text="0.002 closed on the exchange by order 8389765 (liquidation) at 47210, "
                   "fee 0.0472: booked"),
        Alert(kind="rate_limited", title="Exchange rate limit hit (429)", severity=Severity.WARNING,
              text="every request waits the exchange's Retry-After (7.0 s); the weight/60s budget comes down from "
                   "6000 to 5200 (the exchange counted 5200) and grows back after 3 windows without a 429",
              data={"pause_seconds": 7.0}),
        Alert(kind="rate_limit_store", title="Shared rate-limit budget unreachable: local budget",
              severity=Severity.CRITICAL, text="the shared rate-limit store failed (ConnectionError); this bot now "
                   "keeps to 1/3 of each budget on its own, and shares again once the store answers"),
        Alert(kind="exchange_ban", title="Exchange IP ban (418): trading halted", severity=Severity.CRITICAL,
              text="binance: banned for 600 s (until 04:10 UTC); no requests until then", data={"ban_seconds": 600}),
        Alert(kind="circuit_breaker", title="Circuit breaker OPEN: 3 losing trades in a row",
              severity=Severity.CRITICAL, text="No new positions for 60 min (CLOSED -> OPEN)",
              data={"from": "CLOSED", "to": "OPEN"}),
        Alert(kind="kill_switch", title="Kill switch: no new orders, run stopped", severity=Severity.CRITICAL),
        Alert(kind="close_out_complete", title="Close-out complete: no open positions", severity=Severity.WARNING),
        Alert(kind="close_out_incomplete", title="Close-out incomplete after 20 cycles", severity=Severity.CRITICAL,
              text="1 positions still open: check the exchange"),
        Alert(kind="risk_reset", title="Risk state reset: operator checked the exchange", severity=Severity.WARNING,
              text="circuit_breaker: OPEN -> CLOSED"),
        Alert(kind="disk_full", title="Disk full: cannot write state.json — no new positions",
              severity=Severity.CRITICAL, text="No space left on device (ENOSPC) in /var/lib/gobot/state. Open "
                   "positions stay protected (exits and stops go on); the state is kept in memory and saved again at "
                   "every cycle's end; new positions resume once a save succeeds. Free space there.",
              data={"file": "/var/lib/gobot/state/state.json", "error": "No space left on device (ENOSPC)",
                    "since_cycle": 35}),
        Alert(kind="disk_recovered", title="Disk writable again: state saved, new positions allowed",
              severity=Severity.WARNING, text="4 cycle(s) ended without a save, from cycle 35 on (No space left "
                   "on device (ENOSPC) on /var/lib/gobot/state/state.json); cycle 39 is saved and every waiting "
                   "audit line written", data={"since_cycle": 35, "cycles": 4, "failed_writes": 57}),
        Alert(kind="paused", title="Paused: no new positions", text="telegram /pause by user 123456",
              severity=Severity.WARNING),
        Alert(kind="unpaused", title="Unpaused: new positions allowed", text="telegram /resume by user 123456"),
        Alert(kind="watchdog_stale", title="gobot is silent: no heartbeat for 190 s", severity=Severity.CRITICAL,
              text="Last heartbeat from pid 4242 (run r20260102-030405-abc123, cycle 17); stale after 180 s. "
                   "It crashed, hangs or was killed: check the service and gobot.log.",
              data={"age_seconds": 190, "pid": 4242}),
        Alert(kind="watchdog_recovered", title="gobot heartbeat is fresh again",
              text="pid 4243, run r20260102-030405-abc123, cycle 18"),
        Alert(kind="dashboard_lockout", title="Dashboard: 203.0.113.7 locked out after 10 wrong tokens",
              severity=Severity.WARNING, text="10 wrong GOBOT_DASHBOARD_TOKEN values from 203.0.113.7 (last: POST "
                   "/api/kill); its requests are refused for 1 s, twice as long after each further wrong one",
              data={"client": "203.0.113.7", "failures": 10, "lockout_seconds": 1.0, "other_lockouts": 0}),
        Alert(kind="optimizer_report", title="Optimizer: sma_rsi winner #37 (applied next cycle)",
              text="fast=7, slow=44, rsi_period=13; sharpe in sample +1.420 (baseline +0.310), out of sample +0.980 "
                   "(baseline +0.120)",
              data={"study": "scheduled-sma_rsi-20260104-0300", "applied": True, "winner": {"fast": 7, "slow": 44,
                    "rsi_period": 13}, "trials": 50, "stopped": "max_iterations (50) reached"}), *_strategy_samples()]
    return [alert.model_copy(update={"time": now}) for alert in samples]


def _strategy_samples() -> list[Alert]:
    return [Alert(kind="strategy_failed", title="Strategy sma_rsi v3 failed validation: reverted to v2, the last "
                  "version that passed", severity=Severity.WARNING, text="validator: backtest over the last 200 "
                  "candles: -12.40% in 50 trades, loses more than 10%",
                  data={"strategy": "sma_rsi", "version": 3, "action": "revert", "reverted_to": 2})]

