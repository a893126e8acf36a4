"""pytest fixtures for plugin authors (and gobot's own tests), installed as a pytest plugin (``pytest11``):
see ``gobot.testing`` for the list."""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import pytest

from gobot.config import Settings, settings_from_dict
from gobot.host.plugin_manager import PluginSet, build_plugin_set

if TYPE_CHECKING:  # the bot is imported where a fixture builds one, so `gobot --help` never loads it
    from gobot.run.bot import Bot
    from gobot.run.runner import RunOutcome

SYNTHETIC_DAYS = 3


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory) -> Path:
    """Seeded synthetic candles (3 days of 5m) in the replay format; made once per test session."""
    from gobot.research.synthetic import DEMO_SYMBOLS, csv_name, generate, write_csv

    folder = tmp_path_factory.mktemp("gobot-data")
    for symbol, price in DEMO_SYMBOLS.items():
        write_csv(folder / csv_name(symbol, "5m"), generate(symbol, price, SYNTHETIC_DAYS * 288, seed=1))
    return folder


@pytest.fixture
def plugin_set_factory() -> Callable[..., PluginSet]:
    def factory(
        enable: Iterable[str] = (), disable: Iterable[str] = (), plugins: Iterable[tuple[str, object]] = (),
        live: bool = False
    ) -> PluginSet:
        return build_plugin_set(enable=enable, disable=disable, extra_plugins=plugins, live=live)

    return factory


#: The built-in risk plugins' settings in test replays. Test markets are a few candles to 3 days
#: long: a 30-day volatility baseline or a week of correlation cannot exist, 3 trades a day and a
#: 3-hour cooldown would end most tests after their first trades, and a strategy under test may
#: well lose 5 times in a row. So those protections are off here; every other cap (confidence,
#: reward/risk, position size, exposure, one position per symbol, loss limits, the drawdown stop)
#: keeps its default. Tests of the protections themselves set the values they test (``config``
#: is merged over this, key by key).
REPLAY_TEST_RISK: dict[str, dict[str, Any]] = {
    "risk_limits": {"max_trades_per_day": 0, "symbol_cooldown_minutes": 0, "low_liquidity_hours": [],
                    "volatility_multiplier": 0, "max_correlation": 1},
    "circuit_breaker": {"circuit_breaker_threshold": 1_000_000, "max_consecutive_losses": 1_000_000},
}


def replay_test_risk_toml() -> str:
    """``REPLAY_TEST_RISK`` as ``config.toml`` sections, for tests that write a config file."""
    import json

    return "".join(f"[plugins.{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
                   for name, values in REPLAY_TEST_RISK.items())


def replay_settings(state_dir: Path, data_dir: Path, config: dict[str, Any] | None = None) -> Settings:
    """Settings for a replay run: ``config`` is merged over a state_dir and data_dir of the test's own
    (and ``REPLAY_TEST_RISK``)."""
    plugins: dict[str, Any] = {"replay": {"data_dir": str(data_dir)},
                               **{k: dict(v) for k, v in REPLAY_TEST_RISK.items()}}
    data: dict[str, Any] = {"state_dir": str(state_dir), "plugins": plugins}
    for key, value in (config or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            merged = dict(data[key])
            for sub, sub_value in value.items():
                if isinstance(sub_value, dict) and isinstance(merged.get(sub), dict):
                    merged[sub] = {**merged[sub], **sub_value}
                else:
                    merged[sub] = sub_value
            data[key] = merged
        else:
            data[key] = value
    return settings_from_dict(data, "test-config.toml", base_dir=str(state_dir.parent))


@pytest.fixture
def replay_bot(tmp_path, synthetic_data_dir, plugin_set_factory) -> Callable[..., Bot]:
    def factory(
        config: dict[str, Any] | None = None,
        plugins: Iterable[tuple[str, object]] = (),
        enable: Iterable[str] = (),
        disable: Iterable[str] = (),
        state_dir: Path | None = None,
        live: bool = False,
        fresh: bool = False,
    ) -> Bot:
        settings = replay_settings(state_dir or tmp_path / "state", synthetic_data_dir, config)
        plugin_set = plugin_set_factory(
            enable=[*settings.plugins.enable, *enable], disable=[*settings.plugins.disable, *disable],
            plugins=plugins, live=live
        )
        from gobot.run.bot import Bot

        return Bot(settings, plugin_set, live=live, fresh=fresh)

    return factory


@pytest.fixture
def run_bot() -> Callable[[Bot, int | None], RunOutcome]:
    def run(bot: Bot, max_iterations: int | None = None) -> RunOutcome:
        from gobot.run.runner import Runner

        return asyncio.run(Runner(bot, max_iterations).run())

    return run


@pytest.fixture
def loopback_openai() -> Iterator[Any]:
    """A ``gobot.testing.loopback_openai.LoopbackOpenAI`` for this test: use its ``base_url``; closed after the test."""
    from gobot.testing.loopback_openai import LoopbackOpenAI

    server = LoopbackOpenAI()
    yield server
    server.close()


@pytest.fixture
def installed_plugin(tmp_path_factory, monkeypatch) -> Iterator[Callable[..., Path]]:
    """Fake a pip-installed plugin distribution for one test, without pip.

    ``installed_plugin(name, source, dist=None, version="1.0", attr=None, module=None, requires=())``
    writes the module ``module`` (default: ``name``) from ``source`` and a ``<dist>-<version>.dist-info``
    with ``METADATA`` (one ``Requires-Dist`` line per item of ``requires``) and ``entry_points.txt``
    (``[gobot]`` ``name = module:attr``, or just ``module`` when ``attr`` is None) into a fresh
    folder, and puts that folder first on ``sys.path``, so
    ``importlib.metadata.entry_points(group="gobot")`` lists the plugin.
    ``dist`` defaults to ``gobot-plugin-<name>``: each call is its own distribution (one
    distribution name is seen once on ``sys.path``, so don't reuse it within a test). Nothing
    is imported here. At teardown the module is forgotten and the folder leaves ``sys.path``.
    """
    modules: list[str] = []

    def install(
        name: str, source: str, dist: str | None = None, version: str = "1.0", attr: str | None = None,
        module: str | None = None, requires: Iterable[str] = (),
    ) -> Path:
        module = module or name
        dist = dist or f"gobot-plugin-{name}".replace("_", "-")
        folder = tmp_path_factory.mktemp(f"site-{name}")
        (folder / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = folder / f"{re.sub(r'[-_.]+', '_', dist)}-{version}.dist-info"
        info.mkdir()
        requires_lines = "".join(f"Requires-Dist: {line}\n" for line in requires)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n{requires_lines}",
                                       encoding="utf-8")
        target = f"{module}:{attr}" if attr else module
        (info / "entry_points.txt").write_text(f"[gobot]\n{name} = {target}\n", encoding="utf-8")
        modules.append(module)
        sys.modules.pop(module, None)
        monkeypatch.syspath_prepend(str(folder))
        importlib.invalidate_caches()
        return folder

    yield install
    for module in modules:
        sys.modules.pop(module, None)
    importlib.invalidate_caches()
