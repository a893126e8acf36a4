"""Build the pluggy plugin manager: find plugins in the ``gobot`` entry-point group, block the
disabled ones before they are imported, load the rest one at a time, and record what happened.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import pluggy

from gobot.errors import PluginError
from gobot.host.extras import DISTRIBUTION
from gobot_hookspecs import CONTRACT_VERSION, PROJECT_NAME, specs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "gobot"
#: The distribution that carries the hook contract; plugins declare the range they support on it.
CONTRACT_DISTRIBUTION = "gobot-hookspecs"
#: The core's own distribution (the PyPI name; ``gobot`` there is an unrelated project). Its built-ins
#: ship with their contract, and those with heavy dependencies name an extra of it.
CORE_DISTRIBUTION = DISTRIBUTION

#: Built-in plugins that are on unless ``[plugins] disable`` lists them. Every other installed
#: plugin (built-in or third-party) is off until ``[plugins] enable`` (or ``-p NAME``) lists it:
#: a package installed for some other reason never starts trading by itself.
DEFAULT_PLUGINS = (
    "replay",
    "sma_rsi",
    "adjuster",
    "validator",
    "risk_limits",
    "circuit_breaker",
    "kelly_size",  # the default sizer; fixed_size is the simple alternative (enable it, disable kelly_size)
    "paper",
    "console",
    "archiver",
    "drift",  # idle on paper; in testnet and live every order gets its paper twin (docs/drift.md)
)

#: Plugins that only simulate, switched off in live mode so nothing ever falls back to fake fills.
SIMULATION_ONLY = ("paper",)


@dataclass
class PluginInfo:
    """What ``gobot plugins`` shows about one plugin."""

    name: str
    distribution: str = ""
    version: str = ""
    status: str = "disabled"  # enabled | disabled | failed
    reason: str = ""
    hooks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "reason": self.reason,
            "hooks": self.hooks,
        }


@dataclass
class PluginSet:
    """A plugin manager together with the record of every plugin it considered."""

    pm: pluggy.PluginManager
    plugins: dict[str, PluginInfo]

    @property
    def enabled(self) -> list[str]:
        return [name for name, info in self.plugins.items() if info.status == "enabled"]

    @property
    def failures(self) -> list[PluginInfo]:
        return [info for info in self.plugins.values() if info.status == "failed"]

    def raise_for_failures(self) -> None:
        """The bot never starts half-configured: one failed plugin stops it, with its name."""
        failed = self.failures
        if failed:
            first, others = failed[0], [info.name for info in failed[1:]]
            also = f"; also failed: {', '.join(others)} (see `gobot plugins`)" if others else ""
            hint = ""
            if first.reason.startswith("enabled but not installed"):  # a misspelt name, most likely
                known = [name for name, info in self.plugins.items()
                         if not info.reason.startswith("enabled but not installed")]
                close = difflib.get_close_matches(first.name, sorted(known), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
            raise PluginError(first.name, first.reason + hint + also, first.distribution or None)

    def implementers(self, hook_name: str) -> list[str]:
        return [impl.plugin_name for impl in getattr(self.pm.hook, hook_name).get_hookimpls()]


def new_plugin_manager() -> pluggy.PluginManager:
    """A fresh manager that knows gobot's hook specifications and nothing else."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(specs)
    return pm


def entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def wanted_plugins(enable: Iterable[str] = (), disable: Iterable[str] = ()) -> set[str]:
    """Defaults, plus ``enable``, minus ``disable`` (disable wins)."""
    return (set(DEFAULT_PLUGINS) | set(enable)) - set(disable)


def build_plugin_set(
    enable: Iterable[str] = (),
    disable: Iterable[str] = (),
    *,
    live: bool = False,
    extra_plugins: Iterable[tuple[str, object]] = (),
    explain: bool = True,
) -> PluginSet:
    """Load the wanted plugins from the ``gobot`` entry-point group, one at a time.

    Every plugin not wanted is blocked (``set_blocked``) before anything is imported, so a
    plugin that crashes on import can still be switched off. Each enabled one is imported and
    registered on its own, so an error names the plugin and its distribution. Afterwards
    ``check_pending`` turns a misspelled hook name into an error instead of silence.

    (pluggy's ``load_setuptools_entrypoints(group, name)`` does the same per name but rescans
    every installed distribution on each call; one scan here keeps ``gobot --help`` fast.)

    ``extra_plugins`` registers ready objects under a name (tests and embedding). With ``explain``
    off, a plugin that is not enabled is not checked for a missing extra (its reason stays "not
    enabled"): a command that lists no plugins, such as ``gobot backtest``, skips that metadata work.
    """
    disable = set(disable) | (set(SIMULATION_ONLY) if live else set())
    wanted = wanted_plugins(enable, disable)
    pm = new_plugin_manager()
    plugins: dict[str, PluginInfo] = {}
    points = entry_points()

    for ep in points:
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, _facts(dist).name if dist else "", _facts(dist).version if dist else "")
        if ep.name in plugins:
            other = plugins[ep.name]
            if ep.name not in wanted:
                continue
            _fail(other, f"two distributions provide plugin '{ep.name}': {other.distribution} and "
                         f"{info.distribution}; uninstall one")
            continue
        plugins[ep.name] = info
        if ep.name not in wanted:
            pm.set_blocked(ep.name)
            info.reason = "disabled in config" if ep.name in disable else "not enabled (add to [plugins] enable)"
            if live and ep.name in SIMULATION_ONLY:
                info.reason = "simulation only: off in live mode"
            needs = missing_extra(ep) if explain else None
            if needs and ep.name not in disable:
                info.reason = needs  # what it takes to use it, before anyone enables it

    for ep in points:
        info = plugins[ep.name]
        if pm.is_blocked(ep.name) or info.status == "failed":
            continue
        _load_one(pm, ep, info)

    for name, plugin in extra_plugins:
        info = plugins.setdefault(name, PluginInfo(name, "(registered in process)"))
        if name in disable:
            pm.set_blocked(name)
            info.status, info.reason = "disabled", "disabled in config"
            continue
        if pm.is_blocked(name):  # an installed plugin of that name, not enabled: the object given here replaces it
            pm.unblock(name)
            info = plugins[name] = PluginInfo(name, "(registered in process)")
        _register(pm, plugin, info)

    for name in sorted(wanted - set(plugins)):
        plugins[name] = PluginInfo(name, status="failed", reason="enabled but not installed (no such entry point)")

    _check_pending(pm, plugins)
    return PluginSet(pm, plugins)


def _one_line(text: str) -> str:
    """Reasons end up in one line of CLI output (and one table cell), whatever the exception said."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _fail(info: PluginInfo, reason: str) -> None:
    info.status, info.reason = "failed", _one_line(reason)


def contract_mismatch(dist: importlib.metadata.Distribution | None) -> str | None:
    """Why ``dist`` cannot be loaded by this core's contract, or None if it can.

    A plugin declares the contract it was built for the way pip sees it: a requirement on the
    ``gobot-hookspecs`` distribution (``gobot-hookspecs>=1.0,<2``). The installed contract's version
    must be inside that range. A distribution that names no such requirement (or gobot itself,
    whose built-ins ship with the core) is not checked. Read from the metadata, before any import:
    a plugin built for another contract may not even import against this one.
    """
    if dist is None or _canonical(_facts(dist).name) == CORE_DISTRIBUTION:
        return None
    wanted = [spec for name, spec in map(_requirement, _facts(dist).requires) if name == CONTRACT_DISTRIBUTION]
    if not wanted:
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet  # only for third-party plugins

    have = contract_version()
    for spec in wanted:
        try:
            ok = SpecifierSet(spec).contains(have, prereleases=True)
        except InvalidSpecifier:
            return f"declares an unreadable contract requirement '{CONTRACT_DISTRIBUTION}{spec}'; fix its metadata"
        if not ok:
            return (
                f"built for contract {CONTRACT_DISTRIBUTION}{spec}, but this gobot's contract is {CONTRACT_VERSION} "
                f"({CONTRACT_DISTRIBUTION} {have}); install a release of {_facts(dist).name} that supports "
                f"contract {CONTRACT_VERSION}, or a gobot whose contract it supports"
            )
    return None


def contract_version() -> str:
    """The installed contract's version: the ``gobot-hookspecs`` distribution's, else ``CONTRACT_VERSION``."""
    try:
        return importlib.metadata.version(CONTRACT_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return CONTRACT_VERSION


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(line: str) -> tuple[str, str]:
    """``(canonical name, specifier)`` of a ``Requires-Dist`` line; extras' requirements are skipped."""
    requirement, _, marker = line.partition(";")
    if "extra" in marker:  # test or docs extras do not bind the plugin at run time
        return "", ""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*\(?([^)]*)\)?\s*$", requirement)
    if match is None or match.group(2).strip().startswith("@"):  # a direct URL reference states no range
        return (_canonical(match.group(1)), "") if match else ("", "")
    return _canonical(match.group(1)), match.group(2).strip()


def missing_extra(ep: importlib.metadata.EntryPoint) -> str | None:
    """``needs: pip install 'DIST[EXTRA]'`` when the plugin's extra is not installed, else None.

    A plugin with heavy dependencies names the extra of its distribution that brings them, in its
    entry point (``vision = "gobot_plugins.vision:Vision [vision]"``). Each requirement of that
    extra (``Requires-Dist: openai>=1.40; extra == "vision"``) must be installed at a matching
    version. Read from the metadata, before anything is imported: a missing extra is one line, not
    an ImportError traceback.
    """
    dist = getattr(ep, "dist", None)
    extras = getattr(ep, "extras", None) or []
    if dist is None or not extras:
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    missing = []
    for extra in extras:
        for name, spec in _extra_requirements(_facts(dist).requires, extra):
            try:
                have = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                missing.append(extra)
                break
            try:
                if spec and not SpecifierSet(spec).contains(have, prereleases=True):
                    missing.append(extra)
                    break
            except InvalidSpecifier:
                continue
    if not missing:
        return None
    return f"needs: pip install '{_facts(dist).name}[{','.join(missing)}]'"


#: The marker of nearly every ``Requires-Dist`` line of an extra, read without packaging's marker parser (25 ms).
_SIMPLE_EXTRA = re.compile(r"""\s*extra\s*==\s*["']([^"']+)["']\s*""")


def _extra_requirements(lines: Iterable[str], extra: str) -> Iterable[tuple[str, str]]:
    """``(name, specifier)`` of each requirement that only ``extra`` brings."""
    for line in lines:
        requirement, _, marker = line.partition(";")
        simple = _SIMPLE_EXTRA.fullmatch(marker)
        if simple:
            name, spec = _requirement(requirement)
            if name and _canonical(simple.group(1)) == _canonical(extra):
                yield name, spec
            continue
        if not marker.strip():  # not specific to an extra
            continue
        from packaging.requirements import InvalidRequirement, Requirement  # any other marker: the full parser

        try:
            parsed = Requirement(line)
        except InvalidRequirement:
            continue
        if parsed.marker.evaluate({"extra": extra}) and not parsed.marker.evaluate({"extra": ""}):
            yield parsed.name, str(parsed.specifier)


@dataclass(frozen=True)
class _DistFacts:
    name: str
    version: str
    requires: tuple[str, ...]


@functools.lru_cache(maxsize=256)
def _facts(dist: importlib.metadata.Distribution) -> _DistFacts:
    """A distribution's name, version and requirements: its metadata file is parsed once, not per entry point."""
    metadata = dist.metadata
    return _DistFacts(metadata["Name"] or "", metadata["Version"] or "", tuple(dist.requires or ()))


def _load_one(pm: pluggy.PluginManager, ep: importlib.metadata.EntryPoint, info: PluginInfo) -> None:
    mismatch = contract_mismatch(getattr(ep, "dist", None))
    if mismatch:
        _fail(info, mismatch)
        return
    needs = missing_extra(ep)
    if needs:
        _fail(info, needs)
        return
    try:
        plugin = ep.load()
    except Exception as exc:  # a broken third-party plugin must name itself, not crash the CLI
        _fail(info, f"import failed: {type(exc).__name__}: {exc}")
        return
    if isinstance(plugin, type):  # a class is instantiated per manager: fresh state for every bot
        try:
            plugin = plugin()
        except Exception as exc:
            _fail(info, f"could not be created: {type(exc).__name__}: {exc}")
            return
    _register(pm, plugin, info)


def _register(pm: pluggy.PluginManager, plugin: object, info: PluginInfo) -> None:
    try:
        registered = pm.register(plugin, name=info.name)
    except pluggy.PluginValidationError as exc:
        _fail(info, f"wrong hook signature: {exc}")
        return
    except ValueError as exc:
        _fail(info, f"cannot register: {exc}")
        return
    if registered is None:  # pluggy skips a blocked name silently
        info.status, info.reason = "disabled", info.reason or "blocked"
        return
    wrappers = [impl.function.__name__ for impl in _impls_of(pm, plugin) if impl.wrapper or impl.hookwrapper]
    if wrappers:  # gobot's hook caller awaits each implementation itself; a wrapper would never run
        pm.unregister(plugin)
        info.status, info.reason = "failed", f"hook wrappers are not supported ({', '.join(wrappers)}); use plain hooks"
        return
    info.status, info.reason = "enabled", ""
    info.hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])


def _impls_of(pm: pluggy.PluginManager, plugin: object) -> list[pluggy.HookImpl]:
    return [impl for caller in pm.get_hookcallers(plugin) or [] for impl in caller.get_hookimpls()
            if impl.plugin is plugin]


def _check_pending(pm: pluggy.PluginManager, plugins: dict[str, PluginInfo]) -> None:
    """Fail plugins whose hook implementations match no hookspec (usually a typo in the name)."""
    known = [name for name in vars(specs) if name.startswith("gobot_")]
    bad: dict[str, str] = {}
    for name, hook_caller in list(vars(pm.hook).items()):
        if hook_caller.spec is not None:
            continue
        for impl in hook_caller.get_hookimpls():
            if not impl.optionalhook:
                guess = difflib.get_close_matches(name, known, n=1)
                bad.setdefault(impl.plugin_name, f"implements unknown hook {name}"
                               + (f"; did you mean {guess[0]}?" if guess else ""))
    for plugin_name, reason in bad.items():
        info = plugins.get(plugin_name)
        if info is not None:
            _fail(info, reason)
        pm.unregister(name=plugin_name)
    pm.check_pending()
