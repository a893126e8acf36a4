"""Crash and restart: ``gobot start`` as a real subprocess against the loopback Binance server, SIGKILLed
at every deterministic kill point (after an order was sent and before its answer was read, halfway
through the state write, between a fill and its archive write, before and after the persist) and at
random times, and restarted after each kill. After every restart: no order twice on the exchange,
every fill on the exchange in the archive database, the position in state = the position on the
exchange, state, audit log and database readable (see ``chaos_support.CrashHarness``). Every third
round the run is let finish — once with an order still in flight, once holding what it holds — and a
new run starts on the same account: the same checks hold, so the new run took over the position.

``make test`` kills it ``count(6, 50)`` times — every kill point once plus a random kill; ``make
chaos`` 50 times.
"""

from __future__ import annotations

import os

import pytest

from chaos_support import DETERMINISTIC, CrashHarness, count, record_figures
from servers.binance import API_KEY, API_SECRET, BinanceTestServer

KILLS = count(len(DETERMINISTIC) + 1, 50)


@pytest.mark.slow
def test_sigkill_at_kill_points_and_random_times_loses_and_duplicates_nothing(tmp_path):
    env = dict(os.environ) | {"BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET}
    with BinanceTestServer() as server:
        report = CrashHarness(tmp_path, server, env).run(KILLS)
    print(report.line())
    for problem in report.discrepancies:
        print("  discrepancy:", problem)
    record_figures("crash/restart", kills=report.kills, restarts=report.restarts, orders=report.orders_on_exchange,
                   fills=report.fills_on_exchange, new_runs=report.new_runs, carried_over=report.carried_over,
                   discrepancies=len(report.discrepancies), seconds=round(report.seconds, 1))
    assert report.discrepancies == []
    assert report.kills >= KILLS and report.restarts >= KILLS
    assert set(report.by_point) >= set(DETERMINISTIC) | {"random"}
    assert report.fills_on_exchange >= 2  # the rounds traded: there was something to lose
    assert report.new_runs >= 2 and report.carried_over >= 1  # a new run took over a position or an order
