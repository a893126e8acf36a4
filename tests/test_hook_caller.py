"""HookCaller: the four call styles (collect, notify, first, risk), sync and async alike,
each implementation isolated so a failure names its plugin."""

import asyncio
from datetime import datetime, timezone

import pytest

from gobot.errors import PluginError
from gobot.host.hook_caller import HookCaller
from gobot.host.plugin_manager import new_plugin_manager
from gobot_hookspecs import Action, Alert, OrderIntent, RiskVerdict, Side, Signal, hookimpl

SIGNAL = Signal(symbol="BTC/USDT", action=Action.LONG, confidence=0.8)
INTENT = OrderIntent(
    id="i-1",
    client_order_id="c-1",
    symbol="BTC/USDT",
    side=Side.BUY,
    notional_usd=10.0,
    reference_price=50_000.0,
    created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
)


def caller_with(*plugins: tuple[str, object]) -> tuple[HookCaller, list]:
    """A HookCaller over a fresh manager with ``plugins`` registered in order, and its failure list."""
    pm = new_plugin_manager()
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    failures: list = []
    return HookCaller(pm, on_failure=failures.append), failures


def run(coroutine):
    return asyncio.run(coroutine)


# -- sync and async implementations --------------------------------------------------------


class SyncIdeas:
    @hookimpl
    def gobot_generate_ideas(self, snapshots):
        return [SIGNAL.model_copy(update={"rationale": "sync"})]


class AsyncIdeas:
    @hookimpl
    async def gobot_generate_ideas(self, snapshots):
        return [SIGNAL.model_copy(update={"rationale": "async"})]


class Quiet:
    @hookimpl
    def gobot_generate_ideas(self):
        return None


def test_collect_returns_sync_and_async_answers_with_plugin_names():
    hooks, failures = caller_with(("sync", SyncIdeas()), ("async", AsyncIdeas()), ("quiet", Quiet()))
    answers = run(hooks.collect("gobot_generate_ideas", ctx=None, snapshots=[], learnings=[]))
    assert sorted((name, signals[0].rationale) for name, signals in answers) == [("async", "async"), ("sync", "sync")]
    assert failures == []


def test_implementation_may_take_any_subset_of_the_arguments():
    hooks, _ = caller_with(("quiet", Quiet()), ("sync", SyncIdeas()))
    answers = run(hooks.collect("gobot_generate_ideas", ctx=None, snapshots=[], learnings=[]))
    assert [name for name, _ in answers] == ["sync"]


def test_notify_awaits_async_implementations():
    seen = []

    class SyncChannel:
        @hookimpl
        def gobot_send_alert(self, alert):
            seen.append(("sync", alert.kind))

    class AsyncChannel:
        @hookimpl
        async def gobot_send_alert(self, alert):
                seen.append(("async", alert.kind))

    hooks, _ = caller_with(("sync", SyncChannel()), ("async", AsyncChannel()))
    failures = run(hooks.notify("gobot_send_alert", ctx=None, alert=Alert(kind="test", title="hello")))
    assert failures == []
    assert sorted(seen) == [("async", "test"), ("sync", "test")]


# -- first ----------------------------------------------------------------------------------


class Sizer:
    """Answers ``answer`` and remembers whether it was asked."""

    def __init__(self, answer):
        self.answer, self.asked = answer, False

    @hookimpl
    def gobot_size_position(self, signal):
        self.asked = True
        return self.answer


class AsyncSizer(Sizer):
    @hookimpl
    async def gobot_size_position(self, signal):
        self.asked = True
        return self.answer


class DefaultSizer(Sizer):
    @hookimpl(trylast=True)
    def gobot_size_position(self, signal):
        self.asked = True
        return self.answer


def test_first_stops_at_the_first_non_none_answer():
    default, preferred = Sizer(10.0), Sizer(25.0)
    hooks, _ = caller_with(("default", default), ("preferred", preferred))  # the last registered is asked first
    assert run(hooks.first("gobot_size_position", ctx=None, signal=SIGNAL)) == ("preferred", 25.0)
    assert default.asked is False


def test_first_awaits_async_answer():
    hooks, _ = caller_with(("async_sizer", AsyncSizer(7.5)))
    assert run(hooks.first("gobot_size_position", ctx=None, signal=SIGNAL)) == ("async_sizer", 7.5)


def test_first_never_takes_an_unawaited_coroutine_as_an_answer():
    # pluggy's own firstresult would stop at the coroutine object; ours awaits it, gets None, asks on.
    fallback, abstaining = Sizer(10.0), AsyncSizer(None)
    hooks, _ = caller_with(("fallback", fallback), ("abstaining", abstaining))
    assert run(hooks.first("gobot_size_position", ctx=None, signal=SIGNAL)) == ("fallback", 10.0)
    assert abstaining.asked and fallback.asked


def test_first_asks_the_trylast_default_last_whatever_the_registration_order():
    default = DefaultSizer(10.0)
    hooks, _ = caller_with(("other", Sizer(3.0)), ("default", default))
    assert run(hooks.first("gobot_size_position", ctx=None, signal=SIGNAL)) == ("other", 3.0)
    assert default.asked is False


def test_first_falls_back_to_the_trylast_default_when_nobody_else_answers():
    hooks, _ = caller_with(("default", DefaultSizer(10.0)), ("other", Sizer(None)))
    assert run(hooks.first("gobot_size_position", ctx=None, signal=SIGNAL)) == ("default", 10.0)


def test_first_with_no_answer_returns_none():
    hooks, _ = caller_with(("other", Sizer(None)))
    assert run(hooks.first("gobot_size_position", ctx=None, signal=SIGNAL)) is None


def test_first_raising_gives_plugin_error_naming_plugin_and_hook():
    class Broken:
        @hookimpl
        async def gobot_size_position(self, signal):
            raise ZeroDivisionError("no equity")

    hooks, _ = caller_with(("default", DefaultSizer(10.0)), ("broken", Broken()))
    with pytest.raises(PluginError) as caught:
        run(hooks.first("gobot_size_position", ctx=None, signal=SIGNAL))
    assert caught.value.plugin == "broken"
    assert caught.value.hook == "gobot_size_position"
    assert str(caught.value) == "plugin 'broken' in gobot_size_position: ZeroDivisionError: no equity"


# -- risk -----------------------------------------------------------------------------------


class RiskCheck:
    """Answers ``verdict``, or raises ``error``."""

    def __init__(self, verdict=None, error: Exception | None = None):
        self.verdict, self.error = verdict, error

    @hookimpl
    def gobot_risk_check(self, intent):
        if self.error is not None:
            raise self.error
        return self.verdict


class AsyncRiskCheck(RiskCheck):
    @hookimpl
    async def gobot_risk_check(self, intent):
        return RiskCheck.gobot_risk_check(self, intent)


def test_risk_collects_every_verdict_with_its_plugin_name():
    hooks, _ = caller_with(
        ("limits", RiskCheck(RiskVerdict(approved=True, reason="within limits"))),
        ("llm_review", AsyncRiskCheck(RiskVerdict(approved=True, reason="looks fine"))),
        ("abstains", RiskCheck(None)),
    )
    verdicts = run(hooks.risk(ctx=None, intent=INTENT))
    assert sorted((v.plugin, v.approved, v.reason) for v in verdicts) == [
        ("limits", True, "within limits"),
        ("llm_review", True, "looks fine"),
    ]


def test_risk_one_veto_among_approvals_is_kept_and_nobody_is_skipped():
    hooks, _ = caller_with(
        ("first", RiskCheck(RiskVerdict(approved=True))),
        ("veto", RiskCheck(RiskVerdict(approved=False, reason="exposure too high"))),
        ("last", RiskCheck(RiskVerdict(approved=True))),
    )
    verdicts = run(hooks.risk(ctx=None, intent=INTENT))
    assert len(verdicts) == 3
    assert [(v.plugin, v.reason) for v in verdicts if not v.approved] == [("veto", "exposure too high")]


@pytest.mark.parametrize("check", [RiskCheck, AsyncRiskCheck], ids=["sync", "async"])
def test_risk_check_that_raises_is_a_veto_naming_the_error(check):
    hooks, failures = caller_with(
        ("ok", RiskCheck(RiskVerdict(approved=True))),
        ("flaky", check(error=ConnectionError("price feed down"))),
    )
    verdicts = run(hooks.risk(ctx=None, intent=INTENT))
    veto = next(v for v in verdicts if v.plugin == "flaky")
    assert veto.approved is False
    assert veto.reason == "risk check raised ConnectionError: price feed down (fail closed)"
    assert [(f.plugin, f.hook) for f in failures] == [("flaky", "gobot_risk_check")]
    assert any(v.plugin == "ok" and v.approved for v in verdicts)


def test_risk_check_returning_something_else_than_a_verdict_is_a_veto():
    hooks, _ = caller_with(("sloppy", RiskCheck({"approved": True})))
    [veto] = run(hooks.risk(ctx=None, intent=INTENT))
    assert veto.approved is False
    assert veto.plugin == "sloppy"
    assert "returned dict, expected RiskVerdict" in veto.reason
    assert veto.reason.endswith("(fail closed)")


def test_risk_fills_in_the_plugin_name_over_whatever_the_plugin_wrote():
    hooks, _ = caller_with(("honest", RiskCheck(RiskVerdict(approved=True, plugin="someone_else"))))
    [verdict] = run(hooks.risk(ctx=None, intent=INTENT))
    assert verdict.plugin == "honest"


# -- isolation ------------------------------------------------------------------------------


def test_a_raising_alert_channel_does_not_stop_the_others():
    delivered = []

    class Telegram:
        @hookimpl
        async def gobot_send_alert(self, alert):
            raise TimeoutError("api.telegram.org timed out")

    class Console:
        @hookimpl
        def gobot_send_alert(self, alert):
            delivered.append(alert.title)

    # Console is registered first, so it is called after the failing channel.
    hooks, logged = caller_with(("console", Console()), ("telegram", Telegram()))
    failures = run(hooks.notify("gobot_send_alert", ctx=None, alert=Alert(kind="test", title="still delivered")))
    assert delivered == ["still delivered"]
    assert [str(f) for f in failures] == ["plugin 'telegram' failed in gobot_send_alert: TimeoutError: "
                                          "api.telegram.org timed out"]
    assert logged == failures


def test_collect_skips_a_raising_implementation_and_reports_it():
    class Broken:
        @hookimpl
        def gobot_generate_ideas(self):
            raise KeyError("rsi")

    hooks, failures = caller_with(("sync", SyncIdeas()), ("broken", Broken()))
    answers = run(hooks.collect("gobot_generate_ideas", ctx=None, snapshots=[], learnings=[]))
    assert [name for name, _ in answers] == ["sync"]
    assert [(f.plugin, f.hook, type(f.error)) for f in failures] == [("broken", "gobot_generate_ideas", KeyError)]


# -- start-up hooks -------------------------------------------------------------------------


def test_collect_sync_answers_start_up_hooks():
    from pydantic import BaseModel

    class Settings(BaseModel):
        window: int = 3

    class WithSettings:
        @hookimpl
        def gobot_config_model(self):
            return Settings

    hooks, _ = caller_with(("with_settings", WithSettings()))
    assert hooks.collect_sync("gobot_config_model") == [("with_settings", Settings)]


def test_collect_sync_refuses_an_async_start_up_hook():
    class AsyncModel:
        @hookimpl
        async def gobot_config_model(self):
            return None

    hooks, _ = caller_with(("async_model", AsyncModel()))
    with pytest.raises(PluginError) as caught:
        hooks.collect_sync("gobot_config_model")
    assert caught.value.plugin == "async_model"
    assert caught.value.hook == "gobot_config_model"
    assert "must be a plain function, not async" in str(caught.value)


def test_collect_sync_raising_names_the_plugin():
    class Broken:
        @hookimpl
        def gobot_register_strategies(self, register):
            raise ImportError("numpy missing")

    hooks, _ = caller_with(("broken", Broken()))
    with pytest.raises(PluginError,
                       match=r"^plugin 'broken' in gobot_register_strategies: ImportError: numpy missing$"):
        hooks.collect_sync("gobot_register_strategies", register=lambda strategy: None)


class SimulatedClock:
    def __init__(self, label):
        self.label, self.asked = label, False

    @hookimpl
    def gobot_clock(self, ctx):
        self.asked = True
        return self.label


def test_first_sync_returns_the_first_answer_and_asks_no_further():
    fallback, preferred = SimulatedClock("fallback"), SimulatedClock("preferred")
    hooks, _ = caller_with(("fallback", fallback), ("preferred", preferred))
    assert hooks.first_sync("gobot_clock", ctx=None) == "preferred"
    assert fallback.asked is False


def test_first_sync_refuses_an_async_start_up_hook():
    class AsyncClock:
        @hookimpl
        async def gobot_clock(self, ctx):
            return None

    hooks, _ = caller_with(("async_clock", AsyncClock()))
    with pytest.raises(PluginError,
                       match=r"^plugin 'async_clock' in gobot_clock: TypeError: gobot_clock must be a plain function, "
                             r"not async$"):
        hooks.first_sync("gobot_clock", ctx=None)
