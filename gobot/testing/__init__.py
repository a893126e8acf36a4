"""Testing gobot and its plugins. The pytest fixtures for plugin authors (and gobot's own tests) are
in ``gobot.testing.fixtures``, installed as a pytest plugin (``pytest11``), and can be imported from
here too; ``kill_point`` (crash tests) and ``loopback_openai`` (a test server) are modules of their
own, and the core imports ``kill_point`` without loading pytest.


- ``synthetic_data_dir``: a folder of seeded synthetic 5m candles for BTC/USDT and ETH/USDT;
- ``plugin_set_factory``: ``plugin_set_factory(enable=..., disable=..., plugins=[(name, obj)])``
  builds a fresh plugin manager from the installed entry points plus objects registered for
  this test only;
- ``replay_bot``: ``replay_bot(config={...}, plugins=[(name, obj)], ...)`` builds a bot that
  trades on paper over the synthetic data, with its state in a temporary folder;
- ``run_bot(bot, max_iterations)``: runs it to the end and returns the ``RunOutcome``;
- ``installed_plugin``: ``installed_plugin(name, source, dist=..., version="1.0", attr=None, requires=())``
  fakes an installed distribution (no pip) whose ``gobot`` entry point ``name`` points at a
  module written from ``source`` (``requires``: its ``Requires-Dist`` lines, e.g. the contract
  range ``"gobot-hookspecs>=1.0,<2"``); returns the folder, which is on ``sys.path`` for this test
  (put it on ``PYTHONPATH`` to see the plugin from a ``gobot`` subprocess);
- ``loopback_openai``: an OpenAI-compatible chat completions server on 127.0.0.1 that records the
  requests (images checked to be real PNGs) and answers as scripted (``gobot.testing.loopback_openai.Reply``).

Example::

    from gobot_hookspecs import RiskVerdict, hookimpl

    class NoShorts:
        @hookimpl
        def gobot_risk_check(self, intent):
            return RiskVerdict(approved=intent.side.value == "buy", reason="no shorts")

    def test_no_shorts(replay_bot, run_bot):
        bot = replay_bot(plugins=[("no_shorts", NoShorts())])
        run_bot(bot, 20)
        assert all(t.direction.value == "LONG" for t in bot.state.trades)
"""

from typing import Any

#: What ``from gobot.testing import ...`` reaches in ``gobot.testing.fixtures`` (loaded on first use).
FIXTURES = ("REPLAY_TEST_RISK", "SYNTHETIC_DAYS", "installed_plugin", "plugin_set_factory",
            "replay_bot", "replay_settings", "replay_test_risk_toml", "run_bot", "synthetic_data_dir")


def __getattr__(name: str) -> Any:
    if name in FIXTURES:
        from gobot.testing import fixtures

        return getattr(fixtures, name)
    raise AttributeError(f"module 'gobot.testing' has no attribute {name!r}")
