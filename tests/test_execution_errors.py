"""Execution errors carry their kind: ``ExecutionFailed`` from an executor, ``ctx.report_execution_error``
from anywhere else (delivered before the execute phase), and a new run's id survives a crash in cycle 1."""

from __future__ import annotations

import asyncio
import json

from gobot_hookspecs import Action, ExecutionError, ExecutionFailed, Signal, hookimpl


class AlwaysLong:
    @hookimpl
    def gobot_generate_ideas(self, snapshots):
        return [Signal(symbol=s.symbol, action=Action.LONG, confidence=0.9) for s in snapshots[:1]]


class FailingExecutor:
    def __init__(self, exc: Exception):
        self.exc = exc
        self.calls = 0

    @hookimpl
    def gobot_execute_order(self, intent):
        self.calls += 1
        raise self.exc


class Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    @hookimpl
    def gobot_on_execution_error(self, error):
        self.events.append(("error", error))

    @hookimpl
    def gobot_send_alert(self, alert):
        self.events.append(("alert", alert))


def bot_with(replay_bot, executor, listener, extra=()):
    return replay_bot(plugins=[("always_long", AlwaysLong()), ("exchange", executor), ("listener", listener), *extra],
                      disable=["sma_rsi", "adjuster", "validator", "circuit_breaker"])


def test_an_executor_says_what_kind_of_failure_it_was(replay_bot, run_bot):
    listener = Listener()
    failure = ExecutionFailed(ExecutionError(message="IP banned for 120 s", kind="banned", retryable=False))
    run_bot(bot_with(replay_bot, FailingExecutor(failure), listener), 1)
    [error] = [e for kind, e in listener.events if kind == "error"]
    assert (error.kind, error.plugin, error.symbol,
            error.intent_id) == ("banned", "exchange", "BTC/USDT", "1-BTC/USDT-open")
    [alert] = [a for kind, a in listener.events if kind == "alert" and a.kind == "execution_error"]
    assert alert.severity.value == "CRITICAL" and alert.data["kind"] == "banned" and "IP banned" in alert.text


def test_any_other_exception_is_an_error_of_kind_error(replay_bot, run_bot):
    listener = Listener()
    run_bot(bot_with(replay_bot, FailingExecutor(RuntimeError("boom")), listener), 1)
    [error] = [e for kind, e in listener.events if kind == "error"]
    assert error.kind == "error" and "boom" in error.message and error.plugin == "exchange"


class ReportsDuringScan:
    @hookimpl
    def gobot_scan_market(self, ctx):
        ctx.report_execution_error(ExecutionError(message="418 while polling", kind="banned", plugin="poller"))


def test_an_error_reported_outside_the_executor_reaches_listeners_before_the_execute_phase(replay_bot, run_bot):
    listener = Listener()
    order: list[str] = []

    class Executor:
        @hookimpl
        def gobot_execute_order(self, intent):
            order.append("execute")
            return None

    class Watch(Listener):
        @hookimpl
        def gobot_on_execution_error(self, error):
            order.append(f"error:{error.kind}")

    run_bot(bot_with(replay_bot, Executor(), listener, extra=[("poller", ReportsDuringScan()), ("watch", Watch())]), 1)
    assert order[:2] == ["error:banned", "execute"]
    assert any(kind == "alert" and a.kind == "execution_error" and a.data["kind"] == "banned"
               for kind, a in listener.events)


def test_a_new_runs_id_is_saved_before_its_first_cycle(replay_bot):
    bot = replay_bot()
    asyncio.run(bot.startup())
    saved = json.loads((bot.settings.state_path / "state.json").read_text())
    assert saved["run_id"] == bot.state.run_id and saved["iteration"] == 0
