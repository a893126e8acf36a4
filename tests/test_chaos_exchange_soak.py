"""A long spot run against the loopback Binance server with everything that used to make the books
drift at once: commissions paid in BNB, partly filled entries, stops and targets triggered by a
moving market, and the shared rate-limit store (the real Redis, behind a proxy) cut mid-run and
restored. It must end with the bot's book equal to the exchange's, and nothing unexplained.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

from chaos_support import count, record_figures
from gobot_hookspecs import Action, Signal, hookimpl
from servers.binance import BinanceTestServer
from servers.bots import Recorder, binance_bot, keys
from servers.tcp_proxy import TcpProxy
from test_adaptive_rate_limit import redis_or_skip
from test_binance_book import assert_books_agree

#: A trade as often as the market allows: no cooldown, no daily caps, the breaker out of the way.
RISK = {"max_total_exposure_usd": 1000, "symbol_cooldown_minutes": 0, "max_trades_per_day": 0,
        "low_liquidity_hours": [], "daily_loss_limit_usd": 10**6, "weekly_loss_limit_usd": 10**6}
BREAKER_OFF = {"circuit_breaker_threshold": 10**6, "max_consecutive_losses": 10**6, "failure_threshold": 10**6}


class EnterWhenFlat:
    """LONG whenever the bot holds nothing (so every stop or target is followed by a new entry)."""

    holding = False  # True: HOLD from now on

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        action = Action.HOLD if self.holding or ctx.positions() else Action.LONG
        return [Signal(symbol=s.symbol, action=action, confidence=0.9, rationale="soak") for s in snapshots]


def test_bnb_commissions_partial_fills_triggered_stops_and_a_redis_cut_end_with_the_books_equal(tmp_path, monkeypatch):
    redis_or_skip()
    keys(monkeypatch)
    cycles, rng = count(40, 150), random.Random(15)
    with BinanceTestServer(commission_asset="BNB") as server, TcpProxy("127.0.0.1", 6379) as proxy:
        ideas, recorder = EnterWhenFlat(), Recorder()
        share = f"redis://127.0.0.1:{proxy.port}/0"
        bot = binance_bot(tmp_path / "state", server, ideas=ideas, recorder=recorder,
                          config={"plugins": {"adaptive_rate_limit": {"share": share}, "risk_limits": RISK,
                                              "circuit_breaker": BREAKER_OFF}})
        cut_at, back_at = cycles // 3, cycles // 3 + max(5, cycles // 10)
        price = 50000.0

        async def go():
            nonlocal price
            await bot.startup()
            try:
                for i in range(cycles):
                    if i == cut_at:
                        proxy.cut()
                    if i == back_at:
                        proxy.restore()
                    server.fill_ratio = Decimal("0.5") if i % 2 else Decimal(1)  # every other entry fills half
                    await bot.run_cycle()
                    price = round(price * (1 + rng.uniform(-0.025, 0.025)), 2)
                    server.set_price("BTCUSDT", price)
                server.fill_ratio = Decimal(1)
                ideas.holding = True  # the last fills come in
                for _ in range(3):
                    await bot.run_cycle()
            finally:
                await bot.shutdown("soak over")

        asyncio.run(go())
        reasons = [t.exit_reason for t in bot.state.trades]
        store_alerts = [(a.severity.value, a.title) for a in recorder.alerts if a.kind == "rate_limit_store"]
        unexplained = [a.text for a in recorder.alerts if a.kind == "reconciliation"]
        coids = [o["clientOrderId"] for o in server.state.orders.values()]
        partial = sum(1 for o in server.state.orders.values() if o["status"] == "EXPIRED" and o["executedQty"])
        bnb = sum(f.commissions.get("BNB", 0) for f in recorder.fills)
        record_figures("exchange soak (BNB, partial fills, stops, Redis cut)", cycles=cycles, trades=len(reasons),
                       stops=reasons.count("stop_loss"), targets=reasons.count("take_profit"), partial_entries=partial,
                       redis_cut_cycles=back_at - cut_at, divergences=len(unexplained), survived=True, lost=0)
        assert len(coids) == len(set(coids)), "a client order id twice"
        assert "stop_loss" in reasons and "take_profit" in reasons and partial >= 1
        assert abs(bnb - float(Decimal(1) - server.balance("BNB"))) < 1e-9  # every BNB commission booked, in BNB
        assert store_alerts[0][0] == "CRITICAL" and store_alerts[-1] == ("INFO", "Shared rate-limit budget back")
        assert unexplained == [], unexplained  # the plugin read every fill itself: nothing for the book check to book
        assert_books_agree(bot, server, futures=False)
