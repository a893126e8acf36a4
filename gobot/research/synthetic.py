"""A seeded synthetic market model for the bundled demo data (labelled synthetic, never real prices).

Log-returns per candle are ``drift(regime) + sigma_t * z + jump``:
- **trends**: a three-state Markov regime (up, flat, down), each lasting ``regime_candles`` on average,
  with drift ``+-trend_drift`` per candle in the trending states;
- **volatility clustering**: GARCH(1,1), ``sigma_t^2 = omega + alpha * r_{t-1}^2 + beta * sigma_{t-1}^2``,
  with ``omega`` chosen so the long-run volatility is ``base_vol``;
- **jumps**: with probability ``jump_probability`` per candle, a normal jump of scale ``jump_scale``.
Each candle is built from ``substeps`` sub-returns, so high and low are reached inside the candle.
The same seed gives the same bytes on every machine (pure Python ``random.Random``).
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from gobot_hookspecs.candles import CSV_HEADER
from gobot_hookspecs.candles import csv_file_name as csv_name  # noqa: F401 - the name the CLI and tests use

DEMO_START = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEMO_SYMBOLS = {"BTC/USDT": 60000.0, "ETH/USDT": 3000.0}


@dataclass(frozen=True)
class MarketModel:
    base_vol: float = 0.0025  # long-run per-candle volatility (5m candles: ~4.2 % a day)
    trend_drift: float = 0.0003  # per-candle drift in a trending regime
    regime_candles: float = 144.0  # mean regime length (12 h of 5m candles)
    garch_alpha: float = 0.08
    garch_beta: float = 0.90
    jump_probability: float = 0.002
    jump_scale: float = 0.015
    substeps: int = 6
    base_volume: float = 100.0


def seed_for(symbol: str, seed: int) -> int:
    return zlib.crc32(f"{symbol}:{seed}".encode())


def generate(
    symbol: str,
    start_price: float,
    count: int,
    *,
    timeframe_seconds: int = 300,
    start: datetime = DEMO_START,
    seed: int = 1,
    model: MarketModel = MarketModel(),
) -> list[tuple[int, float, float, float, float, float]]:
    """``count`` candles ``(timestamp_ms, open, high, low, close, volume)`` of the model."""
    rng = random.Random(seed_for(symbol, seed))
    omega = model.base_vol**2 * (1 - model.garch_alpha - model.garch_beta)
    variance, last_return, regime = model.base_vol**2, 0.0, 0
    switch = 1.0 / model.regime_candles
    price = start_price
    t0 = int(start.timestamp() * 1000)
    rows = []
    for i in range(count):
        if rng.random() < switch:
            regime = rng.choice([r for r in (-1, 0, 1) if r != regime])
        variance = omega + model.garch_alpha * last_return**2 + model.garch_beta * variance
        sigma = math.sqrt(variance)
        total = regime * model.trend_drift + sigma * rng.gauss(0.0, 1.0)
        if rng.random() < model.jump_probability:
            total += rng.gauss(0.0, model.jump_scale)
        # Split the candle's return into a random walk of sub-steps that ends exactly at ``total``.
        steps = [rng.gauss(0.0, sigma / math.sqrt(model.substeps)) for _ in range(model.substeps)]
        correction = (total - sum(steps)) / model.substeps
        open_price, level, high, low = price, price, price, price
        for step in steps:
            level *= math.exp(step + correction)
            high, low = max(high, level), min(low, level)
        price = level
        volume = model.base_volume * math.exp(rng.gauss(0.0, 0.3)) * (1 + abs(total) / model.base_vol)
        rows.append((t0 + i * timeframe_seconds * 1000, open_price, high, low, price, volume))
        last_return = total
    return rows


def write_csv(path: Path, rows: list[tuple[int, float, float, float, float, float]]) -> None:
    """Write candles in the replay format (10 significant digits, like the exchange exports)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [CSV_HEADER]
    for ts, o, h, lo, c, v in rows:
        lines.append(f"{ts},{o:.10g},{h:.10g},{lo:.10g},{c:.10g},{v:.10g}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
