"""The plugin manager: built-ins on by default, third-party plugins off until enabled, disabled
plugins never imported, and every failure named (plugin, distribution, what to do)."""

import re
import sys

import pytest

from gobot.errors import PluginError
from gobot.host.plugin_manager import DEFAULT_PLUGINS, build_plugin_set
from gobot_hookspecs import CONTRACT_VERSION

CRASHES_ON_IMPORT = """
raise RuntimeError("cannot reach the exchange at import time")
"""

HALF_SIZER = """
from gobot_hookspecs import hookimpl

class HalfSizer:
    @hookimpl
    def gobot_size_position(self, ctx, signal):
        return ctx.config.trading.max_position_usd / 2
"""


def test_builtins_are_all_enabled_by_default_from_the_gobot_distribution():
    plugin_set = build_plugin_set()
    assert sorted(plugin_set.enabled) == sorted(DEFAULT_PLUGINS)
    for name in DEFAULT_PLUGINS:
        info = plugin_set.plugins[name]
        assert (info.status, info.distribution, info.reason) == ("enabled", "gobot-trading", "")
        assert info.hooks, f"{name} implements no hook"
    assert plugin_set.failures == []


def test_disabling_a_builtin_blocks_it():
    plugin_set = build_plugin_set(disable=["console"])
    info = plugin_set.plugins["console"]
    assert info.status == "disabled"
    assert "config" in info.reason
    assert "console" not in plugin_set.implementers("gobot_send_alert")
    assert plugin_set.pm.is_blocked("console")


def test_a_disabled_plugin_is_never_imported_so_one_that_crashes_on_import_can_be_switched_off(installed_plugin):
    installed_plugin("crasher", CRASHES_ON_IMPORT)
    plugin_set = build_plugin_set(enable=["crasher"], disable=["crasher"])
    assert plugin_set.plugins["crasher"].status == "disabled"
    assert "crasher" not in sys.modules
    plugin_set.raise_for_failures()  # nothing failed


def test_a_third_party_plugin_is_listed_but_off_until_enabled(installed_plugin):
    installed_plugin("half_sizer", HALF_SIZER, dist="gobot-half-sizer", version="0.3", attr="HalfSizer")
    info = build_plugin_set().plugins["half_sizer"]
    assert (info.name, info.distribution, info.version) == ("half_sizer", "gobot-half-sizer", "0.3")
    assert info.status == "disabled"
    assert "not enabled" in info.reason
    assert "half_sizer" not in sys.modules


def test_enable_list_enables_a_third_party_plugin(installed_plugin):
    installed_plugin("half_sizer", HALF_SIZER, attr="HalfSizer")
    plugin_set = build_plugin_set(enable=["half_sizer"])
    assert plugin_set.plugins["half_sizer"].status == "enabled"
    assert plugin_set.plugins["half_sizer"].hooks == ["gobot_size_position"]
    assert "half_sizer" in plugin_set.implementers("gobot_size_position")


def test_a_builtin_can_be_replaced_by_a_third_party_plugin(installed_plugin):
    installed_plugin("half_sizer", HALF_SIZER, attr="HalfSizer")
    plugin_set = build_plugin_set(enable=["half_sizer"], disable=["fixed_size", "kelly_size"])
    assert plugin_set.implementers("gobot_size_position") == ["half_sizer"]
    assert plugin_set.plugins["fixed_size"].status == "disabled"
    assert plugin_set.failures == []


def test_a_plugin_that_raises_on_import_fails_with_the_exception_as_reason(installed_plugin):
    installed_plugin("crasher", CRASHES_ON_IMPORT, dist="gobot-crasher")
    info = build_plugin_set(enable=["crasher"]).plugins["crasher"]
    assert info.status == "failed"
    assert info.reason == "import failed: RuntimeError: cannot reach the exchange at import time"


def test_raise_for_failures_names_the_plugin_and_its_distribution(installed_plugin):
    installed_plugin("crasher", CRASHES_ON_IMPORT, dist="gobot-crasher")
    with pytest.raises(PluginError) as caught:
        build_plugin_set(enable=["crasher"]).raise_for_failures()
    assert (caught.value.plugin, caught.value.distribution) == ("crasher", "gobot-crasher")
    assert str(caught.value) == (
        "plugin 'crasher' (distribution gobot-crasher): import failed: RuntimeError: cannot reach the exchange at "
        "import time"
    )


def test_raise_for_failures_mentions_every_other_failed_plugin(installed_plugin):
    installed_plugin("crasher", CRASHES_ON_IMPORT)
    with pytest.raises(PluginError, match=r"also failed: not_there \(see `gobot plugins`\)"):
        build_plugin_set(enable=["crasher", "not_there"]).raise_for_failures()


def test_a_hook_argument_not_in_the_spec_fails_as_wrong_hook_signature(installed_plugin):
    installed_plugin(
        "nosy_risk",
        """
        from gobot_hookspecs import hookimpl

        @hookimpl
        def gobot_risk_check(ctx, intent, portfolio):
            return None
        """,
    )
    plugin_set = build_plugin_set(enable=["nosy_risk"])
    info = plugin_set.plugins["nosy_risk"]
    assert info.status == "failed"
    assert info.reason.startswith("wrong hook signature")
    assert "portfolio" in info.reason
    assert "\n" not in info.reason  # the CLI shows it on one line
    assert "nosy_risk" not in plugin_set.implementers("gobot_risk_check")


def test_a_misspelled_hook_name_fails_with_a_suggestion(installed_plugin):
    installed_plugin(
        "typo_risk",
        """
        from gobot_hookspecs import hookimpl

        @hookimpl
        def gobot_risk_chek(ctx, intent):
            return None
        """,
    )
    plugin_set = build_plugin_set(enable=["typo_risk"])
    info = plugin_set.plugins["typo_risk"]
    assert info.status == "failed"
    assert info.reason == "implements unknown hook gobot_risk_chek; did you mean gobot_risk_check?"
    assert plugin_set.pm.get_plugin("typo_risk") is None


def test_enabling_a_name_that_is_not_installed_fails():
    info = build_plugin_set(enable=["pager_duty"]).plugins["pager_duty"]
    assert info.status == "failed"
    assert "not installed" in info.reason


def test_starting_with_a_misspelt_plugin_name_suggests_the_installed_one():
    from gobot.errors import PluginError

    with pytest.raises(PluginError) as refused:
        build_plugin_set(enable=["archivr"]).raise_for_failures()
    assert "enabled but not installed (no such entry point); did you mean 'archiver'?" in str(refused.value)


def test_live_mode_blocks_the_paper_executor():
    plugin_set = build_plugin_set(live=True)
    info = plugin_set.plugins["paper"]
    assert info.status == "disabled"
    assert info.reason == "simulation only: off in live mode"
    assert "paper" not in plugin_set.implementers("gobot_execute_order")


def test_live_mode_blocks_paper_even_when_enabled_explicitly():
    assert build_plugin_set(enable=["paper"], live=True).plugins["paper"].status == "disabled"


def test_a_plugin_class_is_instantiated_once_per_manager(installed_plugin):
    installed_plugin(
        "counter",
        """
        from gobot_hookspecs import hookimpl

        class Counter:
            created = 0

            def __init__(self):
                Counter.created += 1

            @hookimpl
            def gobot_shutdown(self, ctx):
                pass
        """,
        attr="Counter",
    )
    first = build_plugin_set(enable=["counter"]).pm.get_plugin("counter")
    second = build_plugin_set(enable=["counter"]).pm.get_plugin("counter")
    assert first is not second
    assert type(first).created == 2


def test_a_plugin_module_is_registered_as_is(installed_plugin):
    installed_plugin(
        "module_plugin",
        """
        from gobot_hookspecs import hookimpl

        @hookimpl
        def gobot_shutdown(ctx):
            pass
        """,
    )
    plugin_set = build_plugin_set(enable=["module_plugin"])
    assert plugin_set.pm.get_plugin("module_plugin") is sys.modules["module_plugin"]


def test_a_plugin_registered_in_process_honours_disable(plugin_set_factory):
    class Recorder:
        pass

    plugin_set = plugin_set_factory(disable=["recorder"], plugins=[("recorder", Recorder())])
    assert plugin_set.plugins["recorder"].status == "disabled"
    assert plugin_set.pm.get_plugin("recorder") is None


def test_a_hook_wrapper_is_refused_with_a_reason(plugin_set_factory):
    from gobot_hookspecs import hookimpl

    class Timer:
        @hookimpl(wrapper=True)
        def gobot_report(self, report):
            return (yield)

    info = plugin_set_factory(plugins=[("timer", Timer())]).plugins["timer"]
    assert info.status == "failed" and "hook wrappers are not supported (gobot_report)" in info.reason


# -- the contract version -------------------------------------------------------------------

SIGNAL_PLUGIN = """
from gobot_hookspecs import hookimpl

class Quiet:
    @hookimpl
    def gobot_generate_ideas(self, snapshots):
        return []
"""


def test_a_plugin_built_for_another_contract_is_refused_before_import_naming_both_versions(installed_plugin):
    installed_plugin("future_signal", SIGNAL_PLUGIN, dist="gobot-future-signal", attr="Quiet",
                     requires=["gobot-hookspecs>=2.0,<3"])
    info = build_plugin_set(enable=["future_signal"]).plugins["future_signal"]
    assert info.status == "failed"
    assert info.reason.startswith("built for contract gobot-hookspecs>=2.0,<3, but this gobot's contract is "
                                  f"{CONTRACT_VERSION} (gobot-hookspecs {CONTRACT_VERSION}")
    assert f"install a release of gobot-future-signal that supports contract {CONTRACT_VERSION}" in info.reason
    assert "future_signal" not in sys.modules  # refused from its metadata, never imported


def test_the_refusal_stops_the_start_with_the_plugin_and_its_distribution(installed_plugin):
    installed_plugin("old_signal", SIGNAL_PLUGIN, dist="gobot-old-signal", attr="Quiet",
                     requires=["gobot-hookspecs<1.0"])
    with pytest.raises(PluginError,
                       match=r"plugin 'old_signal' \(distribution gobot-old-signal\): built for contract "
                             rf"gobot-hookspecs<1.0, but this gobot's contract is {re.escape(CONTRACT_VERSION)}"):
        build_plugin_set(enable=["old_signal"]).raise_for_failures()


@pytest.mark.parametrize("requires", [
    ["gobot-hookspecs>=1.0,<2"],
    ["gobot_hookspecs (~=1.0)"],
    ["gobot-hookspecs"],
    [],
    ["gobot-hookspecs>=9; extra == 'test'", "pluggy>=1"],  # an extra's requirement does not bind at run time
])
def test_a_plugin_whose_contract_range_holds_this_version_loads(installed_plugin, requires):
    installed_plugin("fits", SIGNAL_PLUGIN, dist="gobot-fits", attr="Quiet", requires=requires)
    assert build_plugin_set(enable=["fits"]).plugins["fits"].status == "enabled"


def test_an_unreadable_contract_range_fails_the_plugin_and_says_so(installed_plugin):
    installed_plugin("garbled", SIGNAL_PLUGIN, dist="gobot-garbled", attr="Quiet", requires=["gobot-hookspecs>=>1"])
    info = build_plugin_set(enable=["garbled"]).plugins["garbled"]
    assert info.status == "failed" and "unreadable contract requirement 'gobot-hookspecs>=>1'" in info.reason


def test_an_object_registered_in_process_is_used_even_when_a_plugin_of_that_name_is_installed(installed_plugin,
                                                                                              plugin_set_factory):
    """A plugin author's own tests keep registering the object after ``pip install -e .``."""
    installed_plugin("half_sizer", HALF_SIZER, attr="HalfSizer")

    class Sizer:
        pass

    sizer = Sizer()
    plugin_set = plugin_set_factory(plugins=[("half_sizer", sizer)])
    assert plugin_set.pm.get_plugin("half_sizer") is sizer
    assert plugin_set.plugins["half_sizer"].status == "enabled"
