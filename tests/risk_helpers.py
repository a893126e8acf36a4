"""Shared by the risk tests: order intents and trades made by hand, and asking a bot's real risk
plugins (through its hook caller, exactly as the validate phase does) for their verdicts."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

from gobot.research.synthetic import csv_name, generate, write_csv
from gobot_hookspecs import Action, OrderIntent, Position, RiskVerdict, Side, Signal, Trade

DESIGN_RISK_LIMITS = {  # the design's values of the switches REPLAY_TEST_RISK turns off
    "max_trades_per_day": 3, "symbol_cooldown_minutes": 180, "low_liquidity_hours": ["02:00-04:00"],
    "volatility_multiplier": 3.0, "max_correlation": 0.8,
}
DESIGN_BREAKER = {"circuit_breaker_threshold": 3, "max_consecutive_losses": 5}


def make_intent(symbol="BTC/USDT", side=Side.BUY, notional=10.0, price=100.0, confidence=0.9, stop_pct=2.0,
                target_pct=4.0, at: datetime | None = None, tag="t") -> OrderIntent:
    sign = 1 if side is Side.BUY else -1
    action = Action.LONG if side is Side.BUY else Action.SHORT
    return OrderIntent(
        id=f"{tag}-{symbol}", client_order_id=f"{tag}{symbol.replace('/', '')}{side.value}", symbol=symbol, side=side,
        notional_usd=notional, reference_price=price,
        stop_loss=price * (1 - sign * stop_pct / 100) if stop_pct else None,
        take_profit=price * (1 + sign * target_pct / 100) if target_pct else None,
        signal=Signal(symbol=symbol, action=action, confidence=confidence),
        created_at=at or datetime(2026, 1, 1, tzinfo=timezone.utc),
    )


def verdicts(bot, intent: OrderIntent) -> dict[str, RiskVerdict]:
    """Every risk plugin's verdict on ``intent``, by plugin, from the bot's own hook caller."""
    return {v.plugin: v for v in asyncio.run(bot.hooks.risk(ctx=bot.ctx, intent=intent))}


def judge(bot, intent: OrderIntent, plugin: str = "risk_limits") -> RiskVerdict:
    return verdicts(bot, intent)[plugin]


def notify(bot, hook: str, **kwargs) -> None:
    """Call an event hook on every plugin of the bot, as the core does."""
    failures = asyncio.run(bot.hooks.notify(hook, ctx=bot.ctx, **kwargs))
    assert not failures, failures


def trade(symbol="BTC/USDT", pnl=-1.0, closed_at: datetime | None = None, notional=10.0) -> Trade:
    closed = closed_at or datetime(2026, 1, 1, tzinfo=timezone.utc)
    entry = 100.0
    return Trade(symbol=symbol, direction=Action.LONG, amount=notional / entry, entry_price=entry,
                 exit_price=entry * (1 + pnl / notional), opened_at=closed - timedelta(minutes=30), closed_at=closed,
                 fees=0.0, pnl=pnl, exit_reason="stop_loss" if pnl < 0 else "take_profit")


def hold(bot, symbol: str, direction=Action.LONG, notional=10.0, price=100.0, now: datetime | None = None) -> Position:
    """Put an open position into the bot's portfolio (marked at ``price``)."""
    position = Position(symbol=symbol, direction=direction, amount=notional / price, entry_price=price,
                        opened_at=now or bot.clock.now(), client_order_id=f"held-{symbol}")
    bot.state.positions[symbol] = position
    bot.state.last_prices[symbol] = price
    return position


def synthetic_market(folder: Path, symbols: dict[str, float], days: int = 3, seed: int = 1) -> Path:
    """Seeded synthetic 5m candles for ``symbols`` (name -> start price) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for symbol, price in symbols.items():
        write_csv(folder / csv_name(symbol, "5m"), generate(symbol, price, days * 288, seed=seed))
    return folder
