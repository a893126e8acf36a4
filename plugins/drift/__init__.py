"""``drift``: every live fill measured against its paper twin and its backtest, and a go-live gate that keeps
watching after launch. docs/drift.md explains the method and its measured false-alarm rate.

- **Paper twin** (``twin.py``): each order an exchange executor sends is filled again by the paper rules
  on the scanned candles; when both trades closed, the gap between them is split into missed or partial
  fills, entry and exit delay, entry and exit slippage, fees and funding (``attribution.py``), stored
  in ``<state_dir>/drift.sqlite`` (``store.py``: ``gobot drift report``, the daily summary line) and
  reported with ``ctx.record_drift`` (``gobot_on_drift``: the archiver's ``drift`` table, ``gobot report``).
- **Backtest band** (``sentinel.py``): the active strategy version's backtest over the recent past gives
  the reference per-trade R; each live trade's R feeds a CUSUM calibrated by bootstrap to a documented
  false-alarm rate.
- **Gate watch**: live (``--live``), the win rate over the last ``gate_window`` trades is held to
  ``gobot validate``'s target.
- **A breach** alerts (``drift_breach``) and acts per ``on_breach``: ``alert``, ``pause`` (``ctx.pause``),
  or ``paper`` (new entries are vetoed and traded by the twin only) — until ``gobot risk reset``.

Idle on paper: it watches orders whose executor is not ``paper`` (or any order with ``watch_paper``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import Field

from gobot_hookspecs import (
    Action,
    Alert,
    DriftMeasurement,
    PluginConfig,
    PluginStatus,
    RiskCounter,
    RiskStatus,
    RiskVerdict,
    Severity,
    hookimpl,
)
from gobot_hookspecs.candles import TIMEFRAMES
from gobot_hookspecs.money import money

from . import sentinel, store
from . import twin as twins
from .attribution import PARTS, Live, attribute, r_multiple

NAME = "drift"
SIMULATED_EXECUTORS = ("paper", "core")  # core: a proposed order ([trading] auto_execute = false)
R_KEPT = 200  # live R values kept per strategy version for the band


class DriftConfig(PluginConfig):
    on_breach: Literal["alert", "pause", "paper"] = Field(
        "pause", description="what a breach does besides the alert: pause new positions, or trade the paper "
                             "twin only (new live entries vetoed); both until `gobot risk reset`")
    false_alarm_rate: float = Field(0.05, gt=0, lt=1, description="chance that a strategy trading as its backtest "
                                                                  "alarms within horizon_trades trades")
    horizon_trades: int = Field(100, ge=10, description="the horizon of false_alarm_rate, trades")
    allowance: float = Field(0.5, ge=0, description="CUSUM allowance: a drop of mean R tolerated without alarm, "
                                                    "in standard deviations of the backtest's per-trade R")
    band_candles: int = Field(1000, ge=50, description="candles per symbol the backtest band is drawn from")
    history_hours: float = Field(24.0, ge=0, description="candles before the band's the plugins see as history "
                                                         "(volatility, correlation), never traded, hours")
    band_refresh_hours: float = Field(24.0, gt=0, description="how often the band is recomputed, hours")
    min_band_trades: int = Field(20, ge=5, description="fewest backtest trades for a band; fewer: no test")
    grace_candles: int = Field(2, ge=0, description="candles a twin may trail a live stop or target exit before "
                                                    "it follows it at the next open")
    gate_window: int = Field(100, ge=5, description="live trades the rolling go-live check looks at")
    gate_win_rate: float = Field(0.60, ge=0, le=1, description="win rate the rolling live window must exceed "
                                                               "(gobot validate's target)")
    fee_percent: float | None = Field(None, ge=0, lt=100, description="the twin's fee, %; unset = the "
                                      "backtester's ([backtest], else [plugins.paper])")
    slippage_percent: float | None = Field(None, ge=0, lt=100, description="the twin's slippage, %; unset = the "
                                           "backtester's")
    watch_paper: bool = Field(False, description="also twin the paper executor's orders (tests and demos)")


def _ms(time: datetime) -> int:
    return int(time.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


def _signed(amount: float, currency: str) -> str:
    """A signed amount, rounding noise of a zero gap shown as +0.00, never -0.00."""
    return money(round(amount, 8) or 0.0, currency, True)


def _key(strategy: str | None, version: int | None) -> str | None:
    return f"{strategy}@v{version}" if strategy else None


def _measurement(row: dict[str, Any]) -> DriftMeasurement:
    """A stored row as the contract's ``DriftMeasurement`` (``gobot_on_drift``)."""
    names = ("mode", "kind", "symbol", "strategy", "opened_at", "closed_at", "live_pnl", "twin_pnl", "gap", "live_r",
             "twin_r", "risk", "commissions", "exit_reason", "twin_exit_reason", *PARTS)
    return DriftMeasurement(client_order_id=row["coid"], direction=Action.LONG if row["side"] > 0 else Action.SHORT,
                            strategy_version=row["version"], **{name: row[name] for name in names if name in row})


class Drift:
    def __init__(self) -> None:
        self._bands: dict[tuple, tuple[float, float]] = {}  # (version, band time, live trades) -> interval

    @hookimpl
    def gobot_config_model(self):
        return DriftConfig

    @hookimpl
    def gobot_register_commands(self, cli, load_config):
        from .cli import add_drift_command

        add_drift_command(cli, load_config)

    # -- state ------------------------------------------------------------------------------------

    @staticmethod
    def _config(ctx) -> DriftConfig:
        return DriftConfig.of(ctx, NAME)

    @staticmethod
    def _state(ctx) -> dict:
        state = ctx.plugin_state(NAME)
        if "twins" not in state:
            state.update(twins={}, opens={}, last_ts={}, timeframe_ms={}, bands={}, cusum={}, gate=[],
                         breach=None, totals={part: 0.0 for part in PARTS} | {"gap": 0.0, "trades": 0},
                         active=False)
        state["carry_over"] = True  # a breach, like the breaker's hard stop, outlives a restart
        return state

    def _fills(self, ctx) -> tuple[float, float]:
        """The twin's fee and slippage, %: this plugin's, else the backtester's ([backtest], else paper's)."""
        config = self._config(ctx)
        sources = (config, getattr(ctx.config, "backtest", None), ctx.plugin_config("paper"))

        def first(key: str, default: float) -> float:
            found = (getattr(source, key, None) for source in sources)
            return next((value for value in found if value is not None), default)

        return first("fee_percent", 0.1), first("slippage_percent", 0.05)

    def _watched(self, ctx, executor: str) -> bool:
        return executor not in SIMULATED_EXECUTORS or (executor == "paper" and self._config(ctx).watch_paper)

    def _mode(self, ctx) -> str:
        """Where the watched orders went: ``live``, ``testnet`` (an exchange's test network) or ``paper``."""
        return "live" if ctx.live else self._state(ctx).get("executor_mode", "testnet")

    # -- the twin ---------------------------------------------------------------------------------

    @hookimpl
    def gobot_on_order(self, ctx, order):
        if not self._watched(ctx, order.executor) or order.status == "proposed":
            return
        state = self._state(ctx)
        state["active"] = True
        state["executor_mode"] = "paper" if order.executor == "paper" else "testnet"
        found = state["twins"].get(order.client_order_id)
        if order.purpose == "open":
            if order.status == "rejected":  # refused, never at the market: nothing to measure
                if found is not None and found["live"] is None:
                    found["live_missed"] = True
                return
            if found is None and order.amount > 0:
                found = state["twins"][order.client_order_id] = twins.new_twin(
                    order.client_order_id, order.symbol, 1 if order.side.value == "buy" else -1, order.amount,
                    _ms(order.created_at), order.stop_loss, order.take_profit)
            if found is not None and order.status == "canceled" and found["live"] is None:
                found["live_missed"] = True  # sent, ended with nothing filled (expired): the twin trades it alone
            return
        if order.status in ("canceled", "rejected"):
            return
        for twin in state["twins"].values():  # the strategy closed: the twin closes at the next open
            if (twin["symbol"] == order.symbol and not twin["paper_only"] and twin["exit_ms"] is None
                    and twin["close_ms"] is None):
                twin["close_ms"] = _ms(order.created_at)

    @hookimpl
    def gobot_on_fill(self, ctx, fill):
        """Keep the commissions as charged (BNB included) with the twin of the trade they belong to."""
        state = self._state(ctx)
        if not state["active"]:
            return
        found = state["twins"].get(fill.client_order_id)
        if found is not None and fill.purpose == "open":
            found["live_open"] = True
        elif found is None and fill.purpose == "close":
            found = next((t for t in state["twins"].values() if t["symbol"] == fill.symbol and t["live"] is None
                          and t.get("live_open")), None)
        if found is not None:
            paid = found.setdefault("commissions", {})
            for asset, amount in fill.commissions.items():
                paid[asset] = paid.get(asset, 0.0) + amount

    @hookimpl
    def gobot_on_trade_closed(self, ctx, trade):
        state = self._state(ctx)
        if not state["active"]:
            return
        twin = state["twins"].get(trade.client_order_id)
        if twin is not None and twin["live"] is None:
            twin["live"] = {"amount": trade.amount, "entry_price": trade.entry_price, "exit_price": trade.exit_price,
                            "fees": trade.fees, "funding": trade.funding, "pnl": trade.pnl,
                            "entry_ms": _ms(trade.opened_at),
                            "exit_ms": _ms(trade.closed_at), "stop": trade.initial_stop_loss,
                            "strategy": trade.strategy, "version": trade.strategy_version,
                            "exit_reason": trade.exit_reason}
            twin["live_exit_ms"] = _ms(trade.closed_at)
        r = r_multiple(trade.pnl, trade.entry_price, trade.initial_stop_loss, trade.amount,
                       getattr(ctx.config.trading, "stop_loss_percent", None))
        self._watch(ctx, state, _key(trade.strategy, trade.strategy_version), r, trade.pnl)

    @hookimpl
    async def gobot_on_scan_end(self, ctx, snapshots):
        state = self._state(ctx)
        state["active"] = state["active"] or ctx.live  # live: the band is ready before the first order
        if not state["active"]:
            return
        config = self._config(ctx)
        fee, slip = self._fills(ctx)
        for snap in snapshots:
            candles = snap.candles
            if not candles.timestamp or candles.timeframe not in TIMEFRAMES:
                continue
            tf = TIMEFRAMES[candles.timeframe] * 1000
            state["timeframe_ms"][snap.symbol] = tf
            opens = state["opens"].setdefault(snap.symbol, [])
            since = state["last_ts"].get(snap.symbol)
            mine = [t for t in state["twins"].values() if t["symbol"] == snap.symbol]
            for i, ts in enumerate(candles.timestamp):
                if since is not None and ts <= since:
                    continue
                twins.remember_open(opens, ts, candles.open[i])
                for twin in mine:
                    twins.step(twin, ts, candles.open[i], candles.high[i], candles.low[i], tf, fee, slip,
                               config.grace_candles)
            state["last_ts"][snap.symbol] = candles.timestamp[-1]
        self._settle(ctx, state)
        wanted = self._stale_bands(ctx, state)
        if wanted and snapshots:
            await self._compute_bands(ctx, state, wanted, snapshots)

    def _settle(self, ctx, state: dict) -> None:
        """Store every twin whose trade is over on both sides (and whose live exit candle was seen)."""
        for coid, twin in list(state["twins"].items()):
            if twin["exit_ms"] is None:
                continue
            symbol, live = twin["symbol"], twin["live"]
            tf = state["timeframe_ms"].get(symbol, 60_000)
            if live is not None and state["last_ts"].get(symbol, 0) < live["exit_ms"] - live["exit_ms"] % tf:
                continue
            if live is None and not (twin.get("live_missed") or twin["paper_only"]):
                waited = state["last_ts"].get(symbol, 0) - twin["exit_ms"]
                if twin.get("live_open") or waited < self._config(ctx).grace_candles * tf:
                    continue  # the live trade is open (or may still fill): wait for it
                twin["live_missed"] = True  # never filled, and the executor never said it ended
            self._record(ctx, state, twin, tf)
            del state["twins"][coid]

    def _record(self, ctx, state: dict, twin: dict, tf: int) -> None:
        live = twin["live"]
        twin_pnl = twins.pnl(twin)
        stop_pct = getattr(ctx.config.trading, "stop_loss_percent", None)
        row: dict[str, Any] = {
            "coid": twin["coid"], "run_id": ctx.run_id, "mode": self._mode(ctx), "symbol": twin["symbol"],
            "side": twin["side"], "currency": ctx.currency, "twin_pnl": twin_pnl,
            "twin_r": r_multiple(twin_pnl, twin["entry_price"], twin["stop"], twin["amount"], stop_pct),
            "twin_exit_reason": twin["exit_reason"], "strategy": twin["strategy"], "version": twin["version"],
            "opened_at": _iso(twin["entry_ms"]), "closed_at": _iso(twin["exit_ms"]),
            "commissions": twin.get("commissions") or {},
        }
        if twin["paper_only"]:
            row["kind"] = "paper_only"
            store.add_trade(ctx.config.state_path, row)
            ctx.record_drift(_measurement(row))
            return
        parts = attribute(None if live is None else Live(**{k: live[k] for k in (
            "amount", "entry_price", "exit_price", "fees", "pnl", "entry_ms", "exit_ms")},
            funding=live.get("funding", 0.0)),
            twin, state["opens"].get(twin["symbol"], []), tf)
        live_pnl = 0.0 if live is None else live["pnl"]
        row |= parts.as_dict() | {"kind": "missed" if live is None else "matched", "live_pnl": live_pnl,
                                  "gap": live_pnl - twin_pnl}
        if live is not None:
            row |= {"live_r": r_multiple(live["pnl"], live["entry_price"], live["stop"], live["amount"], stop_pct),
                    "strategy": live["strategy"], "version": live["version"], "exit_reason": live["exit_reason"],
                    "opened_at": _iso(live["entry_ms"]), "closed_at": _iso(live["exit_ms"]),
                    "risk": abs(live["entry_price"] - (live["stop"] or live["entry_price"])) * live["amount"]}
        store.add_trade(ctx.config.state_path, row)
        ctx.record_drift(_measurement(row))  # to gobot_on_drift: the archive and `gobot report`
        totals = state["totals"]
        for part in PARTS:
            totals[part] += row[part]
        totals["gap"] += row["gap"]
        totals["trades"] += 1

    # -- the band and the sequential test ---------------------------------------------------------

    def _stale_bands(self, ctx, state: dict) -> list[tuple[str, str]]:
        """The active strategy versions whose band is missing or older than ``band_refresh_hours``; the
        bulky lists of versions no longer active are dropped from the state (their figures stay)."""
        config, now = self._config(ctx), ctx.now()
        active = {name: _key(name, ctx.strategy(name).version) for name in ctx.strategies()}
        for key, band in state["bands"].items():
            if key not in active.values():
                band.pop("reference", None)
                state["cusum"].get(key, {}).pop("r", None)
        wanted = []
        for name, key in active.items():
            band = state["bands"].get(key)
            fresh = band and now - datetime.fromisoformat(band["at"]) < timedelta(hours=config.band_refresh_hours)
            if not fresh:
                wanted.append((name, key))
        return wanted

    async def _compute_bands(self, ctx, state: dict, wanted: list, snapshots) -> None:
        config = self._config(ctx)
        stop_pct = getattr(ctx.config.trading, "stop_loss_percent", None)
        for name, key in wanted:
            params = ctx.strategy(name).params
            rs: list[float] = []
            for snap in snapshots:
                timeframe = snap.candles.timeframe
                extra = math.ceil(config.history_hours * 3600 / TIMEFRAMES[timeframe])
                try:
                    candles = await ctx.candles(snap.symbol, timeframe, config.band_candles + extra)
                except LookupError:
                    candles = snap.candles
                start = None
                if len(candles) > config.band_candles and extra:
                    start = datetime.fromtimestamp(candles.timestamp[-config.band_candles] / 1000, tz=timezone.utc)
                result = ctx.backtest(name, params, candles, snap.symbol, start=start)
                rs += [r_multiple(t.pnl, t.entry_price, t.initial_stop_loss, t.amount, stop_pct)
                       for t in result.trades]
            band: dict[str, Any] = {"at": ctx.now().isoformat(), "trades": len(rs), "reference": rs[-1000:]}
            if len(rs) >= config.min_band_trades and len(set(rs)) > 1:
                band["calibration"] = sentinel.calibrate(
                    rs, allowance=config.allowance, horizon=config.horizon_trades,
                    false_alarm_rate=config.false_alarm_rate).as_dict()
            state["bands"][key] = band
            ctx.audit("drift_band", strategy=key, trades=len(rs), calibration=band.get("calibration"))

    def _watch(self, ctx, state: dict, key: str | None, r: float, pnl: float) -> None:
        """Feed one live trade to the CUSUM of its strategy version and to the rolling gate."""
        config = self._config(ctx)
        calibration = (state["bands"].get(key) or {}).get("calibration") if key else None
        if calibration is not None:
            c = sentinel.Calibration(**calibration)
            watch = state["cusum"].setdefault(key, {"s": 0.0, "trades": 0, "r": []})
            watch["s"] = sentinel.update(watch["s"], r, c.mean, c.sd, c.allowance)
            watch["trades"] += 1
            watch["r"] = (watch.get("r", []) + [r])[-R_KEPT:]
            if watch["s"] > c.h and state["breach"] is None:
                mean = sum(watch["r"]) / len(watch["r"])
                self._breach(ctx, state, f"{key}: live per-trade R left the backtest band (CUSUM {watch['s']:.2f} > "
                                         f"{c.h:.2f} after {watch['trades']} trades; live mean {mean:+.2f} R, "
                                         f"backtest {c.mean:+.2f} R)", {"strategy": key, "cusum": watch["s"]})
        if not ctx.live:
            return
        state["gate"] = (state["gate"] + [1 if pnl > 0 else 0])[-config.gate_window:]
        wins = sum(state["gate"])
        if (len(state["gate"]) >= config.gate_window and wins / len(state["gate"]) <= config.gate_win_rate
                and state["breach"] is None):
            self._breach(ctx, state, f"go-live gate: live win rate {wins / len(state['gate']):.0%} over the last "
                                     f"{len(state['gate'])} trades, target > {config.gate_win_rate:.0%}",
                         {"gate_wins": wins})

    def _breach(self, ctx, state: dict, reason: str, data: dict) -> None:
        action = self._config(ctx).on_breach
        state["breach"] = {"time": ctx.now().isoformat(), "reason": reason, "action": action}
        ctx.audit("drift_breach", reason=reason, action=action, **data)
        then = {"alert": "alert only: trading goes on",
                "pause": "new positions paused until `gobot risk reset`",
                "paper": "new entries trade the paper twin only until `gobot risk reset`"}[action]
        ctx.alert(Alert(kind="drift_breach", title="Drift: live trading left its backtest", text=f"{reason}; {then}",
                        severity=Severity.CRITICAL, data={"action": action, **data}))
        if action == "pause":
            ctx.pause(f"drift breach: {reason}")
        store.add_event(ctx.config.state_path, ctx.now().isoformat(), ctx.run_id, "breach", reason, data)  # last:
        # a full disk must not cost the alert or the action

    # -- risk: the paper-only mode, status and reset ----------------------------------------------

    @hookimpl
    def gobot_risk_check(self, ctx, intent):
        state = self._state(ctx)
        if not state["active"]:
            return None  # idle (paper trading, a backtest): no opinion, nothing in the verdicts
        breach = state["breach"]
        if not breach or breach["action"] != "paper" or intent.purpose != "open":
            return RiskVerdict(approved=True, reason="no drift breach")
        if intent.client_order_id not in state["twins"]:
            signal = intent.signal
            state["twins"][intent.client_order_id] = twins.new_twin(
                intent.client_order_id, intent.symbol, 1 if intent.side.value == "buy" else -1, intent.amount,
                _ms(intent.created_at), intent.stop_loss, intent.take_profit,
                signal.strategy if signal else None, signal.strategy_version if signal else None, paper_only=True)
        return RiskVerdict(approved=False, reason=f"drift breach since {breach['time'][:16]}: the paper twin trades "
                                                  "it, no live order until `gobot risk reset`")

    def _counters(self, ctx, state: dict) -> list[RiskCounter]:
        counters = []
        for key, watch in state["cusum"].items():
            c = (state["bands"].get(key) or {}).get("calibration")
            if c:
                counters.append(RiskCounter(name=f"drift CUSUM {key}", value=round(watch["s"], 3),
                                            limit=round(c["h"], 3), blocking=watch["s"] > c["h"],
                                            note=f"{watch['trades']} live trades; every-loss detection in "
                                                 f"{c['loss_delay']} trades"))
        if ctx.live:
            gate = state["gate"]
            rate = sum(gate) / len(gate) if gate else None
            counters.append(RiskCounter(name="live win rate (rolling)", value=None if rate is None else round(rate, 3),
                                        limit=self._config(ctx).gate_win_rate, unit="",
                                        note=f"{len(gate)} of {self._config(ctx).gate_window} trades"))
        return counters

    @hookimpl
    def gobot_risk_status(self, ctx):
        state = self._state(ctx)
        if not state["active"] and not state["breach"]:
            return None  # idle: nothing to show in `gobot risk status`
        breach = state["breach"]
        blocks = bool(breach) and breach["action"] in ("pause", "paper")
        reason = (f"drift breach ({breach['action']}) since {breach['time'][:16]}: {breach['reason']}" if breach
                  else "no drift breach" if state["active"] else "idle: no exchange order seen (paper trading)")
        return RiskStatus(allows_trading=not blocks, reason=reason, state="BREACH" if breach else "OK",
                          counters=self._counters(ctx, state))

    @hookimpl
    def gobot_risk_reset(self, ctx, reason):
        state = self._state(ctx)
        breach = state["breach"]
        if breach is None and not any(w["s"] for w in state["cusum"].values()):
            return None
        state["breach"] = None
        for watch in state["cusum"].values():
            watch["s"] = 0.0
        state["gate"] = []
        if breach and breach["action"] == "pause":  # (ctx.paused is not known to an offline `gobot risk reset`)
            ctx.unpause(f"drift reset: {reason}")
        store.add_event(ctx.config.state_path, ctx.now().isoformat(), ctx.run_id, "reset", reason)
        return ("breach cleared" if breach else "no breach") + "; CUSUM and the rolling gate window back to zero"

    @hookimpl
    def gobot_status(self, ctx):
        state = self._state(ctx)
        if not state["active"]:
            return None
        totals, breach = state["totals"], state["breach"]
        data: dict[str, Any] = {"trades": totals["trades"], "gap": round(totals["gap"], 2),
                                "parts": {p: round(totals[p], 2) for p in PARTS}, "open_twins": len(state["twins"]),
                                "breach": breach, "bands": {}}
        for key, band in state["bands"].items():
            c, watch = band.get("calibration"), state["cusum"].get(key, {"s": 0.0, "trades": 0})
            live_r = watch.get("r", [])
            entry = {"backtest_trades": band["trades"], "cusum": round(watch["s"], 3), "live_trades": watch["trades"]}
            if c:
                entry |= {"h": round(c["h"], 3), "backtest_mean_r": round(c["mean"], 3),
                          "live_mean_r": sum(live_r) / len(live_r) if live_r else None, "loss_delay": c["loss_delay"]}
                if band.get("reference"):  # the active version's; bootstrapped once per trade, not per request
                    cached = (key, band["at"], len(live_r))
                    if cached not in self._bands:
                        if len(self._bands) > 64:
                            self._bands.clear()
                        self._bands[cached] = sentinel.band(band["reference"], max(1, len(live_r)))
                    entry["band"] = self._bands[cached]
            data["bands"][key] = entry
        if ctx.live:
            gate = state["gate"]
            data["gate"] = {"trades": len(gate), "window": self._config(ctx).gate_window,
                            "win_rate": sum(gate) / len(gate) if gate else None,
                            "target": self._config(ctx).gate_win_rate}
        closest = max((b for b in data["bands"].items() if "h" in b[1]), default=None,
                      key=lambda item: item[1]["cusum"] / item[1]["h"])
        reason = (f"drift: {totals['trades']} trades, live - twin {_signed(totals['gap'], ctx.currency)}"
                  + (f"; CUSUM {closest[0]} {closest[1]['cusum']:.2f} of {closest[1]['h']:.2f}" if closest else "")
                  + (f"; BREACH ({breach['action']}): {breach['reason']}" if breach else ""))
        # no opinion on health: a breach is the strategy's trouble, which a restart would not mend
        return PluginStatus(healthy=None, state="BREACH" if breach else "OK",
                            reason=reason, data=data)

    @hookimpl
    def gobot_daily_summary(self, ctx, day):
        state = self._state(ctx)
        if not state["active"]:
            return None
        rows = [r for r in store.trades(ctx.config.state_path) if (r["closed_at"] or "")[:10] == day
                and r["kind"] != "paper_only"]
        gap = sum(r["gap"] or 0.0 for r in rows)
        sums = {part: sum(r[part] or 0.0 for r in rows) for part in PARTS}
        worst = max(PARTS, key=lambda part: abs(sums[part])) if rows else None
        worst = worst if worst and abs(sums[worst]) >= 0.005 else None
        line = (f"drift: {len(rows)} trades, live - paper twin {_signed(gap, ctx.currency)}"
                + (f" (largest: {worst.replace('_', ' ')} "
                   f"{_signed(sums[worst], ctx.currency)})" if worst else ""))
        if state["breach"]:
            line += f"; BREACH: {state['breach']['reason']}"
        return line

