"""How the core calls hooks, held to the contract: each spec's ``firstresult`` matches its call sites,
a hook wrapper is refused with the plugin's name (never skipped silently), and ``GOBOT_TRACE_HOOKS=1``
traces every implementation called."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from gobot.errors import PluginError
from gobot.host.hook_caller import HookCaller
from gobot.host.plugin_manager import new_plugin_manager
from gobot_hookspecs import Action, Signal, hookimpl, specs

GOBOT = Path(__file__).resolve().parents[1] / "gobot"
#: HookCaller methods and whether the hook they call must be a firstresult spec.
STYLES = {"first": True, "first_sync": True, "collect": False, "collect_sync": False, "notify": False, "risk": False}
SIGNAL = Signal(symbol="BTC/USDT", action=Action.LONG, confidence=0.8)


# -- firstresult: the spec says how its call sites call it ------------------------------------------


def _module_constants(tree: ast.Module) -> dict[str, str]:
    return {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for target in node.targets if isinstance(target, ast.Name)}


def _is_hook_caller(receiver: ast.expr) -> bool:
    """``hooks``, ``self.hooks``, ``bot.hooks``, ``self._bot.hooks`` or ``HookCaller(...)``."""
    if isinstance(receiver, ast.Call):
        return isinstance(receiver.func, ast.Name) and receiver.func.id == "HookCaller"
    return (isinstance(receiver, ast.Name) and receiver.id == "hooks") or (
        isinstance(receiver, ast.Attribute) and receiver.attr == "hooks")


def hook_call_sites() -> list[tuple[str, str, str]]:
    """Every ``<hook caller>.<style>(hook, ...)`` in gobot/ as (where, style, hook name)."""
    sites = []
    for path in sorted(GOBOT.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _module_constants(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in STYLES
                    and _is_hook_caller(node.func.value)):
                continue
            where = f"{path.relative_to(GOBOT.parent)}:{node.lineno}"
            if node.func.attr == "risk":
                sites.append((where, "risk", "gobot_risk_check"))
                continue
            first = node.args[0] if node.args else None
            name = first.value if isinstance(first, ast.Constant) else constants.get(getattr(first, "id", ""), "?")
            sites.append((where, node.func.attr, name))
    return sites


def test_the_core_calls_firstresult_hooks_with_first_and_the_others_with_collect_notify_or_risk():
    pm = new_plugin_manager()
    sites = hook_call_sites()
    hooks = {hook for _, _, hook in sites}
    assert len(sites) > 30 and {"gobot_execute_order", "gobot_scan_market", "gobot_send_alert"} <= hooks
    wrong = []
    for where, style, hook in sites:
        caller = getattr(pm.hook, hook, None)
        if caller is None or caller.spec is None:
            wrong.append(f"{where}: {style}({hook!r}) names no hook spec (a literal or a module constant, please)")
        elif bool(caller.spec.opts.get("firstresult")) != STYLES[style]:
            spec = "a firstresult spec" if caller.spec.opts.get("firstresult") else "not a firstresult spec"
            wrong.append(f"{where}: {style}({hook!r}), but {hook} is {spec}")
    assert wrong == []


def test_every_runtime_hook_spec_is_called_somewhere_in_the_core():
    called = {hook for _, _, hook in hook_call_sites()}
    declared = {name for name in dir(specs) if name.startswith("gobot_")}
    # Called by plugins through ctx (ctx.chart, ctx.trade_history, ...) count: Context is core code.
    assert declared - called == set()


# -- hook wrappers: refused, naming the plugin --------------------------------------------------------


class Ideas:
    @hookimpl
    def gobot_generate_ideas(self):
        return [SIGNAL]


class Timer:
    @hookimpl(wrapper=True)
    def gobot_generate_ideas(self):
        return (yield)


class OldTimer:
    @hookimpl(hookwrapper=True)
    def gobot_size_position(self):
        yield


def caller_with(*plugins):
    pm = new_plugin_manager()
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    failures = []
    return HookCaller(pm, on_failure=failures.append), failures


def test_a_hook_wrapper_is_refused_as_its_plugins_failure_and_the_others_still_answer():
    hooks, failures = caller_with(("ideas", Ideas()), ("timer", Timer()))
    answers = asyncio.run(hooks.collect("gobot_generate_ideas", ctx=None, snapshots=[], learnings=[]))
    assert [name for name, _ in answers] == ["ideas"]
    [failure] = failures
    assert failure.plugin == "timer" and failure.hook == "gobot_generate_ideas"
    assert "hook wrapper (wrapper=True), which gobot does not run" in str(failure)


def test_an_old_style_hookwrapper_on_a_firstresult_hook_is_an_error_naming_the_plugin():
    hooks, _ = caller_with(("old_timer", OldTimer()))
    with pytest.raises(PluginError) as raised:
        asyncio.run(hooks.first("gobot_size_position", ctx=None, signal=SIGNAL))
    assert raised.value.plugin == "old_timer" and "hookwrapper=True" in str(raised.value)


def test_a_bot_with_a_hook_wrapper_plugin_never_starts_and_says_which_plugin(replay_bot):
    with pytest.raises(PluginError) as raised:  # the plugin manager refuses it at load, before the caller could
        replay_bot(plugins=[("timer", Timer())])
    assert raised.value.plugin == "timer"
    assert "hook wrappers are not supported (gobot_generate_ideas)" in str(raised.value)


# -- GOBOT_TRACE_HOOKS=1 ------------------------------------------------------------------------------


def test_tracing_writes_hook_plugin_duration_and_outcome_per_call_to_stderr(monkeypatch, capsys):
    monkeypatch.setenv("GOBOT_TRACE_HOOKS", "1")
    hooks, _ = caller_with(("ideas", Ideas()), ("timer", Timer()))
    asyncio.run(hooks.collect("gobot_generate_ideas", ctx=None, snapshots=[], learnings=[]))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert {line.split(" ms ")[1] for line in lines} == {"answered", "raised"}
    for line, plugin in zip(sorted(lines), ("ideas", "timer")):
        words = line.split()
        assert words[:4] == ["gobot", "hook", "gobot_generate_ideas", f"plugin={plugin}"]
        assert float(words[4]) >= 0 and words[5] == "ms"


def test_tracing_covers_a_whole_cycle_and_is_off_by_default(replay_bot, monkeypatch, capfd, tmp_path):
    asyncio.run(replay_bot(state_dir=tmp_path / "quiet").run_cycle())
    assert "gobot hook " not in capfd.readouterr().err
    monkeypatch.setenv("GOBOT_TRACE_HOOKS", "1")
    asyncio.run(replay_bot(state_dir=tmp_path / "traced").run_cycle())
    lines = capfd.readouterr().err.splitlines()
    traced = {tuple(line.split()[2:4]) for line in lines if line.startswith("gobot hook ")}
    assert {("gobot_config_model", "plugin=risk_limits"), ("gobot_clock", "plugin=replay"),
            ("gobot_scan_market", "plugin=replay"), ("gobot_on_scan_end", "plugin=circuit_breaker"),
            ("gobot_report", "plugin=console"), ("gobot_on_cycle_end", "plugin=circuit_breaker")} <= traced
