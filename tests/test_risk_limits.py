"""risk_limits: every protection lets the right trade through, blocks the wrong one, and says why.

Verdicts come from the bot's own hook caller (as in the validate phase); the market checks run
on real price series: the bundled data and, where present, ../shared/data (real exchange candles).
"""

import csv
import statistics
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gobot_hookspecs import Action, Candles, MarketSnapshot, Side, hookimpl
from risk_helpers import hold, judge, make_intent, notify, trade

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "data"
SHARED = ROOT.parent / "shared" / "data"
HOUR = 3_600_000


def limits_bot(replay_bot, **risk_limits):
    return replay_bot(config={"plugins": {"risk_limits": risk_limits}})


def at(bot, when: datetime) -> None:
    bot.clock.advance((when - bot.clock.now()).total_seconds())


# -- per order --------------------------------------------------------------------------------


def test_confidence_threshold(replay_bot):
    bot = limits_bot(replay_bot)
    assert judge(bot, make_intent(confidence=0.9)).approved
    veto = judge(bot, make_intent(confidence=0.7))
    assert not veto.approved and veto.reason == "confidence 0.70 below min_confidence_threshold 0.75"
    assert "confidence 0.7499 below" in judge(bot, make_intent(confidence=0.7499)).reason  # never "0.75 below 0.75"


def test_reward_risk(replay_bot):
    bot = limits_bot(replay_bot)
    assert judge(bot, make_intent(stop_pct=2, target_pct=4)).approved  # exactly 2.0 passes
    veto = judge(bot, make_intent(stop_pct=2, target_pct=3))
    assert not veto.approved and veto.reason.startswith("reward/risk 1.50 below min_reward_risk 2 (target 103, stop 98")
    assert "reward/risk unknown" in judge(bot, make_intent(stop_pct=0)).reason


def test_position_size_cap_from_trading_section(replay_bot):
    bot = limits_bot(replay_bot)
    assert judge(bot, make_intent(notional=10)).approved
    assert judge(bot, make_intent(notional=10.5)).reason == "notional 10.50 USDT above max_position_usd 10"


def test_below_the_markets_minimum_notional_is_vetoed_not_upsized(replay_bot):
    bot = limits_bot(replay_bot)
    candles = Candles(timeframe="5m", timestamp=[0], open=[100.0], high=[100.0], low=[100.0], close=[100.0],
                      volume=[1.0])
    bot.ctx.snapshots = [MarketSnapshot(symbol="BTC/USDT", time=bot.clock.now(), price=100.0, candles=candles,
                                        extras={"min_notional": 5})]
    assert judge(bot, make_intent(notional=6)).approved
    veto = judge(bot, make_intent(notional=4))
    assert veto.reason == "notional 4.00 USDT below the market's minimum 5.00 USDT (not upsized)"


def test_total_exposure_counts_positions_and_pending_orders(replay_bot):
    bot = limits_bot(replay_bot)
    hold(bot, "ETH/USDT", notional=15)
    assert judge(bot, make_intent("BTC/USDT", notional=10)).approved  # 15 + 10 <= 30
    bot.cycle_approved.append(make_intent("SOL/USDT", notional=10, tag="earlier"))  # approved earlier this cycle
    veto = judge(bot, make_intent("BTC/USDT", notional=10))
    assert veto.reason == "exposure 15.00 + pending 10.00 + 10.00 USDT above max_total_exposure_usd 30"


def test_one_position_per_symbol(replay_bot):
    bot = limits_bot(replay_bot)
    hold(bot, "BTC/USDT", direction=Action.SHORT)
    assert judge(bot, make_intent("BTC/USDT")).reason == "already short BTC/USDT"
    assert judge(bot, make_intent("ETH/USDT")).approved


# -- per day and week ---------------------------------------------------------------------------


def test_max_trades_per_day_in_a_replay(replay_bot, run_bot):
    bot = limits_bot(replay_bot, max_trades_per_day=2)
    run_bot(bot, 60)  # 16:40 to 07:40 the next day
    opened = [t.opened_at for t in bot.state.trades] + [p.opened_at for p in bot.state.positions.values()]
    per_day = {day: sum(1 for t in opened if t.date() == day) for day in {t.date() for t in opened}}
    assert opened and max(per_day.values()) <= 2, per_day
    assert any("positions opened today" in v["reasons"] and "max_trades_per_day 2" in v["reasons"]
               for v in bot.state.vetoes)


def test_trades_per_day_counts_days_in_the_configured_timezone(replay_bot):
    bot = limits_bot(replay_bot, max_trades_per_day=1, timezone="Asia/Tokyo")  # now: Jan 1 16:40 UTC = Jan 2 01:40 JST
    now = bot.clock.now()
    position = hold(bot, "ETH/USDT", now=now - timedelta(hours=2))  # 23:40 JST on Jan 1: another day in Tokyo
    from gobot_hookspecs import Fill

    fill = Fill(order_id="o1", client_order_id=position.client_order_id, symbol="ETH/USDT", side=Side.BUY,
                purpose="open", amount=position.amount, price=100.0, time=now - timedelta(hours=2))
    notify(bot, "gobot_on_fill", fill=fill)
    assert judge(bot, make_intent("BTC/USDT")).approved
    position = hold(bot, "SOL/USDT", now=now)
    notify(bot, "gobot_on_fill", fill=fill.model_copy(update={"client_order_id": position.client_order_id,
                                                              "symbol": "SOL/USDT",
                                                             "time": now - timedelta(minutes=30)}))
    veto = judge(bot, make_intent("BTC/USDT"))
    assert veto.reason == "1 positions opened today (2026-01-02 Asia/Tokyo), max_trades_per_day 1"


def test_daily_loss_limit_blocks_for_the_rest_of_the_day(replay_bot):
    bot = limits_bot(replay_bot, daily_loss_limit_usd=3, weekly_loss_limit_usd=0)
    hold(bot, "ETH/USDT", notional=10, price=100.0)
    notify(bot, "gobot_on_scan_end", snapshots=[])  # the day's first look: equity 100
    assert judge(bot, make_intent("BTC/USDT")).approved
    bot.portfolio.mark({"ETH/USDT": 65.0})  # unrealised -3.50
    veto = judge(bot, make_intent("BTC/USDT"))
    assert veto.reason == "daily loss 3.50 USDT reached daily_loss_limit_usd 3: no new trades until 01-02 00:00 UTC"
    bot.portfolio.mark({"ETH/USDT": 100.0})  # recovered: the day stays blocked
    assert "daily loss 3.50 USDT reached" in judge(bot, make_intent("BTC/USDT")).reason
    assert [a.kind for a in bot.ctx.pending_alerts] == ["loss_limit"]
    at(bot, datetime(2026, 1, 2, 0, 5, tzinfo=timezone.utc))
    assert judge(bot, make_intent("BTC/USDT")).approved


def test_weekly_loss_limit_blocks_until_monday(replay_bot):
    bot = limits_bot(replay_bot, daily_loss_limit_usd=0, weekly_loss_limit_usd=5)
    hold(bot, "ETH/USDT", notional=10, price=100.0)
    notify(bot, "gobot_on_scan_end", snapshots=[])
    at(bot, datetime(2026, 1, 3, 10, tzinfo=timezone.utc))  # Saturday, a later day of the same week
    bot.portfolio.mark({"ETH/USDT": 45.0})  # -5.50
    veto = judge(bot, make_intent("BTC/USDT"))
    assert veto.reason == "weekly loss 5.50 USDT reached weekly_loss_limit_usd 5: no new trades until 01-05 00:00 UTC"
    at(bot, datetime(2026, 1, 5, 0, 1, tzinfo=timezone.utc))  # Monday
    assert judge(bot, make_intent("BTC/USDT")).approved


# -- per symbol and time of day -------------------------------------------------------------------


def test_symbol_cooldown_after_a_closed_trade(replay_bot):
    bot = limits_bot(replay_bot, symbol_cooldown_minutes=180)
    now = bot.clock.now()
    notify(bot, "gobot_on_trade_closed", trade=trade("BTC/USDT", pnl=0.5, closed_at=now - timedelta(minutes=60)))
    veto = judge(bot, make_intent("BTC/USDT"))
    assert veto.reason == ("cooldown on BTC/USDT: a trade closed 60 min ago, symbol_cooldown_minutes 180 "
                           "(free at 01-01 18:40 UTC)")
    assert judge(bot, make_intent("ETH/USDT")).approved
    bot.clock.advance(120 * 60)
    assert judge(bot, make_intent("BTC/USDT")).approved


def test_low_liquidity_hours_are_utc(replay_bot):
    bot = limits_bot(replay_bot, low_liquidity_hours=["02:00-04:00"])
    at(bot, datetime(2026, 1, 2, 2, 30, tzinfo=timezone.utc))
    assert judge(bot, make_intent()).reason == "low-liquidity hours 02:00-04:00 UTC (now 02:30)"
    at(bot, datetime(2026, 1, 2, 4, 0, tzinfo=timezone.utc))
    assert judge(bot, make_intent()).approved


def test_a_window_may_wrap_midnight(replay_bot):
    bot = limits_bot(replay_bot, low_liquidity_hours=["23:30-00:30"])
    at(bot, datetime(2026, 1, 2, 0, 15, tzinfo=timezone.utc))
    assert "low-liquidity hours 23:30-00:30 UTC" in judge(bot, make_intent()).reason


def test_a_malformed_window_is_a_config_error(replay_bot):
    from gobot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"plugins.risk_limits.low_liquidity_hours.*'2-4' is not a UTC window"):
        limits_bot(replay_bot, low_liquidity_hours=["2-4"])


# -- volatility and correlation, on real price series ---------------------------------------------


def hourly(path: Path) -> dict[int, tuple[float, float, float, float]]:
    """1h OHLC straight from a 5m CSV file (an independent resampling, for reference numbers)."""
    out: dict[int, list[float]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            ts, o, h, lo, c = int(row["timestamp_ms"]), *(float(row[k]) for k in ("open", "high", "low", "close"))
            bucket = ts - ts % HOUR
            if bucket not in out:
                out[bucket] = [o, h, lo, c]
            else:
                out[bucket][1], out[bucket][2], out[bucket][3] = max(out[bucket][1], h), min(out[bucket][2], lo), c
    return {k: tuple(v) for k, v in sorted(out.items())}


def reference_atr_ratio(path: Path | dict, now_ms: int, days=30, period=14) -> float:
    """ATR% (simple mean of ``period`` true ranges) of the last closed hour over its median across ``days``."""
    table = hourly(path) if isinstance(path, Path) else path
    bars = [v for k, v in table.items() if k + HOUR <= now_ms][-(days * 24 + period + 1):]
    ranges = [max(h - lo, abs(h - bars[i - 1][3]), abs(lo - bars[i - 1][3]))
              for i, (_, h, lo, _) in enumerate(bars) if i]
    atr_pct = [sum(ranges[j - period:j]) / period / bars[j][3] * 100 for j in range(period, len(ranges) + 1)]
    return atr_pct[-1] / statistics.median(atr_pct)


def market_bot(replay_bot, data_dir: Path, symbols: list[str], start: datetime, **risk_limits):
    config = {"trading": {"symbols": symbols},
              "plugins": {"replay": {"data_dir": str(data_dir), "start": start.isoformat()},
                          "risk_limits": {"volatility_multiplier": 3.0, "max_correlation": 0.8, **risk_limits}}}
    return replay_bot(config=config)


def test_volatility_on_the_bundled_data(replay_bot):
    when = datetime(2026, 1, 8, 2, tzinfo=timezone.utc)  # the bundled BTC/USDT's most agitated hour
    ratio = reference_atr_ratio(BUNDLED / "BTC_USDT-5m.csv", int(when.timestamp() * 1000))
    assert 1.5 < ratio < 3
    calm = market_bot(replay_bot, BUNDLED, ["BTC/USDT"], when)
    assert judge(calm, make_intent("BTC/USDT")).approved  # below the design's 3x
    strict = market_bot(replay_bot, BUNDLED, ["BTC/USDT"], when, volatility_multiplier=1.5)
    veto = judge(strict, make_intent("BTC/USDT"))
    assert (veto.reason.startswith("high volatility on BTC/USDT: ATR% ")
            and f"is {ratio:.1f}x its 30-day median" in veto.reason)
    assert veto.reason.endswith("(volatility_multiplier 1.5)")


def test_a_volatility_burst_is_vetoed_at_the_design_default(replay_bot, tmp_path):
    """The bundled BTC/USDT with its last 6 hours' ranges widened 8x (a burst a calm market never shows)."""
    when = datetime(2026, 1, 8, tzinfo=timezone.utc)
    burst_from = int((when - timedelta(hours=6)).timestamp() * 1000)
    data = tmp_path / "burst"
    data.mkdir()
    rows = list(csv.reader((BUNDLED / "BTC_USDT-5m.csv").open()))
    with (data / "BTC_USDT-5m.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(rows[0])
        for ts, o, h, lo, c, v in rows[1:]:
            o, h, lo, c = map(float, (o, h, lo, c))
            if int(ts) >= burst_from:
                h, lo = c + (h - c) * 8 + c * 0.004, c - (c - lo) * 8 - c * 0.004
            writer.writerow([ts, o, h, lo, c, v])
    ratio = reference_atr_ratio(data / "BTC_USDT-5m.csv", int(when.timestamp() * 1000))
    assert ratio > 3
    veto = judge(market_bot(replay_bot, data, ["BTC/USDT"], when), make_intent("BTC/USDT"))
    assert "high volatility on BTC/USDT" in veto.reason and f"is {ratio:.1f}x its 30-day median" in veto.reason


def test_correlation_on_the_bundled_data(replay_bot, tmp_path):
    """BTC and ETH of the bundled data move independently; a coin that tracks BTC does not."""
    data = tmp_path / "tracker"
    data.mkdir()
    for name in ("BTC_USDT-5m.csv", "ETH_USDT-5m.csv"):
        (data / name).write_bytes((BUNDLED / name).read_bytes())
    rows = list(csv.reader((BUNDLED / "BTC_USDT-5m.csv").open()))
    with (data / "WBTC_USDT-5m.csv").open("w", newline="") as handle:  # wrapped BTC: BTC's price, 0.03 % above
        writer = csv.writer(handle)
        writer.writerow(rows[0])
        writer.writerows([r[0], *(float(x) * 1.0003 for x in r[1:5]), r[5]] for r in rows[1:])
    when = datetime(2026, 1, 9, tzinfo=timezone.utc)
    bot = market_bot(replay_bot, data, ["BTC/USDT", "ETH/USDT", "WBTC/USDT"], when, volatility_multiplier=0)
    hold(bot, "BTC/USDT", direction=Action.LONG)
    assert judge(bot, make_intent("ETH/USDT")).approved
    veto = judge(bot, make_intent("WBTC/USDT"))
    assert veto.reason == ("over-correlated: WBTC/USDT and open long BTC/USDT correlate +1.00 over 7 days of 1h "
                           "returns (same direction), max_correlation 0.8")
    assert judge(bot, make_intent("WBTC/USDT", side=Side.SELL)).approved  # short the tracker against a long: a hedge


def shared_file(symbol: str) -> Path:
    path = SHARED / f"{symbol.replace('/', '_')}-5m.csv"
    if not path.exists():
        pytest.skip(f"{path} not present (real exchange candles live outside the repository)")
    return path


def test_volatility_on_real_exchange_candles(replay_bot):
    path = shared_file("LTC/BTC")
    bars = hourly(path)
    stamps = list(bars)
    ratios = {t + HOUR: reference_atr_ratio(bars, t + HOUR) for t in stamps[48::3]}
    wild = max(ratios, key=ratios.get)
    calm = min(ratios, key=lambda t: abs(ratios[t] - 1.0))
    threshold = (ratios[wild] + 1.0) / 2
    to_time = lambda ms: datetime.fromtimestamp(ms / 1000, tz=timezone.utc)  # noqa: E731
    blocked = market_bot(replay_bot, SHARED, ["LTC/BTC"], to_time(wild), volatility_multiplier=threshold)
    veto = judge(blocked, make_intent("LTC/BTC", price=0.02))
    assert "high volatility on LTC/BTC" in veto.reason and f"{ratios[wild]:.1f}x" in veto.reason
    passed = market_bot(replay_bot, SHARED, ["LTC/BTC"], to_time(calm), volatility_multiplier=threshold)
    assert judge(passed, make_intent("LTC/BTC", price=0.02)).approved


def test_correlation_on_real_exchange_candles(replay_bot):
    a, b = shared_file("ETH/BTC"), shared_file("ETC/BTC")
    ha, hb = hourly(a), hourly(b)
    now = min(ha) + 12 * 24 * HOUR
    window = [t for t in sorted(set(ha) & set(hb)) if now - 7 * 24 * HOUR <= t and t + HOUR <= now]
    pairs = [(ha[t][3] / ha[t - HOUR][3] - 1, hb[t][3] / hb[t - HOUR][3] - 1)
             for t in window if t - HOUR in ha and t - HOUR in hb]
    rho = statistics.correlation([x for x, _ in pairs], [y for _, y in pairs])
    assert 0.1 < rho < 0.9
    when = datetime.fromtimestamp(now / 1000, tz=timezone.utc)
    for limit, approved in ((rho - 0.05, False), (rho + 0.05, True)):
        bot = market_bot(replay_bot, SHARED, ["ETH/BTC", "ETC/BTC"], when, volatility_multiplier=0,
                         max_correlation=limit)
        hold(bot, "ETH/BTC", price=0.05)
        verdict = judge(bot, make_intent("ETC/BTC", price=0.002))
        assert verdict.approved is approved, verdict.reason
        if not approved:
            assert f"correlate {rho:+.2f} over 7 days of 1h returns" in verdict.reason


# -- unknown data fails closed ----------------------------------------------------------------------


def test_no_candle_history_is_a_veto(replay_bot):
    bot = limits_bot(replay_bot, volatility_multiplier=3.0)
    veto = judge(bot, make_intent("DOGE/USDT"))
    assert veto.reason.startswith("volatility unknown: no 1h candles for DOGE/USDT")
    assert veto.reason.endswith("(fail closed; volatility_multiplier = 0 turns this check off)")


def test_too_little_history_is_a_veto(replay_bot):
    # the replay starts 16 hours into its data
    bot = limits_bot(replay_bot, volatility_multiplier=3.0, min_history_hours=24)
    assert judge(bot, make_intent()).reason.startswith("volatility unknown: only 16 h of 1h history for BTC/USDT, "
                                                       "min_history_hours 24")


def test_a_failing_market_data_plugin_fails_closed(replay_bot):
    class BrokenFeed:
        @hookimpl(tryfirst=True)
        def gobot_fetch_candles(self, symbol):
            raise RuntimeError("exchange unreachable")

    bot = replay_bot(config={"plugins": {"risk_limits": {"volatility_multiplier": 3.0}}},
                     plugins=[("broken_feed", BrokenFeed())])
    veto = judge(bot, make_intent())
    assert not veto.approved
    assert veto.reason == ("risk check raised PluginError: plugin 'broken_feed' in gobot_fetch_candles: "
                           "RuntimeError: exchange unreachable (fail closed)")


def test_market_checks_are_skipped_once_an_order_is_vetoed(replay_bot):
    asked = []

    class CountingFeed:
        @hookimpl(tryfirst=True)
        def gobot_fetch_candles(self, symbol):
            asked.append(symbol)

    bot = replay_bot(config={"plugins": {"risk_limits": {"volatility_multiplier": 3.0}}},
                     plugins=[("feed", CountingFeed())])
    judge(bot, make_intent(confidence=0.1))
    assert asked == []
