"""The full life of a position on spot and USD-M futures, with a SIGKILL between every two steps.

Each scenario runs a real ``gobot start`` (testnet mode, the binance plugin through ccxt, against
the loopback Binance server) step by step: the test sets the market and the strategy's wish, starts
the bot, lets it complete its cycles, and SIGKILLs it — then the next step starts a new process on
the same state. Every scenario ends with the bot's positions, cash and trades equal to the
exchange's. docs/exchanges.md has the matrix as a table.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest

from servers.binance import API_KEY, API_SECRET, BinanceTestServer, Fault, Market, default_markets
from servers.bots import install_plugin_dist, write_start_config

GOBOT = str(Path(sys.executable).parent / "gobot")
TESTNET_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]

IDEAS_PLUGIN = '''
import json
import os
from pathlib import Path

from gobot_hookspecs import Action, Signal, hookimpl

@hookimpl
def gobot_generate_ideas(ctx, snapshots):
    """What the test's ideas.json says per symbol, HOLD otherwise."""
    wanted = json.loads(Path(os.environ["LIFECYCLE_IDEAS"]).read_text())
    return [Signal(symbol=s.symbol, action=Action(wanted.get(s.symbol, "HOLD")), confidence=0.9,
                   rationale="lifecycle step")
            for s in snapshots]
'''


@dataclass
class Lifecycle:
    """One account, one state directory, and a ``gobot start`` per step, each ended by SIGKILL."""

    folder: Path
    server: BinanceTestServer
    market: str
    share: str = "none"
    kills: int = 0
    outputs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config = write_start_config(self.folder, self.server.url, market=self.market, ideas="lifecycle_ideas",
                                         share=self.share)
        self.ideas = self.folder / "ideas.json"
        self.ideas.write_text("{}")
        site = install_plugin_dist(self.folder / "site", "lifecycle_ideas", IDEAS_PLUGIN)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GOBOT_")} | {
            "BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET, "LIFECYCLE_IDEAS": str(self.ideas),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}

    def state(self) -> dict[str, Any]:
        file = self.folder / "state" / "state.json"
        return json.loads(file.read_text()) if file.exists() else {"iteration": 0}

    def step(self, wanted: dict[str, str], cycles: int = 2, timeout: float = 60,
             kill_after_order: bool = False) -> None:
        """Run ``cycles`` more cycles wanting ``wanted`` (e.g. {"BTC/USDT": "LONG"}), then SIGKILL.

        ``kill_after_order``: SIGKILL the moment the exchange has executed the first order, before
        the bot reads the answer (its fill unknown, its position unprotected)."""
        self.ideas.write_text(json.dumps(wanted))
        target = self.state()["iteration"] + cycles
        process = subprocess.Popen([GOBOT, "start", "--config", str(self.config), "--max-iterations", "0", "--quiet"],
                                   env=self.env, cwd=self.folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        if kill_after_order:
            path = "/fapi/v1/order" if self.market == "futures" else "/api/v3/order"
            self.server.inject(Fault(path=path, method="POST", action="callback", when="after",
                                     callback=lambda: os.kill(process.pid, signal.SIGKILL)))
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        try:
            while self.state()["iteration"] < target:  # the cycle is persisted: the kill lands between two steps
                if kill_after_order and process.poll() == -signal.SIGKILL:
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gobot stopped or stalled before cycle {target}:\n{''.join(lines)[-3000:]}")
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            reader.join(10)
        self.kills += 1
        self.outputs.append("".join(lines))

    def books(self) -> tuple[float, float, list[dict]]:
        """(signed position, cash, trades) as the bot's state says."""
        state = self.state()
        position = state["positions"].get("BTC/USDT")
        held = 0.0 if position is None else position["amount"] * (1 if position["direction"] == "LONG" else -1)
        return held, state["cash"], state["trades"]

    def assert_books_agree(self) -> None:
        held, cash, trades = self.books()
        server = self.server
        if self.market == "futures":
            assert held == pytest.approx(float(server.position("BTCUSDT")), abs=1e-9)
            assert cash == pytest.approx(float(server.futures_wallet), abs=0.01)
            assert server.open_algo_orders() == [] if held == 0 else len(server.open_algo_orders()) == 2
        else:
            assert held == pytest.approx(float(server.balance("BTC")), abs=1e-5)  # up to one lot step of dust
            if held == 0:
                dust = server.balance("BTC") * Decimal(str(trades[-1]["exit_price"])) if trades else 0
                bnb = ((Decimal(1) - server.balance("BNB")) * server.prices["BNBUSDT"]
                       if server.commission_asset == "BNB" else 0)
                assert cash == pytest.approx(float(server.balance("USDT") + dust - bnb), abs=0.02)
                assert server.open_orders() == []
        coids = [o["clientOrderId"] for o in server.state.orders.values()]
        assert len(coids) == len(set(coids)), "a client order id twice on the exchange"


def spot_markets() -> list[Market]:
    return [Market(**{**m.__dict__, "order_types": TESTNET_TYPES}) if not m.futures else m for m in default_markets()]


# name: (market, server options, entry side, what happens on the exchange, expected exit reason, partial entry)
Event = Callable[[BinanceTestServer], None]
SCENARIOS: dict[str, tuple[str, dict, str, Event, str, bool]] = {
    "spot target hit (OCO)": ("spot", {}, "LONG", lambda s: s.set_price("BTCUSDT", 52100), "take_profit", False),
    "spot stop hit (OCO)": ("spot", {}, "LONG", lambda s: s.set_price("BTCUSDT", 48900), "stop_loss", False),
    "spot stop hit, BNB commission": ("spot", {"commission_asset": "BNB"}, "LONG",
                                      lambda s: s.set_price("BTCUSDT", 48900), "stop_loss", False),
    "spot stop-limit hit (testnet order types)": ("spot", {"markets": "testnet"}, "LONG",
                                                  lambda s: s.set_price("BTCUSDT", 48900), "stop_loss", False),
    "spot entry partly filled, target hit": ("spot", {}, "LONG", lambda s: s.set_price("BTCUSDT", 52100), "take_profit",
                                             True),
    "spot sold by hand": ("spot", {}, "LONG", lambda s: (cancel_open_orders(s), s.close_outside("BTCUSDT")),
                          "closed_outside", False),
    "futures target hit": ("futures", {}, "SHORT", lambda s: s.set_price("BTCUSDT", 47900), "take_profit", False),
    "futures stop hit": ("futures", {}, "LONG", lambda s: s.set_price("BTCUSDT", 48900), "stop_loss", False),
    "futures stop hit, no actualOrderId": ("futures", {"actual_order_id": False}, "SHORT",
                                           lambda s: s.set_price("BTCUSDT", 51100), "stop_loss", False),
    "futures entry partly filled, stop hit": ("futures", {}, "LONG", lambda s: s.set_price("BTCUSDT", 48900),
                                              "stop_loss", True),
    "futures closed by hand": ("futures", {}, "LONG", lambda s: s.close_outside("BTCUSDT", futures=True),
                               "closed_outside", False),
    "futures liquidation": ("futures", {}, "LONG", lambda s: s.close_outside("BTCUSDT", futures=True,
                                                                             prefix="autoclose-"),
                            "liquidation", False),
    "futures ADL": ("futures", {}, "SHORT", lambda s: s.close_outside("BTCUSDT", futures=True, prefix="adl_autoclose"),
                    "adl", False),
}


def cancel_open_orders(server: BinanceTestServer) -> None:
    with server.lock:
        for order in server.open_orders():
            server._cancel(server.state.orders[order["orderId"]])


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_bots_book_equals_the_exchanges_after_every_step_with_a_sigkill_between_steps(tmp_path, name):
    market, options, side, event, reason, partial = SCENARIOS[name]
    if options.get("markets") == "testnet":
        options = dict(options, markets=spot_markets())
    with BinanceTestServer(**options) as server:
        life = Lifecycle(tmp_path, server, market)
        if partial:
            server.fill_ratio = Decimal("0.5")
        life.step({"BTC/USDT": side}, kill_after_order=True)  # the entry fills (fully or partly): the bot dies unaware
        server.fill_ratio = Decimal(1)
        assert (server.filled_orders()
                or [o for o in server.state.orders.values() if o["executedQty"]]), "the entry executed"
        life.step({"BTC/USDT": side})  # the restarted bot finds the entry's fill and places its protection
        held, _, _ = life.books()
        full = 0.002 if market == "futures" else 0.001998  # a spot buyer's commission is paid in BTC
        expected = (full / 2 if partial else full) if server.commission_asset != "BNB" else 0.002
        assert abs(held) == pytest.approx(expected, rel=0.01), life.outputs[-1][-2000:]
        life.assert_books_agree()
        event(server)  # the exchange acts while the bot is down
        life.step({})  # the restarted bot books what happened
        life.step({})  # and one more restart changes nothing
        held, cash, trades = life.books()
        assert held == 0 and [t["exit_reason"] for t in trades] == [reason], life.outputs[-2][-2000:]
        life.assert_books_agree()
        assert life.kills == 4
