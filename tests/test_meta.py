"""Meta-tests: the contract documents itself, the docs cover every hook and every config key, the
worked examples in docs/plugins.md run as written, and the contract stays light to import."""

from __future__ import annotations

import functools
import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from gobot.config import (
    BacktestConfig,
    OptimizerConfig,
    OrchestratorConfig,
    PluginsConfig,
    ServerConfig,
    Settings,
    StrategyVersionsConfig,
    TradingConfig,
    WatchdogConfig,
    commented_toml,
)
from gobot.host.hook_caller import HookCaller
from gobot.host.plugin_manager import build_plugin_set, entry_points
from gobot_hookspecs import PROJECT_NAME, specs

ROOT = Path(__file__).resolve().parent.parent
PLUGINS_MD = ROOT / "docs" / "plugins.md"
CONFIGURATION_MD = ROOT / "docs" / "configuration.md"

HOOKSPECS = {
    name: function
    for name, function in vars(specs).items()
    if name.startswith("gobot_") and callable(function) and hasattr(function, f"{PROJECT_NAME}_spec")
}
HOOK_HEADING = re.compile(r"^### (gobot_\w+)\((.*)\)\s*$")
CODE_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def section(text: str, heading: str, subsections: bool = True) -> str:
    """The body under a Markdown heading: up to the next heading of the same or a higher level (or,
    without ``subsections``, of any level). Lines inside code blocks are never headings."""
    body: list[str] = []
    level = None
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else re.match(r"(#+) (.*?)\s*$", line)
        if level is None:
            if match and match.group(2) == heading:
                level = len(match.group(1)) if subsections else 6
            continue
        if match and len(match.group(1)) <= level:
            break
        body.append(line)
    assert level is not None, f"no heading '{heading}'"
    return "\n".join(body) + "\n"


# -- (a) the hookspecs document themselves ----------------------------------------------------


def test_the_contract_declares_hooks():
    assert len(HOOKSPECS) >= 20


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_every_hookspec_has_a_docstring_of_at_least_two_lines(name):
    doc = inspect.getdoc(HOOKSPECS[name]) or ""
    lines = [line for line in doc.splitlines() if line.strip()]
    assert len(lines) >= 2, f"{name} in gobot_hookspecs/specs.py needs a docstring: what, when, arguments, result"


# -- (b) docs/plugins.md has a section per hook, headed by its signature ------------------------


def documented_hooks() -> dict[str, list[str]]:
    """``### gobot_<name>(<args>)`` headings of docs/plugins.md: hook name -> argument names."""
    hooks: dict[str, list[str]] = {}
    for line in read(PLUGINS_MD).splitlines():
        if not line.startswith("### gobot_"):
            continue
        match = HOOK_HEADING.match(line)
        assert match, f"malformed hook heading in docs/plugins.md: {line!r} (want '### gobot_<name>(<args>)')"
        name, args = match.groups()
        assert name not in hooks, f"docs/plugins.md documents {name} twice"
        hooks[name] = [arg.strip() for arg in args.split(",") if arg.strip()]
    return hooks


def test_plugins_md_has_a_section_for_every_hook():
    missing = sorted(set(HOOKSPECS) - set(documented_hooks()))
    assert not missing, f"docs/plugins.md has no '### <hook>(<args>)' section for: {', '.join(missing)}"


def test_plugins_md_documents_no_hook_that_does_not_exist():
    unknown = sorted(set(documented_hooks()) - set(HOOKSPECS))
    assert not unknown, ("docs/plugins.md documents hooks that gobot_hookspecs.specs does not declare: "
                         f"{', '.join(unknown)}")


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_each_hook_heading_lists_the_hooks_arguments(name):
    documented = documented_hooks()
    if name not in documented:
        pytest.skip("no section (reported by test_plugins_md_has_a_section_for_every_hook)")
    assert documented[name] == list(inspect.signature(HOOKSPECS[name]).parameters)


def test_every_python_block_in_plugins_md_compiles():
    for number, (language, code) in enumerate(CODE_BLOCK.findall(read(PLUGINS_MD)), start=1):
        if language == "python":
            compile(code, f"docs/plugins.md python block {number}", "exec")


# -- the worked examples run as written -------------------------------------------------------


def worked_example_files() -> dict[str, str]:
    """The ``# <file>.py`` blocks of the Worked examples section: file name -> source."""
    files = {}
    for language, code in CODE_BLOCK.findall(section(read(PLUGINS_MD), "Worked examples")):
        first = code.splitlines()[0] if code else ""
        match = re.fullmatch(r"# (\w+\.py)", first.strip())
        if language == "python" and match:
            files[match.group(1)] = code
    return files


def test_there_is_a_worked_example_with_tests_for_each_kind_of_plugin():
    files = worked_example_files()
    plugins = sorted(name for name in files if name.startswith("gobot_"))
    tests = sorted(name for name in files if name.startswith("test_"))
    assert len(plugins) >= 6, plugins
    for plugin in plugins:
        assert f"test_{plugin.removeprefix('gobot_')}" in tests, f"{plugin} has no test file in docs/plugins.md"


@pytest.mark.slow
def test_the_worked_examples_pass_their_own_tests(tmp_path):
    for name, code in worked_example_files().items():
        (tmp_path / name).write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-o", "addopts=", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# -- (c) docs/configuration.md documents every key --------------------------------------------


def builtin_plugin_models() -> dict[str, type[BaseModel]]:
    """Config models of every plugin the ``gobot`` distribution itself registers, enabled or not."""
    builtins = [ep.name for ep in entry_points() if ep.dist is not None and ep.dist.metadata["Name"] == "gobot-trading"]
    plugin_set = build_plugin_set(enable=builtins)
    return dict(HookCaller(plugin_set.pm).collect_sync("gobot_config_model"))


def documented_keys(heading: str) -> dict[str, str]:
    """Rows of the tables in a docs/configuration.md section: key -> its default cell."""
    rows: dict[str, str] = {}
    columns: list[str] = []
    for line in section(read(CONFIGURATION_MD), heading, subsections=False).splitlines():
        if not line.startswith("|"):
            columns = []
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not columns:
            columns = [cell.lower() for cell in cells]
            continue
        if set(line) <= set("|-: "):
            continue
        assert "key" in columns and "default" in columns, f"a table under '{heading}' needs 'key' and 'default' columns"
        rows[cells[columns.index("key")].strip("`")] = cells[columns.index("default")]
    return rows


def expected_defaults(model: type[BaseModel]) -> dict[str, str]:
    """key -> default as TOML, from the same renderer ``gobot init`` uses ('unset' for None)."""
    defaults = {}
    for line in commented_toml(model, None).splitlines():
        match = re.fullmatch(r"(# )?(\w+) =(?: (.*))?", line)
        if match and (match.group(1) is None or match.group(3) is None):
            defaults[match.group(2)] = "unset" if match.group(1) else match.group(3)
    return defaults


def core_sections() -> list[tuple[str, type[BaseModel]]]:
    sections = [("Top level", Settings)]
    for name, field in Settings.model_fields.items():
        if not field.exclude and isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            sections.append((f"[{name}]", field.annotation))
    return sections


def test_the_core_sections_are_the_known_models():
    assert [model for _, model in core_sections()[1:]] == [TradingConfig, OrchestratorConfig, PluginsConfig,
                                                           ServerConfig, WatchdogConfig,
                                                           BacktestConfig, OptimizerConfig, StrategyVersionsConfig]


def config_sections() -> list[tuple[str, type[BaseModel]]]:
    plugins = [(f"[plugins.{name}]", model) for name, model in sorted(builtin_plugin_models().items())]
    return core_sections() + plugins


@pytest.mark.parametrize("heading, model", config_sections(), ids=[heading for heading, _ in config_sections()])
def test_configuration_md_documents_every_key_with_its_default(heading, model):
    documented = documented_keys(heading)
    expected = expected_defaults(model)
    missing = sorted(set(expected) - set(documented))
    assert not missing, f"docs/configuration.md '{heading}' has no row for: {', '.join(missing)}"
    stale = sorted(set(documented) - set(expected))
    assert not stale, f"docs/configuration.md '{heading}' documents keys that do not exist: {', '.join(stale)}"
    for key, default in expected.items():
        assert documented[key].strip("`") == default, (
            f"{heading} {key}: documented default {documented[key]}, code says {default}")




# -- (d) the contract is light --------------------------------------------------------------

HEAVY = ("ccxt", "openai", "playwright", "sqlmodel", "gobot", "gobot_plugins", "click", "rich", "apscheduler")

IMPORT_PROBE = textwrap.dedent(
    f"""
    import json, sys, time
    before = set(sys.modules)
    started = time.perf_counter()
    import gobot_hookspecs
    seconds = time.perf_counter() - started
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
    new = sorted({{m.split(".")[0] for m in set(sys.modules) - before}})
    print(json.dumps({{"seconds": seconds, "heavy": heavy, "new": new}}))
    """
)


@functools.cache
def contract_import_probe() -> dict:
    """What a fresh interpreter imports with ``import gobot_hookspecs``, and how long that takes."""
    result = subprocess.run([sys.executable, "-I", "-c", IMPORT_PROBE], capture_output=True, text=True, timeout=60,
                            check=True)
    return json.loads(result.stdout)


@pytest.mark.slow
def test_importing_the_contract_is_fast_and_pulls_in_nothing_heavy():
    probe = contract_import_probe()
    assert probe["heavy"] == [], f"importing gobot_hookspecs imported {probe['heavy']}"
    assert probe["seconds"] < 0.5, f"importing gobot_hookspecs took {probe['seconds']:.3f} s"


def requirement_closure(*names: str) -> set[str]:
    """The distributions ``names`` and everything they require (extras and other platforms' markers apart)."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: set[str] = set()
    pending = [canonicalize_name(name) for name in names]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        try:
            requirements = [Requirement(line) for line in requires(name) or []]
        except PackageNotFoundError:
            continue
        pending += [canonicalize_name(r.name) for r in requirements if not r.marker or r.marker.evaluate({"extra": ""})]
    return found


@pytest.mark.slow
def test_importing_the_contract_imports_only_the_standard_library_pluggy_and_pydantic():
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    allowed = requirement_closure("pluggy", "pydantic") | {"gobot-hookspecs"}
    owners = packages_distributions()
    others = {
        module: owners.get(module, ["?"])
        for module in contract_import_probe()["new"]
        if module not in sys.stdlib_module_names and not module.startswith("_sysconfigdata")
        and not {canonicalize_name(owner) for owner in owners.get(module, [])} & allowed
    }
    assert not others, (
        f"importing gobot_hookspecs imported {others} (module: distributions); allowed: {sorted(allowed)}"
    )
