"""Extras: a plugin (or a core feature) whose dependencies come with an extra that is not installed
is one line naming the extra, read from the metadata before anything is imported."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap

import pytest

from gobot.errors import PluginError
from gobot.host.extras import MissingExtra, require
from gobot.host.plugin_manager import CORE_DISTRIBUTION, build_plugin_set, entry_points

#: Built-in plugins and the extra their entry point names (the rest need the core install only).
BUILTIN_EXTRAS = {"binance": "binance", "adaptive_rate_limit": "binance", "charts": "charts", "vision": "vision",
                  "telegram": "telegram", "webhook": "webhook", "market_sentiment": "binance",
                  "fear_greed": "sentiment"}


@pytest.fixture
def heavy_plugin(tmp_path, monkeypatch):
    """An installed distribution gobot-heavy whose plugin 'heavy' needs the extra [gpu], not installed;
    its module would fail loudly if it were ever imported."""
    (tmp_path / "gobot_heavy.py").write_text("raise RuntimeError('imported although its extra is missing')\n")
    info = tmp_path / "gobot_heavy-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(textwrap.dedent("""\
        Metadata-Version: 2.1
        Name: gobot-heavy
        Version: 1.0
        Requires-Dist: gobot-hookspecs>=1.1,<2
        Provides-Extra: gpu
        Requires-Dist: surely-not-installed-gobot-test>=1; extra == "gpu"
        Requires-Dist: pluggy; extra == "gpu"
        """))
    (info / "entry_points.txt").write_text("[gobot]\nheavy = gobot_heavy:Heavy [gpu]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield
    sys.modules.pop("gobot_heavy", None)


def test_a_plugin_whose_extra_is_missing_is_listed_with_the_pip_line(heavy_plugin):
    info = build_plugin_set().plugins["heavy"]
    assert (info.status, info.reason) == ("disabled", "needs: pip install 'gobot-heavy[gpu]'")
    assert "gobot_heavy" not in sys.modules


def test_enabling_it_fails_with_that_line_and_imports_nothing(heavy_plugin):
    plugin_set = build_plugin_set(enable=["heavy"])
    assert (plugin_set.plugins["heavy"].status, plugin_set.plugins["heavy"].reason) == (
        "failed", "needs: pip install 'gobot-heavy[gpu]'")
    with pytest.raises(PluginError) as raised:
        plugin_set.raise_for_failures()
    assert str(raised.value) == "plugin 'heavy' (distribution gobot-heavy): needs: pip install 'gobot-heavy[gpu]'"
    assert "gobot_heavy" not in sys.modules


def test_a_disabled_plugin_says_disabled_not_what_it_needs(heavy_plugin):
    assert build_plugin_set(disable=["heavy"]).plugins["heavy"].reason == "disabled in config"


def test_without_explain_a_plugin_not_enabled_is_not_checked_but_enabling_it_still_is(heavy_plugin):
    assert build_plugin_set(explain=False).plugins["heavy"].reason == "not enabled (add to [plugins] enable)"
    assert build_plugin_set(enable=["heavy"], explain=False).plugins["heavy"].reason == (
        "needs: pip install 'gobot-heavy[gpu]'")


def test_a_requirement_with_a_longer_marker_is_read_by_the_full_parser(tmp_path, monkeypatch):
    info = tmp_path / "gobot_marked-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gobot-marked\nVersion: 1.0\nProvides-Extra: gpu\n"
                                   'Requires-Dist: pluggy; extra == "gpu"\n'
                                   'Requires-Dist: surely-not-installed-gobot-test; python_version >= "3" and '
                                   'extra == "gpu"\n'
                                   'Requires-Dist: surely-not-installed-either; python_version < "3" and '
                                   'extra == "gpu"\n')
    (info / "entry_points.txt").write_text("[gobot]\nmarked = gobot_marked:Marked [gpu]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert build_plugin_set().plugins["marked"].reason == "needs: pip install 'gobot-marked[gpu]'"


def test_the_builtins_with_heavy_dependencies_name_their_extra():
    builtins = {ep.name: ep for ep in entry_points() if ep.dist is not None
                and ep.dist.metadata["Name"] == CORE_DISTRIBUTION}
    declared = {name: ep.extras[0] for name, ep in builtins.items() if ep.extras}
    assert declared == BUILTIN_EXTRAS
    provided = set(importlib.metadata.metadata(CORE_DISTRIBUTION).get_all("Provides-Extra"))
    assert set(BUILTIN_EXTRAS.values()) | {"optimize", "server", "plots", "redis", "postgres", "all"} <= provided


def test_with_every_extra_installed_every_builtin_loads():
    builtins = [ep.name for ep in entry_points() if ep.dist is not None
                and ep.dist.metadata["Name"] == CORE_DISTRIBUTION]
    plugin_set = build_plugin_set(enable=builtins)
    assert plugin_set.failures == [], [(f.name, f.reason) for f in plugin_set.failures]


def test_a_core_feature_without_its_extra_says_which_one():
    require("server", "json", "the dashboard")  # importable: nothing said
    with pytest.raises(MissingExtra, match=r"^gobot optimize needs: pip install 'gobot-trading\[optimize\]'$"):
        require("optimize", "surely_not_installed_gobot_test", "gobot optimize")
