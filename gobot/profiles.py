"""Strategy profiles: named presets of risk limits, sizing, timeframe and strategy parameters
(``conservative``, ``aggressive``, ``scalping``), applied over a config file's values.

A profile is config data, shaped like ``config.toml`` (``{"trading": {...}, "plugins": {"risk_limits":
{...}}}``), with the reason for every value it sets: docs/risk.md shows both, and
``gobot init --profile`` writes them as comments. ``apply_profile`` merges a profile over a parsed
config (the profile's values win over the file's; ``GOBOT_<SECTION>__<KEY>`` variables and
command-line flags still win over the profile), so the result is validated exactly like a file.

Amounts in the portfolio currency (position size, exposure, loss limits: ``CAPITAL_KEYS``) are
written for the default capital of 100, so each reads as a percent of capital; ``apply_profile``
scales them to the config's ``[trading] initial_capital_usd``. The round-trip costs the reasons
count are the paper model's defaults (``[plugins.paper]``: 0.1 % fee a fill, 0.05 % slippage on
market fills — the entry and a stop, not a take-profit).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

#: The capital the amounts in ``CAPITAL_KEYS`` are written for: ``[trading] initial_capital_usd``'s default.
REFERENCE_CAPITAL = 100.0
#: Amounts in the portfolio currency that a profile sets as a share of capital (scaled by ``apply_profile``).
CAPITAL_KEYS = (
    "trading.max_position_usd",
    "orchestrator.max_daily_loss",
    "plugins.risk_limits.max_total_exposure_usd",
    "plugins.risk_limits.daily_loss_limit_usd",
    "plugins.risk_limits.weekly_loss_limit_usd",
)
#: The paper model's default costs (``[plugins.paper]``), % of notional: the reasons below count them.
PAPER_FEE_PERCENT = 0.1
PAPER_SLIPPAGE_PERCENT = 0.05


@dataclass(frozen=True)
class Profile:
    """One preset: ``values`` shaped like config.toml, ``reasons`` by dotted key (``trading.stop_loss_percent``)."""

    name: str
    summary: str
    values: dict[str, Any]
    reasons: dict[str, str] = field(default_factory=dict)

    def flat(self) -> dict[str, Any]:
        """Every value the profile sets, by dotted key (``plugins.risk_limits.max_trades_per_day``)."""
        out: dict[str, Any] = {}

        def walk(prefix: str, data: dict[str, Any]) -> None:
            for key, value in data.items():
                if isinstance(value, dict):
                    walk(f"{prefix}{key}.", value)
                else:
                    out[f"{prefix}{key}"] = value

        walk("", self.values)
        return out

    def risk_per_trade_pct(self, fee_percent: float = PAPER_FEE_PERCENT,
                           slippage_percent: float = PAPER_SLIPPAGE_PERCENT) -> float:
        """What one full-size position loses at its stop, % of capital: the stop distance plus the
        round trip's costs (two fees, slippage on the market entry and on the stop's fill)."""
        trading = self.values["trading"]
        loss_pct = trading["stop_loss_percent"] + 2 * fee_percent + 2 * slippage_percent
        return trading["max_position_usd"] / REFERENCE_CAPITAL * loss_pct


def _profile(name: str, summary: str, entries: list[tuple[str, Any, str]]) -> Profile:
    """A profile from (dotted key, value, reason) triples: no value without its reason."""
    values: dict[str, Any] = {}
    for key, value, _reason in entries:
        *sections, last = key.split(".")
        table = values
        for section in sections:
            table = table.setdefault(section, {})
        table[last] = value
    return Profile(name=name, summary=summary, values=values, reasons={key: why for key, _v, why in entries})


# Each profile sets the same keys, so `gobot profiles` compares them row by row. Timeframes: the
# bundled data is 5m candles; the replay resamples finer to coarser only, so 5m is the finest a
# profile may use, and a coarser one (15m, 1h) is built from it.
CONSERVATIVE = _profile("conservative", "small positions on hourly candles, ~0.5 % of capital at risk a trade, "
                        "few and selective trades, early stops", [
    ("trading.max_position_usd", 20,
     "20 % of capital a position: with the 2.5 % stop and ~0.3 % round-trip costs a stopped trade loses ~0.56 % "
     "of capital, the ~0.5 % a conservative plan risks per trade"),
    ("trading.stop_loss_percent", 2.5,
     "about two median 1h candle ranges of the demo market (1.1-1.3 %): outside an hour's ordinary noise, "
     "tight enough to keep the loss per trade small"),
    ("trading.take_profit_percent", 6.25,
     "2.5 x the stop: a win nets ~6 %, a loss costs ~2.8 %, so ~32 % winners break even after costs"),
    ("orchestrator.loop_interval", 3600, "one cycle per 1h candle: each cycle sees exactly one new candle"),
    ("orchestrator.max_daily_loss", 3,
     "ends the run at -3 % of capital in a day: twice the daily loss limit, a backstop for open positions "
     "that keep falling"),
    ("plugins.risk_limits.min_confidence_threshold", 0.8,
     "only ideas with a clear trend and RSI room (sma_rsi gives 0.5-1.0): fewer, better trades"),
    ("plugins.risk_limits.min_reward_risk", 2.5, "no position whose own target and stop pay less than the profile's "
     "2.5 : 1"),
    ("plugins.risk_limits.max_total_exposure_usd", 40,
     "two full positions (40 % of capital) at most: the rest stays in cash"),
    ("plugins.risk_limits.max_trades_per_day", 4, "a few deliberate entries a day on hourly candles; more would be "
     "chasing noise"),
    ("plugins.risk_limits.daily_loss_limit_usd", 1.5,
     "no new trades after -1.5 % of capital in a day: under three stopped trades"),
    ("plugins.risk_limits.weekly_loss_limit_usd", 4, "no new trades after -4 % of capital in a week"),
    ("plugins.risk_limits.symbol_cooldown_minutes", 240,
     "four 1h candles between trades on one symbol: no revenge re-entry into the same move"),
    ("plugins.risk_limits.volatility_multiplier", 2.5,
     "veto when the ATR is above 2.5 x its median (default 3): a conservative plan steps aside in volatile spells"),
    ("plugins.circuit_breaker.circuit_breaker_threshold", 2, "two losses in a row pause new trades"),
    ("plugins.circuit_breaker.recovery_timeout_minutes", 120, "the pause lasts two 1h candles before a probe trade"),
    ("plugins.circuit_breaker.max_consecutive_losses", 5,
     "the design's hard stop: five losses in a row need `gobot risk reset`"),
    ("plugins.circuit_breaker.max_drawdown_pct", 8,
     "close everything at 8 % below the equity peak: ~14 stopped trades, far beyond a normal losing streak"),
    ("plugins.kelly_size.fraction", 0.25,
     "quarter Kelly (kelly_size, the default sizer): a quarter of the growth-optimal stake keeps the swings small "
     "when the estimated edge is off"),
    ("plugins.kelly_size.min_trades", 40,
     "40 closed trades before Kelly is trusted (fixed max_position_usd until then): a 50 % win rate is known to "
     "about +-8 % only then"),
    ("plugins.kelly_size.lookback_trades", 100,
     "the last 100 trades (the default): about four weeks at the daily maximum of 4, recent enough to "
     "follow a change"),
    ("plugins.replay.timeframe", "1h", "hourly candles (resampled from the bundled 5m): slower signals, "
                                       "less noise per decision"),
    ("plugins.replay.warmup_candles", 48,
     "two days of 1h history before the first cycle: more than the slow SMA (36) and the 12 h the volatility "
     "check needs, and leaves 8 of the bundled 10 days to trade"),
    ("plugins.binance.timeframe", "1h", "live and testnet scans use the same 1h candles as the replay"),
    ("backtest.timeframe", "1h", "`gobot backtest` tests the profile on the candles it trades"),
    ("strategies.sma_rsi.fast", 12, "fast SMA of 12 hours: half a day"),
    ("strategies.sma_rsi.slow", 36, "slow SMA of 36 hours (3x the fast one, as 9/26 is): only established trends"),
    ("strategies.sma_rsi.rsi_period", 14, "the standard 14-candle RSI"),
    ("strategies.sma_rsi.rsi_long_max", 65, "no LONG above RSI 65 (default 70): never buy a stretched move"),
    ("strategies.sma_rsi.rsi_short_min", 35, "no SHORT below RSI 35 (default 30): never sell into a washed-out one"),
    ("strategies.sma_cross.fast", 12, "sma_cross (off by default; when enabled): the same 12/36-hour averages as "
     "sma_rsi, so both read the profile's candles alike"),
    ("strategies.sma_cross.slow", 36, "sma_cross's slow SMA: 36 hours, as sma_rsi's"),
])

AGGRESSIVE = _profile("aggressive", "the design's aggressive mode: large positions on 15m candles, ~2 % of capital "
                      "at risk a trade, half Kelly, more trades", [
    ("trading.max_position_usd", 50,
     "50 % of capital a position: with the 3.5 % stop and ~0.3 % costs a stopped trade loses ~1.9 % of capital, "
     "the ~2 % an aggressive plan risks per trade"),
    ("trading.stop_loss_percent", 3.5,
     "six to seven median 15m candle ranges of the demo market (0.5-0.6 %): room for the trend to breathe"),
    ("trading.take_profit_percent", 7, "2 x the stop: ~36 % winners break even after costs"),
    ("orchestrator.loop_interval", 900, "one cycle per 15m candle"),
    ("orchestrator.max_daily_loss", 12, "ends the run at -12 % of capital in a day: twice the daily loss limit"),
    ("plugins.risk_limits.min_confidence_threshold", 0.65,
     "takes ideas of moderate confidence too (sma_rsi gives 0.5-1.0): more trades"),
    ("plugins.risk_limits.min_reward_risk", 2, "the design's 2 : 1, which the profile's stop and target meet exactly"),
    ("plugins.risk_limits.max_total_exposure_usd", 100,
     "up to two full positions, the whole capital: no leverage on paper"),
    ("plugins.risk_limits.max_trades_per_day", 12, "up to twelve entries a day: one every two hours of 15m candles"),
    ("plugins.risk_limits.daily_loss_limit_usd", 6, "no new trades after -6 % of capital in a day: three stopped "
     "trades"),
    ("plugins.risk_limits.weekly_loss_limit_usd", 15, "no new trades after -15 % of capital in a week"),
    ("plugins.risk_limits.symbol_cooldown_minutes", 30, "two 15m candles between trades on one symbol"),
    ("plugins.risk_limits.volatility_multiplier", 4,
     "veto only above 4 x the median ATR (default 3): trades through livelier spells, where trends start"),
    ("plugins.circuit_breaker.circuit_breaker_threshold", 4, "four losses in a row pause new trades: losing streaks "
     "are expected at ~36 % winners"),
    ("plugins.circuit_breaker.recovery_timeout_minutes", 30, "the pause lasts two 15m candles before a probe trade"),
    ("plugins.circuit_breaker.max_consecutive_losses", 8,
     "hard stop after eight losses in a row: at ~40 % winners a streak of 8 comes about once in 60 trades"),
    ("plugins.circuit_breaker.max_drawdown_pct", 25,
     "close everything at 25 % below the equity peak: ~13 stopped trades"),
    ("plugins.kelly_size.fraction", 0.5,
     "half Kelly (kelly_size, the default sizer): three quarters of full Kelly's growth at half its swings"),
    ("plugins.kelly_size.min_trades", 30, "30 closed trades before Kelly is trusted, the sizer's default"),
    ("plugins.kelly_size.lookback_trades", 100, "the last 100 trades (the default): about eight days at the daily "
     "maximum of 12"),
    ("plugins.replay.timeframe", "15m", "15-minute candles (resampled from the bundled 5m): more signals than 1h, "
                                        "less noise than 5m"),
    ("plugins.replay.warmup_candles", 96,
     "a day of 15m history before the first cycle: more than the slow SMA (22) and the 12 h the volatility check "
     "needs"),
    ("plugins.binance.timeframe", "15m", "live and testnet scans use the same 15m candles as the replay"),
    ("backtest.timeframe", "15m", "`gobot backtest` tests the profile on the candles it trades"),
    ("strategies.sma_rsi.fast", 7, "fast SMA of 7 candles (1h45): reacts to a turn within two hours"),
    ("strategies.sma_rsi.slow", 22, "slow SMA of 22 candles (5h30): enters trends earlier than the default 26"),
    ("strategies.sma_rsi.rsi_period", 14, "the standard 14-candle RSI"),
    ("strategies.sma_rsi.rsi_long_max", 75, "LONG up to RSI 75 (default 70): rides strong moves longer"),
    ("strategies.sma_rsi.rsi_short_min", 25, "SHORT down to RSI 25 (default 30)"),
    ("strategies.sma_cross.fast", 7, "sma_cross (off by default; when enabled): the same 7/22-candle averages as "
     "sma_rsi, so both read the profile's candles alike"),
    ("strategies.sma_cross.slow", 22, "sma_cross's slow SMA: 22 candles (5h30), as sma_rsi's"),
])

SCALPING = _profile("scalping", "5m candles and a 5-minute loop, small targets above the round-trip costs, "
                    "many small trades", [
    ("trading.max_position_usd", 40,
     "40 % of capital a position: with the 0.6 % stop and ~0.3 % costs a stopped trade loses ~0.36 % of capital; "
     "many trades a day, so each risks little"),
    ("trading.stop_loss_percent", 0.6,
     "about two median 5m candle ranges of the demo market (0.26-0.30 %): the smallest stop one candle's noise "
     "does not hit"),
    ("trading.take_profit_percent", 1.2,
     "2 x the stop and 4 x the worst round-trip costs of the paper model (0.1 % fee a fill, 0.05 % slippage on "
     "entry and stop = 0.3 %): a win nets ~0.95 %, a loss costs ~0.9 %"),
    ("orchestrator.loop_interval", 300, "one cycle per 5m candle: a scalp reacts within five minutes"),
    ("orchestrator.max_daily_loss", 4, "ends the run at -4 % of capital in a day: above the daily loss limit, "
     "a backstop for open positions"),
    ("plugins.risk_limits.min_confidence_threshold", 0.7,
     "between the two others: many trades, but not every crossing"),
    ("plugins.risk_limits.min_reward_risk", 2,
     "2 : 1: with costs near a third of the stop, less would need well over half winners"),
    ("plugins.risk_limits.max_total_exposure_usd", 80, "two full positions (80 % of capital) at most"),
    ("plugins.risk_limits.max_trades_per_day", 40, "up to forty entries a day (288 5m candles): scalping lives on "
     "numbers, the loss limits and the breaker bound the damage"),
    ("plugins.risk_limits.daily_loss_limit_usd", 2.5, "no new trades after -2.5 % of capital in a day: about seven "
     "stopped scalps"),
    ("plugins.risk_limits.weekly_loss_limit_usd", 6, "no new trades after -6 % of capital in a week"),
    ("plugins.risk_limits.symbol_cooldown_minutes", 10, "two 5m candles between trades on one symbol"),
    ("plugins.risk_limits.volatility_multiplier", 2.5,
     "veto when the ATR is above 2.5 x its median (default 3): a 0.6 % stop is hit by noise in a spike"),
    ("plugins.circuit_breaker.circuit_breaker_threshold", 3, "three losses in a row pause new trades"),
    ("plugins.circuit_breaker.recovery_timeout_minutes", 15, "the pause lasts three 5m candles before a probe trade"),
    ("plugins.circuit_breaker.max_consecutive_losses", 10,
     "hard stop after ten losses in a row: at ~50 % winners a streak of 10 comes about once in 1,000 trades, "
     "so it means the edge is gone"),
    ("plugins.circuit_breaker.max_drawdown_pct", 10,
     "close everything at 10 % below the equity peak: ~28 stopped scalps"),
    ("plugins.kelly_size.fraction", 0.25,
     "quarter Kelly (kelly_size, the default sizer): a scalper's edge is thin, and a small error in it swings "
     "full Kelly a lot"),
    ("plugins.kelly_size.min_trades", 50, "50 closed trades before Kelly is trusted: a day or two of scalping"),
    ("plugins.kelly_size.lookback_trades", 200,
     "the last 200 trades (default 100): many small trades, so a longer sample costs little time"),
    ("plugins.replay.timeframe", "5m", "the finest candles of the bundled data (the replay only resamples up)"),
    ("plugins.replay.warmup_candles", 200,
     "16.7 h of 5m history before the first cycle: more than the 12 h the volatility check needs"),
    ("plugins.binance.timeframe", "5m", "live and testnet scans use the same 5m candles as the replay"),
    ("backtest.timeframe", "5m", "`gobot backtest` tests the profile on the candles it trades"),
    ("strategies.sma_rsi.fast", 5, "fast SMA of 5 candles (25 minutes)"),
    ("strategies.sma_rsi.slow", 14, "slow SMA of 14 candles (70 minutes): short swings, not day trends"),
    ("strategies.sma_rsi.rsi_period", 7, "a 7-candle RSI (35 minutes), matched to the short averages"),
    ("strategies.sma_rsi.rsi_long_max", 70, "the default RSI bounds: a short RSI already swings wide"),
    ("strategies.sma_rsi.rsi_short_min", 30, "the default RSI bounds"),
    ("strategies.sma_cross.fast", 5, "sma_cross (off by default; when enabled): the same 5/14-candle averages as "
     "sma_rsi, so both read the profile's candles alike"),
    ("strategies.sma_cross.slow", 14, "sma_cross's slow SMA: 14 candles (70 minutes), as sma_rsi's"),
])

PROFILES: dict[str, Profile] = {profile.name: profile for profile in (CONSERVATIVE, AGGRESSIVE, SCALPING)}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ``KeyError`` with the choices when there is none."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"no profile '{name}': choose {', '.join(PROFILES)}") from None


def config_capital(data: dict[str, Any]) -> float:
    """``[trading] initial_capital_usd`` of parsed config data (the default when unset or not a number)."""
    trading = data.get("trading")
    value = trading.get("initial_capital_usd") if isinstance(trading, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return REFERENCE_CAPITAL


def scaled_values(profile: Profile, capital: float = REFERENCE_CAPITAL) -> dict[str, Any]:
    """The profile's values with the amounts of ``CAPITAL_KEYS`` scaled from ``REFERENCE_CAPITAL`` to ``capital``."""
    values = copy.deepcopy(profile.values)
    factor = capital / REFERENCE_CAPITAL
    for key in CAPITAL_KEYS:
        *sections, last = key.split(".")
        table: Any = values
        for section in sections:
            table = table.get(section) if isinstance(table, dict) else None
        if isinstance(table, dict) and last in table:
            table[last] = round(table[last] * factor, 8)
    return values


def apply_profile(data: dict[str, Any], profile: Profile, capital: float | None = None) -> dict[str, Any]:
    """A copy of the parsed config ``data`` with the profile's values merged over it, section by section.

    Lists (``[plugins] enable``) are joined, not replaced: a profile adds the plugins it needs. The
    amounts of ``CAPITAL_KEYS`` are scaled to ``capital`` (default: the data's ``[trading]
    initial_capital_usd``, else 100): a profile sets shares of capital, whatever the capital."""
    merged = copy.deepcopy(data)

    def merge(into: dict[str, Any], values: dict[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            elif isinstance(value, list) and isinstance(into.get(key), list):
                into[key] = [*into[key], *(v for v in value if v not in into[key])]
            else:
                into[key] = copy.deepcopy(value)

    merge(merged, scaled_values(profile, config_capital(data) if capital is None else capital))
    return merged


def shown(key: str, value: Any) -> str:
    """A profile's value as tables show it: text quoted, an amount of ``CAPITAL_KEYS`` with its share of capital."""
    text = f'"{value}"' if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
    if key in CAPITAL_KEYS:
        text += f" ({value / REFERENCE_CAPITAL * 100:g} % of capital)"
    return text


def profiles_markdown() -> str:
    """docs/risk.md's tables of the profiles: the values side by side, then each profile's values with the
    reasons (``gobot profiles --markdown`` prints it; a test keeps the file equal to it)."""
    names = list(PROFILES)
    keys = list(dict.fromkeys(key for profile in PROFILES.values() for key in profile.flat()))
    lines = ["| setting | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|",
             "| risk a trade: a full position stopped out, round-trip costs included | "
             + " | ".join(f"{PROFILES[name].risk_per_trade_pct():.2f} % of capital" for name in names) + " |"]
    for key in keys:
        cells = [shown(key, PROFILES[name].flat()[key]) if key in PROFILES[name].flat() else "-" for name in names]
        lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
    for name in names:
        profile = PROFILES[name]
        lines += ["", f"#### {name}: {profile.summary}", "", "| setting | value | why |", "|---|---|---|"]
        lines += [f"| `{key}` | {shown(key, value)} | {profile.reasons[key].replace('|', '/')} |"
                  for key, value in profile.flat().items()]
    return "\n".join(lines) + "\n"
