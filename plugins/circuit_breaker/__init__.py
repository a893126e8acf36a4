"""``circuit_breaker``: stops opening positions when trading goes wrong, and lets it back in carefully.

The state machine (its state is kept in ``ctx.plugin_state("circuit_breaker")``; the core learns it
only through ``gobot_status``, which answers ``breaker=True``: /health, the dashboard, /metrics and
``progress.json`` show it as ``breaker``)::

    CLOSED --(3 consecutive losing trades | 5 execution failures in the window | an exchange ban)--> OPEN
    OPEN --(recovery timeout passed)--> HALF_OPEN     one probe trade is let through
    HALF_OPEN --(the probe wins)--> CLOSED
    HALF_OPEN --(a loss or a failure)--> OPEN         the recovery timeout doubles, up to a cap
    any --(max_consecutive_losses in a row | drawdown >= max_drawdown_pct)--> HARD_STOP
    HARD_STOP --(`gobot risk reset`)--> CLOSED

A drawdown stop is an emergency stop: it also asks for every position to be closed with CRITICAL
priority (``ctx.close_positions``), and asks again each cycle until the bot is flat. The doubled
recovery timeout goes back to ``recovery_timeout_minutes`` after a profitable day. Every change of
state is audited and alerted (``circuit_breaker``). Time is the bot's clock (``ctx.now()``), so the
same rules run on the replay clock. The state is carried into the next run on the wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from gobot_hookspecs import Alert, PluginConfig, PluginStatus, RiskCounter, RiskStatus, RiskVerdict, Severity, hookimpl
from gobot_hookspecs.money import money

NAME = "circuit_breaker"
CLOSED, OPEN, HALF_OPEN, HARD_STOP = "CLOSED", "OPEN", "HALF_OPEN", "HARD_STOP"
BANNED = "banned"  # ExecutionError.kind of an exchange ban (HTTP 418): opens at once
HISTORY = 20  # transitions kept in the state
SEVERITY = {CLOSED: Severity.INFO, HALF_OPEN: Severity.WARNING, OPEN: Severity.CRITICAL, HARD_STOP: Severity.CRITICAL}


class CircuitBreakerConfig(PluginConfig):
    circuit_breaker_threshold: int = Field(3, ge=1, description="consecutive losing trades that open the breaker")
    failure_threshold: int = Field(
        5, ge=1,
        description="execution failures (errors, timeouts, rejections, 429s) within failure_window_minutes that open it"
    )
    failure_window_minutes: float = Field(60.0, gt=0, description="how far back execution failures count, minutes")
    max_drawdown_pct: float = Field(
        20.0, gt=0, le=100, description="drawdown from the equity peak that stops at once and closes every position, %"
    )
    recovery_timeout_minutes: float = Field(
        30.0, gt=0, description="time OPEN before one probe trade is let through, minutes"
    )
    max_recovery_timeout_minutes: float = Field(
        240.0, gt=0, description="cap of the recovery timeout, which doubles after each reopen, minutes"
    )
    max_consecutive_losses: int = Field(
        5, ge=1, description="a losing streak this long is a hard stop: only `gobot risk reset` resumes trading"
    )
    timezone: str = Field(
        "UTC", description="time zone of the day boundary (a profitable day resets the recovery timeout)"
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{name}' is not an IANA time zone such as 'UTC' or 'Europe/Berlin'") from None
        return name


def _hhmm(iso: str | None) -> str:
    return datetime.fromisoformat(iso).strftime("%m-%d %H:%M UTC") if iso else "-"


class CircuitBreaker:
    @hookimpl
    def gobot_config_model(self):
        return CircuitBreakerConfig

    # -- state ----------------------------------------------------------------------------------

    @staticmethod
    def _config(ctx) -> CircuitBreakerConfig:
        return CircuitBreakerConfig.of(ctx, NAME)

    def _state(self, ctx) -> dict:
        state = ctx.plugin_state(NAME)
        if "state" not in state:
            state.update(state=CLOSED, since=None, reason="no trouble seen", consecutive_losses=0, failures=[],
                         timeout_minutes=self._config(ctx).recovery_timeout_minutes, reopens=0, retry_at=None,
                         probe=None, emergency_close=False, history=[])
        state["carry_over"] = True  # a new run on the wall clock inherits the breaker: no reset by restarting
        if state.get("run_id") != ctx.run_id:  # equity baselines belong to one run's equity
            state["run_id"] = ctx.run_id
            state["peak_equity"] = ctx.equity()
            state["day"] = None
        return state

    def _move(self, ctx, state: dict, to: str, reason: str) -> None:
        """Change state; audited and alerted."""
        old, now = state["state"], ctx.now()
        config = self._config(ctx)
        if to == OPEN and old == HALF_OPEN:  # a reopen: wait twice as long next time, up to the cap
            state["timeout_minutes"] = min(state["timeout_minutes"] * 2, config.max_recovery_timeout_minutes)
            state["reopens"] += 1
        state.update(state=to, since=now.isoformat(), reason=reason, probe=None)
        state["retry_at"] = (now + timedelta(minutes=state["timeout_minutes"])).isoformat() if to == OPEN else None
        if to in (OPEN, HARD_STOP, CLOSED):
            state["failures"] = []
        state["history"] = (state["history"]
                            + [{"time": now.isoformat(), "from": old, "to": to, "reason": reason}])[-HISTORY:]
        ctx.audit("circuit_breaker", from_state=old, to_state=to, reason=reason,
                  consecutive_losses=state["consecutive_losses"], timeout_minutes=state["timeout_minutes"],
                  retry_at=state["retry_at"])
        text = reason
        if to == OPEN:
            text += f"; one probe trade allowed after {_hhmm(state['retry_at'])} ({state['timeout_minutes']:g} min)"
        elif to == HARD_STOP:
            text += "; no new positions until `gobot risk reset`"
        ctx.alert(Alert(kind="circuit_breaker", title=f"Circuit breaker {old} -> {to}", text=text,
                        severity=SEVERITY[to], data={"from": old, "to": to, "reason": reason}))

    def _tick(self, ctx, state: dict) -> None:
        """Time-driven transitions: recovery timeout, drawdown, a new day."""
        config, now, equity = self._config(ctx), ctx.now(), ctx.equity()
        state["peak_equity"] = max(state.get("peak_equity") or equity, equity)
        peak = state["peak_equity"]
        drawdown = (1 - equity / peak) * 100 if peak > 0 else 0.0
        if drawdown >= config.max_drawdown_pct and state["state"] != HARD_STOP:
            self._move(ctx, state, HARD_STOP,
                       f"emergency stop: drawdown {drawdown:.1f}% from the equity peak {money(peak, ctx.currency)} "
                       f"(max_drawdown_pct {config.max_drawdown_pct:g}); closing every position")
            state["emergency_close"] = True
        if state.get("emergency_close"):
            if ctx.positions():
                ctx.close_positions(f"circuit breaker emergency stop: drawdown {drawdown:.1f}% from the peak")
            else:
                state["emergency_close"] = False
        if state["state"] == OPEN and state["retry_at"] and now >= datetime.fromisoformat(state["retry_at"]):
            self._move(ctx, state, HALF_OPEN,
                       f"recovery timeout of {state['timeout_minutes']:g} min passed: one probe trade")
        day = now.astimezone(ZoneInfo(config.timezone)).date().isoformat()
        previous = state.get("day")
        if previous is None or previous["key"] != day:
            if (previous is not None and equity > previous["start_equity"]
                    and state["timeout_minutes"] > config.recovery_timeout_minutes):
                state["timeout_minutes"] = config.recovery_timeout_minutes
                ctx.audit("circuit_breaker_timeout_reset", day=previous["key"], pnl=equity - previous["start_equity"])
                ctx.alert(Alert(kind="circuit_breaker", title=f"Circuit breaker recovery timeout back to "
                                f"{config.recovery_timeout_minutes:g} min",
                                text=f"{previous['key']} was a profitable day", severity=Severity.INFO))
            state["day"] = {"key": day, "start_equity": equity}

    # -- events ---------------------------------------------------------------------------------

    @hookimpl
    def gobot_on_scan_end(self, ctx):
        self._tick(ctx, self._state(ctx))

    @hookimpl
    def gobot_on_trade_closed(self, ctx, trade):
        config, state = self._config(ctx), self._state(ctx)
        probe = state.get("probe")
        if trade.pnl < 0:
            state["consecutive_losses"] += 1
            streak = state["consecutive_losses"]
            what = f"{streak} consecutive losing trades (last: {trade.symbol} {money(trade.pnl, ctx.currency, True)})"
            if streak >= config.max_consecutive_losses and state["state"] != HARD_STOP:
                self._move(ctx, state, HARD_STOP,
                           f"hard stop: {what}, max_consecutive_losses {config.max_consecutive_losses}")
            elif state["state"] == HALF_OPEN:
                self._move(ctx, state, OPEN,
                           f"{'the probe trade' if probe and probe['symbol'] == trade.symbol else 'a trade'} "
                           f"lost: {what}")
            elif state["state"] == CLOSED and streak >= config.circuit_breaker_threshold:
                self._move(ctx, state, OPEN, f"{what}, circuit_breaker_threshold {config.circuit_breaker_threshold}")
            return
        state["consecutive_losses"] = 0
        if state["state"] == HALF_OPEN and probe and probe["symbol"] == trade.symbol and probe["stage"] == "open":
            self._move(ctx, state, CLOSED, f"the probe trade on {trade.symbol} won "
                                           f"({money(trade.pnl, ctx.currency, True)})")

    @hookimpl
    def gobot_on_execution_error(self, ctx, error):
        config, state = self._config(ctx), self._state(ctx)
        if state["state"] == HARD_STOP:
            return
        what = f"{error.kind} from {error.plugin or 'the executor'}: {error.message}"
        probe = state.get("probe")
        if error.kind == BANNED:
            self._move(ctx, state, OPEN, f"exchange ban ({what})")
            return
        if state["state"] == HALF_OPEN and probe and error.intent_id and probe.get("intent_id") == error.intent_id:
            self._move(ctx, state, OPEN, f"the probe order failed ({what})")
            return
        now = ctx.now()
        horizon = now - timedelta(minutes=config.failure_window_minutes)
        state["failures"] = [t for t in state["failures"] if datetime.fromisoformat(t) > horizon] + [now.isoformat()]
        if len(state["failures"]) >= config.failure_threshold and state["state"] != OPEN:
            self._move(ctx, state, OPEN,
                       f"{len(state['failures'])} execution failures in {config.failure_window_minutes:g} min "
                       f"(failure_threshold {config.failure_threshold}; last: {what})")

    @hookimpl
    def gobot_on_order(self, ctx, order):
        state = self._state(ctx)
        probe = state.get("probe")
        if not probe or order.client_order_id != probe["client_order_id"]:
            return
        if order.status == "rejected":
            self._move(ctx, state, OPEN, f"the probe order on {order.symbol} was rejected")
        elif order.status == "canceled":  # ended with nothing filled (expired in a thin book): no trade to judge
            state["probe"] = None  # the slot is free for the next probe
        else:
            probe["stage"] = "ordered"

    @hookimpl
    def gobot_on_fill(self, ctx, fill):
        probe = self._state(ctx).get("probe")
        if probe and fill.client_order_id == probe["client_order_id"] and fill.purpose == "open":
            probe["stage"] = "open"

    @hookimpl
    def gobot_on_cycle_end(self, ctx):
        state = self._state(ctx)
        probe = state.get("probe")
        if probe and probe["stage"] == "approved":  # vetoed elsewhere, paused or killed: the probe slot is free again
            state["probe"] = None

    # -- the check ------------------------------------------------------------------------------

    @hookimpl
    def gobot_risk_check(self, ctx, intent):
        state = self._state(ctx)
        self._tick(ctx, state)
        current = state["state"]
        if current == CLOSED:
            return RiskVerdict(approved=True, reason="breaker CLOSED")
        if current == HARD_STOP:
            return RiskVerdict(approved=False, reason=f"circuit breaker HARD_STOP since {_hhmm(state['since'])} "
                                                      f"({state['reason']}): `gobot risk reset` needed")
        if current == OPEN:
            return RiskVerdict(approved=False,
                               reason=f"circuit breaker OPEN since {_hhmm(state['since'])} ({state['reason']}); "
                                      f"one probe trade allowed after {_hhmm(state['retry_at'])}")
        probe = state.get("probe")
        if probe:
            return RiskVerdict(approved=False, reason=f"circuit breaker HALF_OPEN: the probe trade on "
                                                      f"{probe['symbol']} must win before more trades")
        state["probe"] = {"client_order_id": intent.client_order_id, "intent_id": intent.id, "symbol": intent.symbol,
                          "stage": "approved"}
        return RiskVerdict(approved=True, reason="breaker HALF_OPEN: this is the probe trade")

    # -- gobot risk status / reset ------------------------------------------------------------------

    @hookimpl
    def gobot_risk_status(self, ctx):
        config = self._config(ctx)
        state = dict(ctx.plugin_state(NAME))
        current = state.get("state", CLOSED)
        equity = ctx.equity()
        peak = max(state.get("peak_equity") or equity, equity) if state.get("run_id") == ctx.run_id else equity
        drawdown = (1 - equity / peak) * 100 if peak > 0 else 0.0
        now = ctx.now()
        horizon = now - timedelta(minutes=config.failure_window_minutes)
        failures = [t for t in state.get("failures", []) if datetime.fromisoformat(t) > horizon]
        streak = state.get("consecutive_losses", 0)
        timeout = state.get("timeout_minutes", config.recovery_timeout_minutes)
        counters = [
            RiskCounter(name="consecutive losing trades", value=streak, limit=config.circuit_breaker_threshold,
                        unit="trades",
                        blocking=current in (OPEN, HARD_STOP) and streak >= config.circuit_breaker_threshold,
                        note=f"hard stop at {config.max_consecutive_losses}"),
            RiskCounter(name=f"execution failures (last {config.failure_window_minutes:g} min)", value=len(failures),
                        limit=config.failure_threshold, blocking=len(failures) >= config.failure_threshold),
            RiskCounter(name="drawdown from the equity peak", value=round(drawdown, 2), limit=config.max_drawdown_pct,
                        unit="%", blocking=drawdown >= config.max_drawdown_pct,
                        note=f"peak {money(peak, ctx.currency)}, equity {money(equity, ctx.currency)}"),
            RiskCounter(name="recovery timeout", value=timeout, limit=config.max_recovery_timeout_minutes, unit="min",
                        note=f"{state.get('reopens', 0)} reopens; back to {config.recovery_timeout_minutes:g} after a "
                             "profitable day"),
        ]
        since = f" since {_hhmm(state.get('since'))}" if state.get("since") else ""
        if current == CLOSED:
            reason = "breaker CLOSED: trading allowed"
        elif current == HALF_OPEN:
            probe = state.get("probe")
            reason = f"breaker HALF_OPEN{since}: " + (f"the probe trade on {probe['symbol']} decides" if probe
                                                      else "one probe trade allowed")
        elif current == OPEN:
            retry = datetime.fromisoformat(state["retry_at"]) if state.get("retry_at") else now
            if retry <= now:
                reason = f"breaker OPEN{since} ({state.get('reason')}); the next cycle lets one probe trade through"
                return RiskStatus(state=current, allows_trading=True, reason=reason, counters=counters)
            reason = (f"breaker OPEN{since} ({state.get('reason')}); one probe trade allowed after "
                      f"{_hhmm(state['retry_at'])}")
        else:
            reason = f"breaker HARD_STOP{since} ({state.get('reason')}): run `gobot risk reset` to trade again"
        return RiskStatus(state=current, allows_trading=current in (CLOSED, HALF_OPEN), reason=reason,
                          counters=counters)

    @hookimpl
    def gobot_status(self, ctx):
        """The operator's view: this plugin is the bot's breaker; OPEN and HARD_STOP make /health unhealthy."""
        state = ctx.plugin_state(NAME)
        current = state.get("state", CLOSED)
        since = f" since {_hhmm(state.get('since'))}" if state.get("since") else ""
        reason = f"breaker {current}{since}" + (f" ({state.get('reason')})" if current != CLOSED else "")
        if current == OPEN:
            reason += f"; one probe trade allowed after {_hhmm(state.get('retry_at'))}"
        data = {k: state.get(k) for k in ("since", "retry_at", "consecutive_losses", "timeout_minutes")}
        return PluginStatus(breaker=True, state=current, healthy=current not in (OPEN, HARD_STOP), reason=reason,
                            data=data)

    @hookimpl
    def gobot_risk_reset(self, ctx, reason):
        config, state = self._config(ctx), self._state(ctx)
        before = state["state"]
        dirty = (before != CLOSED or state["consecutive_losses"] or state["failures"]
                 or state["timeout_minutes"] != config.recovery_timeout_minutes)
        if not dirty:
            return None
        streak = state["consecutive_losses"]
        state.update(consecutive_losses=0, timeout_minutes=config.recovery_timeout_minutes, reopens=0,
                     emergency_close=False, peak_equity=ctx.equity())
        if before != CLOSED:
            self._move(ctx, state, CLOSED, f"reset by the operator: {reason}")
        state["failures"] = []
        return (f"{before} -> CLOSED; losing streak {streak} -> 0, recovery timeout back to "
                f"{config.recovery_timeout_minutes:g} min, equity peak re-based")
