"""Paper execution semantics, on hand-made candles: next-open fills, fees, slippage, stop-loss and take-profit."""

import pytest

from gobot.run.bot import Bot
from gobot.testing import replay_settings
from gobot_hookspecs import Action, Signal, hookimpl

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
STEP = 300_000
FEE, SLIP = 0.001, 0.0005


class LongOnce:
    """Goes LONG BTC/USDT in the first cycle, HOLD afterwards."""

    @hookimpl
    def gobot_generate_ideas(self, ctx, snapshots):
        action = Action.LONG if ctx.iteration == 1 else Action.HOLD
        return [Signal(symbol=s.symbol, action=action, confidence=0.9) for s in snapshots]


def make_bot(tmp_path, plugin_set_factory, candles):
    """A bot whose market is ``candles`` (o, h, l, c): one 5m candle per cycle, starting after two."""
    data = tmp_path / "data"
    data.mkdir()
    rows = ["timestamp_ms,open,high,low,close,volume"]
    rows += [f"{T0 + i * STEP},{o},{h},{lo},{c},1" for i, (o, h, lo, c) in enumerate(candles)]
    (data / "BTC_USDT-5m.csv").write_text("\n".join(rows) + "\n")
    settings = replay_settings(tmp_path / "state", data, {
        "trading": {"symbols": ["BTC/USDT"]},
        "orchestrator": {"loop_interval": 300},
        "plugins": {"replay": {"warmup_candles": 2, "lookback_candles": 10},
                    "paper": {"fee_percent": 0.1, "slippage_percent": 0.05}},
    })
    return Bot(settings, plugin_set_factory(disable=["sma_rsi", "validator", "adjuster"],
                                            plugins=[("long_once", LongOnce())]))


FLAT = (100, 101, 99, 100)


def test_order_fills_at_next_candle_open_with_slippage_and_fee(tmp_path, plugin_set_factory, run_bot):
    bot = make_bot(tmp_path, plugin_set_factory, [FLAT, FLAT, (100.5, 101, 100, 100.8), (100.8, 101, 100.5, 100.9)])
    run_bot(bot, 3)
    position = bot.state.positions["BTC/USDT"]
    assert position.entry_price == pytest.approx(100.5 * (1 + SLIP))
    assert position.amount == pytest.approx(10 / 100)  # notional / the price the idea saw
    assert position.entry_fee == pytest.approx(0.1 * 100.5 * (1 + SLIP) * FEE)
    assert position.stop_loss == pytest.approx(98) and position.take_profit == pytest.approx(104)
    assert position.opened_at.timestamp() * 1000 == T0 + 2 * STEP


def test_take_profit_fills_at_the_target(tmp_path, plugin_set_factory, run_bot):
    bot = make_bot(tmp_path, plugin_set_factory, [FLAT, FLAT, (100.5, 101, 100, 100.8), (101, 104.5, 100.5, 104), FLAT])
    run_bot(bot, 4)
    [trade] = bot.state.trades
    entry = 100.5 * (1 + SLIP)
    assert trade.exit_reason == "take_profit" and trade.exit_price == pytest.approx(104)
    fees = 0.1 * entry * FEE + 0.1 * 104 * FEE
    assert trade.pnl == pytest.approx((104 - entry) * 0.1 - fees)
    assert bot.state.cash == pytest.approx(100 + trade.pnl)


def test_a_candle_touching_stop_and_target_counts_as_stop_loss(tmp_path, plugin_set_factory, run_bot):
    bot = make_bot(tmp_path, plugin_set_factory, [FLAT, FLAT, (100.5, 101, 100, 100.8), (100, 105, 97, 100), FLAT])
    run_bot(bot, 4)
    [trade] = bot.state.trades
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_price == pytest.approx(98 * (1 - SLIP))


def test_a_gap_through_the_stop_fills_at_the_open(tmp_path, plugin_set_factory, run_bot):
    bot = make_bot(tmp_path, plugin_set_factory, [FLAT, FLAT, (100.5, 101, 100, 100.8), (95, 96, 94, 95.5), FLAT])
    run_bot(bot, 4)
    [trade] = bot.state.trades
    assert trade.exit_reason == "stop_loss" and trade.exit_price == pytest.approx(95 * (1 - SLIP))
    assert trade.pnl < 0


def test_stop_is_checked_inside_the_entry_candle(tmp_path, plugin_set_factory, run_bot):
    bot = make_bot(tmp_path, plugin_set_factory, [FLAT, FLAT, (100.5, 101, 97.5, 99), FLAT])
    run_bot(bot, 3)
    [trade] = bot.state.trades
    assert trade.exit_reason == "stop_loss" and trade.opened_at == trade.closed_at


def test_the_audit_log_explains_the_trade(tmp_path, plugin_set_factory, run_bot):
    from gobot.run.audit import read_audit

    bot = make_bot(tmp_path, plugin_set_factory, [FLAT, FLAT, (100.5, 101, 100, 100.8), (101, 104.5, 100.5, 104), FLAT])
    run_bot(bot, 4)
    events = read_audit(tmp_path / "state" / "audit.jsonl")
    kinds = [e["event"] for e in events]
    for kind in ("signal", "risk_verdicts", "order", "fill", "trade_closed", "alert"):
        assert kind in kinds, kind
    verdicts = next(e for e in events if e["event"] == "risk_verdicts")
    assert verdicts["verdicts"][0]["plugin"] == "risk_limits" and verdicts["verdicts"][0]["approved"]
    order = next(e for e in events if e["event"] == "order")
    fills = [e for e in events if e["event"] == "fill"]
    assert fills[0]["fill"]["client_order_id"] == order["order"]["client_order_id"]
