"""The drift plugin end to end: a testnet bot (the binance plugin through ccxt) against the loopback
Binance server, whose market clock the test steps a minute at a time (issue 21).

Each trade takes three cycles: the entry is sent; two minutes later the twin's entry candle has closed;
then the server's price jumps to the target or beyond the stop, and a minute later both the live trade
and its twin are closed and measured.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot.run.plugin_statuses import plugin_statuses
from gobot.run.state import StateStore
from gobot_hookspecs import Action, Signal, hookimpl
from gobot_plugins.archiver import Archiver
from gobot_plugins.archiver.report import build_report
from gobot_plugins.archiver.store import ArchiveStore, default_url
from gobot_plugins.drift import store
from gobot_plugins.drift.attribution import PARTS
from gobot_plugins.drift.cli import summarise
from servers.binance import BinanceTestServer
from servers.bots import NOT_NEEDED, MovableWallClock, Recorder, binance_bot, keys

PRICE = 50000.0


class Wave:
    """A strategy for the band (momentum over five candles) and the test's scripted entries in its name."""

    name = "wave"
    parameters: dict = {}

    def __init__(self) -> None:
        self.want: Action | None = None

    def signal(self, symbol, candles, params):
        close = candles.close
        if len(close) < 6:
            return Signal(symbol=symbol, action=Action.HOLD, confidence=0.5)
        rising = close[-1] > close[-6]
        return Signal(symbol=symbol, action=Action.LONG if rising else Action.HOLD, confidence=0.8,
                      stop_loss=close[-1] * 0.997, take_profit=close[-1] * 1.006)

    @hookimpl
    def gobot_register_strategies(self, register):
        register(self)

    @hookimpl
    def gobot_generate_ideas(self, snapshots):
        action, self.want = self.want or Action.HOLD, None
        return [Signal(symbol=s.symbol, action=action, confidence=0.9, strategy="wave", strategy_version=1,
                       rationale="scripted") for s in snapshots]


@dataclass
class Desk:
    """The bot, the server and the clocks they share; ``trade(...)`` runs one trade's three cycles."""

    server: BinanceTestServer
    bot: Any
    wave: Wave
    clock: MovableWallClock
    recorder: Recorder
    breached_after: int | None = None
    trades: int = 0
    notes: list = field(default_factory=list)

    def advance(self, minutes: int) -> None:
        self.clock.offset += timedelta(minutes=minutes)
        self.server.market_offset_ms += minutes * 60_000

    async def trade(self, outcome: str, *, delay_to: float | None = None) -> None:
        self.wave.want = Action.LONG
        if delay_to is not None:
            self.server.hold_market_orders = True
        await self.bot.run_cycle()  # the entry is sent (and fills at once, unless held)
        self.advance(2)
        await self.bot.run_cycle()  # the twin's entry candle closed
        if delay_to is not None:  # the market moved before the held entry filled
            self.server.set_price("BTCUSDT", delay_to)
            self.server.release_held()
            self.advance(1)
            await self.bot.run_cycle()  # the late fill arrives; its candle is seen
        position = self.bot.state.positions.get("BTC/USDT")
        assert position is not None, "the entry filled"
        beyond = position.take_profit * 1.001 if outcome == "win" else position.stop_loss * 0.999
        self.server.set_price("BTCUSDT", beyond)
        self.advance(1)
        await self.bot.run_cycle()  # the exit is synced, the twin exits on the same candle
        self.server.set_price("BTCUSDT", PRICE)
        self.trades += 1
        if self.breached_after is None and self.bot.state.plugin_state.get("drift", {}).get("breach"):
            self.breached_after = self.trades

    async def missed(self) -> None:
        """An entry that expires with nothing filled; the twin enters, and the price runs to its target."""
        self.server.fill_ratio = Decimal(0)
        self.wave.want = Action.LONG
        await self.bot.run_cycle()
        self.advance(2)
        await self.bot.run_cycle()  # the twin's entry candle closed
        self.server.fill_ratio = Decimal(1)
        self.server.set_price("BTCUSDT", PRICE * 1.05)
        for _ in range(4):  # the twin's target, then the grace for a late live fill
            self.advance(1)
            await self.bot.run_cycle()


def desk(tmp_path, monkeypatch, server: BinanceTestServer, live: bool = False, archive: bool = False,
         **drift: Any) -> Desk:
    keys(monkeypatch)
    wave, clock, recorder = Wave(), MovableWallClock(), Recorder()
    plugins = {"drift": {"band_candles": 1000, "min_band_trades": 5, "history_hours": 0} | drift,
               "risk_limits": {"max_total_exposure_usd": 1000, "low_liquidity_hours": [], "symbol_cooldown_minutes": 0,
                               "max_trades_per_day": 0, "volatility_multiplier": 0},
               "circuit_breaker": {"circuit_breaker_threshold": 1000, "max_consecutive_losses": 1000}}
    config = {"plugins": plugins, "backtest": {"fee_percent": 0.1, "slippage_percent": 0.0}}
    extra = [("clock", clock)]  # drift is a default plugin
    if archive:  # the archiver on its defaults (<state_dir>/archive.db), under a name binance_bot does not disable
        extra.append(("archive", Archiver()))
    bot = binance_bot(tmp_path / "state", server, ideas=wave, recorder=recorder, config=config, plugins=extra,
                      live=live, mode="live" if live else "testnet")
    return Desk(server, bot, wave, clock, recorder)


def rows(desk_: Desk) -> dict[str, dict]:
    return {row["coid"]: row for row in store.trades(desk_.bot.settings.state_path)}


def test_slippage_a_partial_fill_a_delayed_fill_and_bnb_fees_add_up_to_the_pnl_gap_to_the_cent(tmp_path, monkeypatch):
    with BinanceTestServer(commission_asset="BNB") as server:
        d = desk(tmp_path, monkeypatch, server, on_breach="alert", archive=True)  # measured here, not acted on

        async def go():
            await d.bot.startup()
            try:
                server.slippage = Decimal("0.002")
                await d.trade("loss")  # the entry and the stop fill 0.2 % worse
                server.slippage = Decimal(0)
                server.fill_ratio = Decimal("0.5")
                await d.trade("win")  # half the entry fills
                server.fill_ratio = Decimal(1)
                await d.trade("win", delay_to=PRICE * 1.002)  # the entry fills a candle later, 0.2 % higher
                await d.missed()  # nothing fills (the order expires): the twin trades alone
            finally:
                await d.bot.shutdown("test over")

        asyncio.run(go())
        trades = {t.client_order_id: t for t in d.bot.state.trades}
        measured = rows(d)
        [missed] = [row for row in measured.values() if row["kind"] == "missed"]
        assert missed["live_pnl"] == 0 and missed["twin_pnl"] > 0 and missed["twin_exit_reason"] == "take_profit"
        assert abs(missed["missed_or_partial"] + missed["fees"] - missed["gap"]) < 1e-9
        assert abs(missed["gap"] + missed["twin_pnl"]) < 1e-9
        del measured[missed["coid"]]
        assert set(measured) == set(trades) and len(trades) == 3
        for coid, trade in trades.items():
            row = measured[coid]
            assert row["live_pnl"] == pytest.approx(trade.pnl, abs=1e-9)
            gap = trade.pnl - row["twin_pnl"]
            parts = sum(row[p] for p in PARTS)
            assert abs(parts - gap) < 1e-6  # to the cent, and far below it
            assert row["commissions"].get("BNB", 0) > 0 and row["fees"] != 0
        slipped, partial, delayed = (measured[t.client_order_id] for t in d.bot.state.trades)
        notional = PRICE * trades[slipped["coid"]].amount
        assert slipped["entry_slippage"] == pytest.approx(-0.002 * notional, rel=0.2)
        assert slipped["exit_slippage"] < 0 and slipped["missed_or_partial"] == pytest.approx(0, abs=0.01)
        assert partial["missed_or_partial"] < -0.5  # the twin's win on the half that never filled
        assert delayed["entry_delay"] == pytest.approx(-0.002 * notional, rel=0.2)
        [total] = summarise(store.trades(d.bot.settings.state_path), "all")  # what `gobot drift report --by all` shows
        assert total["trades"] == 4 and total["missed"] == 1 and abs(total["cumulative"] - total["gap"]) < 1e-9
        bnb = sum(row["commissions"].get("BNB", 0) for row in measured.values())
        assert total["commissions"]["BNB"] == pytest.approx(bnb) and bnb > 0
        assert abs(delayed["entry_slippage"]) < abs(delayed["entry_delay"]) / 2
        archived = ArchiveStore(default_url(d.bot.settings.state_path))  # gobot_on_drift -> the archive
        try:
            archive_rows = {row["client_order_id"]: row for row in archived.rows("drift")}
            report = build_report(archived)["drift"]
        finally:
            archived.close()
        assert set(archive_rows) == set(measured) | {missed["coid"]}
        assert {row["mode"] for row in archive_rows.values()} == {"testnet"}
        assert archive_rows[missed["coid"]]["kind"] == "missed" and archive_rows[missed["coid"]]["live_pnl"] == 0
        for coid, row in archive_rows.items():
            mine = measured.get(coid, missed)
            assert all(row[p] == pytest.approx(mine[p], abs=1e-12) for p in (*PARTS, "gap", "twin_pnl"))
        [everything] = report["by"]["all"]  # what `gobot report` shows
        assert (report["trades"], report["missed"]) == (4, 1) and everything["gap"] == pytest.approx(total["gap"])


def test_an_edge_that_turns_to_losses_is_detected_within_the_documented_trades_and_paused(tmp_path, monkeypatch):
    with BinanceTestServer() as server:
        d = desk(tmp_path, monkeypatch, server, on_breach="pause")

        async def go():
            await d.bot.startup()
            try:
                for _ in range(4):
                    await d.trade("win")
                assert not d.bot.state.plugin_state["drift"]["breach"]
                turned = d.trades
                band = d.bot.state.plugin_state["drift"]["bands"]["wave@v1"]
                assert "calibration" in band, {k: band[k] for k in ("trades", "reference")}
                limit = band["calibration"]["loss_delay"]
                for _ in range(limit + 1):
                    if d.breached_after is not None:
                        break
                    await d.trade("loss")
                return turned, limit
            finally:
                await d.bot.shutdown("test over")

        turned, limit = asyncio.run(go())
        assert d.breached_after is not None and d.breached_after - turned <= limit
        assert d.bot.store.paused
        [alert] = [a for a in d.recorder.alerts if a.kind == "drift_breach"]
        assert "left the backtest band" in alert.text and alert.data["action"] == "pause"
        status = asyncio.run(plugin_statuses(d.bot))["drift"]
        band = status.data["bands"]["wave@v1"]
        assert status.state == "BREACH" and band["cusum"] > band["h"] and band["loss_delay"] == limit
        assert f"CUSUM wave@v1 {band['cusum']:.2f} of {band['h']:.2f}; BREACH (pause)" in status.reason
        assert band["band"][0] < band["backtest_mean_r"] < band["band"][1] and band["live_mean_r"] < band["band"][0]
        answers = asyncio.run(d.bot.risk_reset("the market changed; strategy reviewed"))
        assert ("drift", "breach cleared; CUSUM and the rolling gate window back to zero") in answers
        assert not d.bot.store.paused and d.bot.state.plugin_state["drift"]["cusum"]["wave@v1"]["s"] == 0


LIVE_CONFIG = """
state_dir = "{state}"
[trading]
symbols = ["BTC/USDT"]
max_position_usd = 100
initial_capital_usd = 10000
[plugins]
enable = ["binance", "adaptive_rate_limit", "drift"]
disable = {disable}
[plugins.binance]
mode = "live"
api_url = "{url}"
[plugins.drift]
on_breach = "pause"
gate_window = 5
[plugins.risk_limits]
max_total_exposure_usd = 1000
low_liquidity_hours = []
symbol_cooldown_minutes = 0
max_trades_per_day = 0
volatility_multiplier = 0
"""


def test_live_the_gate_keeps_watching_a_breach_pauses_and_gobot_validate_live_fails(tmp_path, monkeypatch):
    with BinanceTestServer() as server:
        # no band (too few backtest trades): only the go-live gate watches
        d = desk(tmp_path, monkeypatch, server, live=True, on_breach="pause", gate_window=5, min_band_trades=1000)

        async def go():
            await d.bot.startup()
            try:
                for outcome in ("win", "win", "loss", "loss", "loss"):
                    await d.trade(outcome)
            finally:
                await d.bot.shutdown("test over")

        asyncio.run(go())
        breach = d.bot.state.plugin_state["drift"]["breach"]
        assert d.breached_after == 5 and breach["reason"].startswith("go-live gate: live win rate 40% over the last 5")
        assert d.bot.store.paused
        config = tmp_path / "config.toml"
        config.write_text(LIVE_CONFIG.format(state=d.bot.settings.state_path, url=server.url,
                                             disable=json.dumps(list(NOT_NEEDED))), encoding="utf-8")
        result = CliRunner().invoke(cli, ["validate", "--live", "--json", "--config", str(config)])
        assert result.exit_code == 1, result.output
        live = json.loads(result.output)["live"]["lines"]
        assert live[0]["evidence"].startswith("5 closed live trades; testnet: 0")
        assert "40.0% won of 5" in live[1]["evidence"] and live[1]["passed"]  # judged once 100 closed
        [risk] = [line for line in live if line["name"] == "risk plugin"]
        assert risk["evidence"].startswith("drift: drift breach (pause)") and not risk["passed"]
        table = CliRunner().invoke(cli, ["validate", "--live", "--config", str(config)])
        assert table.exit_code == 1 and "After launch: live, rolling" in table.output
        assert "Live checks fail: 1 of 3." in table.output
        asyncio.run(d.bot.risk_reset("strategy reviewed"))  # what `gobot risk reset` runs
        d.bot.persist()
        again = CliRunner().invoke(cli, ["validate", "--live", "--config", str(config)])
        assert again.exit_code == 0 and "Live checks pass." in again.output, again.output
        assert not StateStore(d.bot.settings.state_path).paused
