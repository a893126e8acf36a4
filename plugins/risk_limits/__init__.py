"""``risk_limits``: hard caps on every order intent that opens exposure, each with its own reason.

- per order: signal confidence, reward/risk, position size (``[trading] max_position_usd``), the
  market's minimum notional (``MarketSnapshot.extras["min_notional"]``: vetoed, never upsized),
  total exposure (open positions + pending orders + this one), one position per symbol, and (off by
  default) the bid/ask spread, which needs this cycle's order book: a snapshot that names
  ``order_book`` in ``missing`` is a veto (fail closed), other checks do not need it;
- per day and week, in the configured time zone: positions opened, and loss limits (equity now
  against the day's / week's first look, so realised + unrealised) that block new trades for the
  rest of the day / week once reached;
- per symbol: a cooldown after each closed trade; per time of day: low-liquidity hours (UTC);
- from price history (``await ctx.candles``): high volatility (ATR% against its median) and
  over-correlation with open positions. These run only when every other check passed (they cost
  exchange requests). Missing or too little history is a veto (fail closed); each check can be
  switched off in the config.

Counters (positions opened, last close per symbol, blocked day or week) live in
``ctx.plugin_state("risk_limits")``: persisted every cycle, and carried into the next run on the
wall clock (``carry_over``), so a restart or a new run never resets them. ``gobot risk status``
shows them (``gobot_risk_status``); ``gobot risk reset`` lifts a blocked day or week.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from gobot_hookspecs import Action, Alert, PluginConfig, RiskCounter, RiskStatus, RiskVerdict, Severity, Side, hookimpl
from gobot_hookspecs.candles import TIMEFRAMES
from gobot_hookspecs.money import decimals, money, quote_of

from .market import correlation, volatility

NAME = "risk_limits"
LEDGER_DAYS = 8  # positions opened longer ago than this are forgotten (the weekly view needs 7)
EPSILON = 1e-9
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


class RiskLimitsConfig(PluginConfig):
    min_confidence_threshold: float = Field(0.75, ge=0, le=1, description="lowest confidence that may trade, 0-1")
    min_reward_risk: float = Field(
        2.0, ge=0, description="least take-profit distance divided by stop distance of a new position; 0 = off"
    )
    max_spread_pct: float = Field(
        0.0, ge=0, description="widest bid/ask spread that may open a position, % of the mid price; needs the cycle's "
        "order book (a missing one is a veto); 0 = off",
    )
    max_total_exposure_usd: float = Field(
        30.0, gt=0,
        description="largest total notional: open positions + pending orders + the new one, portfolio currency"
    )
    max_trades_per_day: int = Field(3, ge=0, description="most positions opened per day (see timezone); 0 = no limit")
    daily_loss_limit_usd: float = Field(
        30.0, ge=0,
        description="today's loss (realised + unrealised) that blocks new trades for the rest of the day, "
                    "portfolio currency (positive); 0 = off"
    )
    weekly_loss_limit_usd: float = Field(
        50.0, ge=0,
        description="this week's loss that blocks new trades for the rest of the week, portfolio currency "
                    "(positive); 0 = off"
    )
    symbol_cooldown_minutes: float = Field(
        180.0, ge=0, description="no new position on a symbol this long after a trade on it closed, minutes; 0 = off"
    )
    low_liquidity_hours: list[str] = Field(
        default_factory=lambda: ["02:00-04:00"], description="UTC windows HH:MM-HH:MM with no new positions; [] = off"
    )
    volatility_multiplier: float = Field(
        3.0, ge=0, description="veto when the latest ATR% is above this many times its median; 0 = off"
    )
    volatility_atr_candles: int = Field(14, ge=1, description="candles in the ATR")
    volatility_median_days: float = Field(30.0, gt=0, description="days of ATR% values the median is taken over")
    max_correlation: float = Field(
        0.8, gt=0, le=1,
        description="veto above this correlation of returns with an open position in the same direction "
        "(in the opposite direction the sign flips); 1 = off",
    )
    correlation_days: float = Field(7.0, gt=0, description="days of returns the correlation is measured over")
    history_timeframe: str = Field("1h", description="candle size of the volatility and correlation checks")
    min_history_hours: float = Field(
        12.0, ge=0, description="least candle history those two checks need; less is a veto (fail closed), hours"
    )
    timezone: str = Field("UTC", description="time zone of day and week boundaries (IANA name, e.g. Europe/Berlin)")

    @field_validator("low_liquidity_hours")
    @classmethod
    def _windows(cls, windows: list[str]) -> list[str]:
        for window in windows:
            if not _WINDOW.match(window):
                raise ValueError(f"'{window}' is not a UTC window such as '02:00-04:00'")
        return windows

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{name}' is not an IANA time zone such as 'UTC' or 'Europe/Berlin'") from None
        return name

    @field_validator("history_timeframe")
    @classmethod
    def _timeframe(cls, name: str) -> str:
        if name not in TIMEFRAMES:
            raise ValueError(f"'{name}' is not one of {', '.join(TIMEFRAMES)}")
        return name


# -- time -------------------------------------------------------------------------------------


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def in_window(now: datetime, window: str) -> bool:
    """Is ``now`` (any zone) inside the UTC window ``HH:MM-HH:MM`` (which may wrap midnight)?"""
    start, end = (_minutes(part) for part in window.split("-"))
    utc = now.astimezone(timezone.utc)
    minute = utc.hour * 60 + utc.minute
    return start <= minute < end if start <= end else minute >= start or minute < end


def periods(now: datetime, zone: str) -> dict[str, tuple[str, datetime]]:
    """This day's and week's keys in ``zone`` and when each ends (as UTC)."""
    local = now.astimezone(ZoneInfo(zone))
    return dict(_periods_of(local.year, local.month, local.day, zone))


@lru_cache(maxsize=256)  # asked at every entry decision (thousands in a backtest), and the answer is the day's
def _periods_of(year: int, month: int, day: int, zone: str) -> tuple[tuple[str, tuple[str, datetime]], ...]:
    midnight = datetime(year, month, day, tzinfo=ZoneInfo(zone))
    day_end = (midnight + timedelta(days=1)).astimezone(timezone.utc)
    week_end = (midnight + timedelta(days=7 - midnight.weekday())).astimezone(timezone.utc)
    iso_year, week, _ = midnight.isocalendar()
    return ("day", (midnight.date().isoformat(), day_end)), ("week", (f"{iso_year}-W{week:02d}", week_end))


def _local_day(when: datetime, zone: str) -> str:
    return when.astimezone(ZoneInfo(zone)).date().isoformat()


def _hhmm(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%m-%d %H:%M UTC")


# -- the plugin -------------------------------------------------------------------------------


class RiskLimits:
    """One instance per bot. The candle cache lives for one clock reading (one cycle)."""

    def __init__(self) -> None:
        self._cache: dict[tuple, object] = {}
        self._cache_time: datetime | None = None

    @hookimpl
    def gobot_config_model(self):
        return RiskLimitsConfig

    # -- state ----------------------------------------------------------------------------------

    @staticmethod
    def _config(ctx) -> RiskLimitsConfig:
        return RiskLimitsConfig.of(ctx, NAME)

    @staticmethod
    def _state(ctx) -> dict:
        state = ctx.plugin_state(NAME)
        state["carry_over"] = True  # a new run (wall clock) keeps the ledger and the blocks
        if state.get("run_id") != ctx.run_id:
            state["run_id"] = ctx.run_id
            for period in ("day", "week"):  # equity baselines belong to a run's own equity
                state.pop(period, None)
        state.setdefault("opens", [])
        state.setdefault("last_close", {})
        state.setdefault("blocked", {})
        return state

    def _losses(self, ctx, config: RiskLimitsConfig, state: dict, *, latch: bool) -> dict[str, dict]:
        """The day's and week's loss so far (equity against its first look); latch a reached limit."""
        now, equity = ctx.now(), ctx.equity()
        limits = {"day": config.daily_loss_limit_usd, "week": config.weekly_loss_limit_usd}
        out = {}
        for period, (key, ends) in periods(now, config.timezone).items():
            base = state.get(period)
            if not base or base.get("key") != key:
                base = {"key": key, "start_equity": equity}
                if latch:
                    state[period] = base
            blocked = state["blocked"].get(period)
            if blocked and blocked.get("key") != key:  # a block of an earlier day or week has ended
                blocked = None
                if latch:
                    del state["blocked"][period]
            loss = base["start_equity"] - equity
            if latch and blocked is None and limits[period] > 0 and loss >= limits[period] - EPSILON:
                blocked = state["blocked"][period] = {
                    "key": key, "loss": round(loss, 4), "limit": limits[period], "since": now.isoformat(),
                    "until": ends.isoformat(),
                }
                label = "daily" if period == "day" else "weekly"
                ctx.audit("loss_limit_reached", period=period, key=key, loss=loss, limit=limits[period], until=ends)
                ctx.alert(Alert(kind="loss_limit", severity=Severity.CRITICAL,
                                title=f"{label.capitalize()} loss limit reached: no new trades until {_hhmm(ends)}",
                                text=f"loss {money(loss, ctx.currency)} >= {label}_loss_limit_usd {limits[period]:g}",
                                data={"period": period, "key": key, "loss": loss}))
            out[period] = {"key": key, "loss": loss, "limit": limits[period], "blocked": blocked, "ends": ends}
        return out

    # -- events ---------------------------------------------------------------------------------

    @hookimpl
    def gobot_on_scan_end(self, ctx):
        self._losses(ctx, self._config(ctx), self._state(ctx), latch=True)

    @hookimpl
    def gobot_on_fill(self, ctx, fill):
        position = ctx.positions().get(fill.symbol)
        if fill.purpose != "open" or position is None or position.client_order_id != fill.client_order_id:
            return  # only fills that opened a position count as a trade of the day
        state = self._state(ctx)
        horizon = ctx.now() - timedelta(days=LEDGER_DAYS)
        state["opens"] = [o for o in state["opens"] if datetime.fromisoformat(o["time"]) >= horizon]
        state["opens"].append({"symbol": fill.symbol, "time": fill.time.isoformat()})

    @hookimpl
    def gobot_on_trade_closed(self, ctx, trade):
        self._state(ctx)["last_close"][trade.symbol] = trade.closed_at.isoformat()

    # -- the checks -----------------------------------------------------------------------------

    @hookimpl
    async def gobot_risk_check(self, ctx, intent):
        config, state = self._config(ctx), self._state(ctx)
        losses = self._losses(ctx, config, state, latch=True)
        reasons = self._order_checks(ctx, config, intent) + self._account_checks(ctx, config, state, intent, losses)
        if not reasons:  # the market checks cost candle requests: only when everything else passed
            reasons = await self._market_checks(ctx, config, intent)
        if reasons:
            return RiskVerdict(approved=False, reason="; ".join(reasons))
        return RiskVerdict(approved=True, reason="within limits")

    def _order_checks(self, ctx, config: RiskLimitsConfig, intent) -> list[str]:
        reasons = []
        confidence = intent.signal.confidence if intent.signal else 0.0
        if confidence < config.min_confidence_threshold:
            shown = (f"{confidence:.2f}" if round(confidence, 2) < config.min_confidence_threshold
                     else f"{confidence:.4f}")
            reasons.append(f"confidence {shown} below min_confidence_threshold {config.min_confidence_threshold:.2f}")
        if config.min_reward_risk > 0:
            price, stop, target = intent.reference_price, intent.stop_loss, intent.take_profit
            if stop is None or target is None:
                reasons.append("no stop-loss or take-profit: reward/risk unknown (min_reward_risk needs both)")
            else:
                risk, reward = abs(price - stop), abs(target - price)
                ratio = reward / risk if risk > 0 else math.inf
                if ratio < config.min_reward_risk * (1 - 1e-6):
                    reasons.append(f"reward/risk {ratio:.2f} below min_reward_risk {config.min_reward_risk:g} "
                                   f"(target {target:.6g}, stop {stop:.6g}, entry {price:.6g})")
        cap = ctx.config.trading.max_position_usd
        if intent.notional_usd > cap + EPSILON:
            reasons.append(f"notional {money(intent.notional_usd, ctx.currency)} above max_position_usd {cap:g}")
        minimum = _min_notional(ctx, intent.symbol)  # in the symbol's quote, as the exchange states it
        quoted = intent.notional_usd / intent.quote_rate
        if minimum is not None and quoted < minimum - EPSILON:
            reasons.append(f"notional {money(quoted, quote_of(intent.symbol))} below the market's minimum "
                           f"{money(minimum, quote_of(intent.symbol))} (not upsized)")
        if config.max_spread_pct > 0:
            reasons += _spread_check(ctx, config, intent.symbol)
        return reasons

    def _account_checks(self, ctx, config: RiskLimitsConfig, state: dict, intent, losses: dict) -> list[str]:
        reasons = []
        now = ctx.now()
        pending = [i for i in ctx.pending_intents()
                   if i.purpose == "open" and i.client_order_id != intent.client_order_id]
        exposure, waiting = ctx.exposure(), sum(i.notional_usd for i in pending)
        if exposure + waiting + intent.notional_usd > config.max_total_exposure_usd + EPSILON:
            places = decimals(ctx.currency)
            pending_text = f" + pending {waiting:.{places}f}" if waiting else ""
            reasons.append(f"exposure {exposure:.{places}f}{pending_text} + "
                           f"{money(intent.notional_usd, ctx.currency)} above "
                           f"max_total_exposure_usd {config.max_total_exposure_usd:g}")
        position = ctx.positions().get(intent.symbol)
        if position is not None:
            reasons.append(f"already {position.direction.value.lower()} {intent.symbol}")
        elif any(i.symbol == intent.symbol for i in pending):
            reasons.append(f"an order on {intent.symbol} is still pending")
        if config.max_trades_per_day:
            today = losses["day"]["key"]
            opened = sum(1 for o in state["opens"]
                         if _local_day(datetime.fromisoformat(o["time"]), config.timezone) == today)
            opened += sum(1 for i in pending if _local_day(i.created_at, config.timezone) == today)
            if opened >= config.max_trades_per_day:
                reasons.append(f"{opened} positions opened today ({today} {config.timezone}), "
                               f"max_trades_per_day {config.max_trades_per_day}")
        for period, label in (("day", "daily"), ("week", "weekly")):
            blocked = losses[period]["blocked"]
            if blocked:
                reasons.append(f"{label} loss {money(blocked['loss'], ctx.currency)} reached {label}_loss_limit_usd "
                               f"{blocked['limit']:g}: no new trades until "
                               f"{_hhmm(datetime.fromisoformat(blocked['until']))}")
        if config.symbol_cooldown_minutes > 0 and intent.symbol in state["last_close"]:
            closed = datetime.fromisoformat(state["last_close"][intent.symbol])
            waited = (now - closed).total_seconds() / 60
            if waited < config.symbol_cooldown_minutes:
                free = closed + timedelta(minutes=config.symbol_cooldown_minutes)
                reasons.append(f"cooldown on {intent.symbol}: a trade closed {waited:.0f} min ago, "
                               f"symbol_cooldown_minutes {config.symbol_cooldown_minutes:g} (free at {_hhmm(free)})")
        for window in config.low_liquidity_hours:
            if in_window(now, window):
                reasons.append(f"low-liquidity hours {window} UTC (now {now.astimezone(timezone.utc):%H:%M})")
        return reasons

    # -- market checks (candle history) ---------------------------------------------------------

    async def _history(self, ctx, config: RiskLimitsConfig, symbol: str, days: float, extra: int = 1):
        """Candles covering ``days`` (plus ``extra``), or the reason they can't be judged (fail closed)."""
        now = ctx.now()
        if self._cache_time != now:
            self._cache, self._cache_time = {}, now
        step = TIMEFRAMES[config.history_timeframe]
        limit = math.ceil(days * 86400 / step) + extra
        key = (symbol, config.history_timeframe, limit)
        if key not in self._cache:
            try:
                self._cache[key] = await ctx.candles(symbol, config.history_timeframe, limit)
            except LookupError as exc:
                self._cache[key] = f"no {config.history_timeframe} candles for {symbol} ({exc})"
        candles = self._cache[key]
        if isinstance(candles, str):
            return None, candles
        hours = len(candles) * step / 3600
        need = min(config.min_history_hours, days * 24)
        if hours < need - EPSILON:
            return None, (f"only {hours:g} h of {config.history_timeframe} history for {symbol}, "
                          f"min_history_hours {need:g}")
        return candles, ""

    async def _market_checks(self, ctx, config: RiskLimitsConfig, intent) -> list[str]:
        reasons = []
        if config.volatility_multiplier > 0:
            reasons += await self._volatility_check(ctx, config, intent.symbol)
        if config.max_correlation < 1:
            reasons += await self._correlation_check(ctx, config, intent)
        return reasons

    async def _volatility_check(self, ctx, config: RiskLimitsConfig, symbol: str) -> list[str]:
        reading, problem = await self._volatility(ctx, config, symbol)
        if reading is None:
            return [f"volatility unknown: {problem} (fail closed; volatility_multiplier = 0 turns this check off)"]
        if reading.ratio > config.volatility_multiplier:
            return [f"high volatility on {symbol}: ATR% {reading.current_pct:.3f} is {reading.ratio:.1f}x its "
                    f"{config.volatility_median_days:g}-day median {reading.median_pct:.3f} "
                    f"(volatility_multiplier {config.volatility_multiplier:g})"]
        return []

    async def _volatility(self, ctx, config: RiskLimitsConfig, symbol: str):
        candles, problem = await self._history(ctx, config, symbol, config.volatility_median_days,
                                               config.volatility_atr_candles + 1)
        if candles is None:
            return None, problem
        reading = volatility(candles, config.volatility_atr_candles)
        if reading is None:
            return None, f"too few candles for a {config.volatility_atr_candles}-candle ATR of {symbol}"
        return reading, ""

    async def _correlation_check(self, ctx, config: RiskLimitsConfig, intent) -> list[str]:
        direction = intent.direction
        others = {s: p.direction for s, p in ctx.positions().items() if s != intent.symbol}
        for pending in ctx.pending_intents():
            if pending.purpose == "open" and pending.symbol != intent.symbol:
                others.setdefault(pending.symbol, Action.LONG if pending.side is Side.BUY else Action.SHORT)
        if not others:
            return []
        mine, problem = await self._history(ctx, config, intent.symbol, config.correlation_days)
        if mine is None:
            return [f"correlation unknown: {problem} (fail closed; max_correlation = 1 turns this check off)"]
        step_ms = TIMEFRAMES[config.history_timeframe] * 1000
        reasons = []
        for symbol, other_direction in sorted(others.items()):
            theirs, problem = await self._history(ctx, config, symbol, config.correlation_days)
            if theirs is None:
                reasons.append(f"correlation unknown: {problem} "
                               "(fail closed; max_correlation = 1 turns this check off)")
                continue
            rho, n = correlation(mine, theirs, step_ms)
            need = min(config.min_history_hours, config.correlation_days * 24) * 3600 * 1000 / step_ms
            if n < need - EPSILON:
                reasons.append(f"correlation unknown: only {n} common {config.history_timeframe} returns of "
                               f"{intent.symbol} and {symbol} (fail closed)")
                continue
            same = other_direction is direction
            effective = rho if same else -rho
            if effective > config.max_correlation:
                side = "same" if same else "opposite"
                reasons.append(f"over-correlated: {intent.symbol} and open {other_direction.value.lower()} {symbol} "
                               f"correlate {rho:+.2f} over {config.correlation_days:g} days of "
                               f"{config.history_timeframe} returns ({side} direction), "
                               f"max_correlation {config.max_correlation:g}")
        return reasons

    # -- gobot risk status / reset ------------------------------------------------------------------

    @hookimpl
    async def gobot_risk_status(self, ctx):
        config = self._config(ctx)
        state = dict(ctx.plugin_state(NAME))  # read only: nothing here is persisted
        state.setdefault("opens", [])
        state.setdefault("last_close", {})
        state["blocked"] = dict(state.get("blocked", {}))
        if state.get("run_id") != ctx.run_id:
            state = {**state, "day": None, "week": None}
        losses = self._losses(ctx, config, state, latch=False)
        now = ctx.now()
        pending = [i for i in ctx.pending_intents() if i.purpose == "open"]
        exposure = ctx.exposure() + sum(i.notional_usd for i in pending)
        today = losses["day"]["key"]
        opened = sum(1 for o in state["opens"]
                     if _local_day(datetime.fromisoformat(o["time"]), config.timezone) == today)
        counters = [
            RiskCounter(name="exposure (positions + pending)", value=round(exposure, decimals(ctx.currency)),
                        limit=config.max_total_exposure_usd, unit=ctx.currency,
                        blocking=exposure >= config.max_total_exposure_usd - EPSILON),
            RiskCounter(name=f"positions opened today ({today} {config.timezone})", value=opened,
                        limit=config.max_trades_per_day or None, unit="trades",
                        blocking=bool(config.max_trades_per_day) and opened >= config.max_trades_per_day),
        ]
        for period, label in (("day", "loss today"), ("week", "loss this week")):
            info = losses[period]
            blocked = info["blocked"]
            note = f"blocked until {_hhmm(datetime.fromisoformat(blocked['until']))}" if blocked else ""
            counters.append(RiskCounter(name=f"{label} ({info['key']})",
                                        value=round(max(info["loss"], 0.0), decimals(ctx.currency)),
                                        limit=info["limit"] or None, unit=ctx.currency, blocking=bool(blocked),
                                        note=note))
        quiet = [w for w in config.low_liquidity_hours if in_window(now, w)]
        counters.append(RiskCounter(name="low-liquidity hours (UTC)", value=f"{now.astimezone(timezone.utc):%H:%M}",
                                    limit=", ".join(config.low_liquidity_hours) or None, blocking=bool(quiet)))
        symbol_blocks = {}
        for symbol in ctx.config.trading.symbols:
            if config.symbol_cooldown_minutes > 0 and symbol in state["last_close"]:
                free = (datetime.fromisoformat(state["last_close"][symbol])
                        + timedelta(minutes=config.symbol_cooldown_minutes))
                if free > now:
                    left = (free - now).total_seconds() / 60
                    counters.append(RiskCounter(
                        name=f"cooldown {symbol}", value=round(left), limit=config.symbol_cooldown_minutes,
                        unit="min left", blocking=True, note=f"free at {_hhmm(free)}"))
                    symbol_blocks.setdefault(symbol, "cooling down")
            if config.volatility_multiplier > 0:
                reading, problem = await self._volatility(ctx, config, symbol)
                if reading is None:
                    counters.append(RiskCounter(
                        name=f"volatility {symbol} (ATR% / median)", value=None, limit=config.volatility_multiplier,
                        unit="x", blocking=True, note=problem))
                    symbol_blocks.setdefault(symbol, "volatility unknown")
                else:
                    high = reading.ratio > config.volatility_multiplier
                    counters.append(RiskCounter(
                        name=f"volatility {symbol} (ATR% / median)", value=round(reading.ratio, 2),
                        limit=config.volatility_multiplier, unit="x", blocking=high,
                        note=f"ATR% {reading.current_pct:.3f}, median {reading.median_pct:.3f}"))
                    if high:
                        symbol_blocks.setdefault(symbol, "high volatility")
        counters += [
            RiskCounter(name="confidence", limit=config.min_confidence_threshold, note="checked per order (minimum)"),
            RiskCounter(name="reward/risk", limit=config.min_reward_risk or None, note="checked per order (minimum)"),
            RiskCounter(name="position size", limit=ctx.config.trading.max_position_usd, unit=ctx.currency,
                        note="checked per order"),
            RiskCounter(name="bid/ask spread", limit=config.max_spread_pct or None, unit="%",
                        note="checked per order against the cycle's order book"),
            RiskCounter(name="correlation with open positions",
                        limit=config.max_correlation if config.max_correlation < 1 else None, note="checked per order"),
        ]
        everywhere = [c.name for c in counters[:5] if c.blocking]
        if everywhere:
            return RiskStatus(allows_trading=False, reason="blocked: " + ", ".join(everywhere), counters=counters)
        symbols = ctx.config.trading.symbols
        if symbols and all(s in symbol_blocks for s in symbols):
            reason = "blocked on every symbol: " + ", ".join(f"{s} {why}" for s, why in symbol_blocks.items())
            return RiskStatus(allows_trading=False, reason=reason, counters=counters)
        reason = "within limits" + (" (not on " + ", ".join(f"{s}: {why}" for s, why in symbol_blocks.items()) + ")"
                                    if symbol_blocks else "")
        return RiskStatus(allows_trading=True, reason=reason, counters=counters)

    @hookimpl
    def gobot_risk_reset(self, ctx, reason):
        state = self._state(ctx)
        cleared = [f"{'daily' if period == 'day' else 'weekly'} loss block of {block['key']}"
                   for period, block in state["blocked"].items()]
        if not cleared:
            return None
        state["blocked"] = {}
        for period in ("day", "week"):  # the loss is measured afresh from here, or it would block again at once
            if state.get(period):
                state[period]["start_equity"] = ctx.equity()
        return "lifted the " + " and the ".join(cleared)


def _snapshot(ctx, symbol: str):
    """This cycle's market snapshot of ``symbol``, or None."""
    return next((snap for snap in ctx.snapshots if snap.symbol == symbol), None)


def _min_notional(ctx, symbol: str) -> float | None:
    """The market's minimum order notional, when the market-data plugin reports one."""
    snap = _snapshot(ctx, symbol)
    value = snap.extras.get("min_notional") if snap is not None else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _spread_check(ctx, config: RiskLimitsConfig, symbol: str) -> list[str]:
    """The bid/ask spread against ``max_spread_pct``; without this cycle's order book it is unknown: a veto."""
    off = "fail closed; max_spread_pct = 0 turns this check off"
    snap = _snapshot(ctx, symbol)
    if snap is None:
        return [f"spread unknown: no market snapshot of {symbol} this cycle ({off})"]
    if "order_book" in snap.missing:
        return [f"spread unknown: the order book of {symbol} is missing this cycle (could not be fetched; {off})"]
    bid, ask = snap.bid, snap.ask
    if bid is None or ask is None or not 0 < bid <= ask:
        return [f"spread unknown: no bid/ask quote for {symbol} ({off})"]
    spread = (ask - bid) / ((ask + bid) / 2) * 100
    if spread > config.max_spread_pct + EPSILON:
        return [f"spread {spread:.3f}% on {symbol} above max_spread_pct {config.max_spread_pct:g}"]
    return []
