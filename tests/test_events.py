"""Events and one-provider hooks: execution errors, orders and fills reach every listener; rate-limit policy."""

import asyncio

from gobot_hookspecs import Priority, hookimpl


class Listener:
    def __init__(self):
        self.seen = {"order": [], "fill": [], "error": [], "closed": [], "startup": 0, "shutdown": 0}

    @hookimpl
    def gobot_on_order(self, order):
        self.seen["order"].append(order)

    @hookimpl
    def gobot_on_fill(self, fill):
        self.seen["fill"].append(fill)

    @hookimpl
    async def gobot_on_execution_error(self, error):
        await asyncio.sleep(0)
        self.seen["error"].append(error)

    @hookimpl
    def gobot_on_trade_closed(self, trade):
        self.seen["closed"].append(trade)

    @hookimpl
    def gobot_startup(self):
        self.seen["startup"] += 1

    @hookimpl
    def gobot_shutdown(self):
        self.seen["shutdown"] += 1


def test_events_reach_listeners(replay_bot, run_bot):
    listener = Listener()
    bot = replay_bot(plugins=[("listener", listener)])
    run_bot(bot, 40)
    assert listener.seen["startup"] == 1 and listener.seen["shutdown"] == 1
    assert listener.seen["order"] and listener.seen["fill"] and listener.seen["closed"]
    assert len(listener.seen["closed"]) == len(bot.state.trades)


def test_a_failing_executor_becomes_an_execution_error_event_and_a_critical_alert(replay_bot, run_bot):
    listener, alerts = Listener(), []

    class Down:
        @hookimpl(tryfirst=True)
        def gobot_execute_order(self, intent):
            raise ConnectionError("exchange unreachable")

        @hookimpl
        def gobot_send_alert(self, alert):
            alerts.append(alert)

    bot = replay_bot(plugins=[("listener", listener), ("down", Down())])
    run_bot(bot, 20)
    assert listener.seen["error"], "the strategy should have tried to trade in 20 cycles"
    error = listener.seen["error"][0]
    assert error.plugin == "down" and "exchange unreachable" in error.message
    assert not bot.state.positions and not bot.state.intents
    assert any(a.kind == "execution_error" and a.severity.value == "CRITICAL" for a in alerts)


def test_the_rate_limit_policy_comes_from_a_plugin_or_never_waits(replay_bot):
    class Policy:
        async def acquire(self, weight, priority):
            self.last = (weight, priority)

        def on_response(self, status, headers):
            pass

    policy = Policy()

    class Provider:
        @hookimpl
        def gobot_rate_limit_policy(self):
            return policy

    assert replay_bot(plugins=[("limiter", Provider())]).ctx.rate_limiter is policy
    default = replay_bot(state_dir=None).ctx.rate_limiter
    asyncio.run(default.acquire(5, Priority.LOW))  # returns at once
    assert default is not policy
