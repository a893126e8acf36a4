"""Call hooks the way gobot's contract promises, sync or async, one implementation at a time.

pluggy alone would treat an un-awaited coroutine as a non-None "first result" and would let
an async risk check raise outside its error handling, so the core walks the implementations
itself (in pluggy's order: tryfirst first, trylast last) and awaits where needed.

Four call styles:
- ``collect``: every implementation answers; a raising one is logged with its name and skipped.
- ``notify``: the same, for hooks whose answers don't matter (alerts, reports, events).
- ``first``: stop at the first non-None answer (executor, sizer, clock, rate-limit policy).
- ``risk``: every verdict counts and a raising risk check is a veto (fail closed).
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable

import pluggy

from gobot_hookspecs import RiskVerdict

from gobot.errors import PluginError

log = logging.getLogger(__name__)


@dataclass
class HookFailure:
    """An implementation that raised, kept so the cycle report can say who failed and why."""

    plugin: str
    hook: str
    error: BaseException

    def __str__(self) -> str:
        return f"plugin '{self.plugin}' failed in {self.hook}: {type(self.error).__name__}: {self.error}"


class HookCaller:
    """Calls the hooks of one plugin manager; failures go to ``on_failure`` (logged by default)."""

    def __init__(self, pm: pluggy.PluginManager, on_failure: Callable[[HookFailure], None] | None = None):
        self.pm = pm
        self.on_failure = on_failure or (lambda failure: log.error("%s", failure))

    def _impls(self, hook: str) -> list[pluggy.HookImpl]:
        impls = getattr(self.pm.hook, hook).get_hookimpls()
        # pluggy calls the last-registered (and tryfirst) implementation first.
        return [impl for impl in reversed(impls) if not (impl.hookwrapper or impl.wrapper)]

    @staticmethod
    async def _call(impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
        result = impl.function(*[kwargs[name] for name in impl.argnames])
        if inspect.isawaitable(result):
            result = await result
        return result

    def _fail(self, impl: pluggy.HookImpl, hook: str, error: BaseException) -> HookFailure:
        failure = HookFailure(impl.plugin_name, hook, error)
        self.on_failure(failure)
        return failure

    async def collect(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Every non-None answer as ``(plugin_name, result)``, in call order."""
        answers = []
        for impl in self._impls(hook):
            try:
                result = await self._call(impl, kwargs)
            except Exception as exc:
                self._fail(impl, hook, exc)
                continue
            if result is not None:
                answers.append((impl.plugin_name, result))
        return answers

    async def notify(self, hook: str, **kwargs: Any) -> list[HookFailure]:
        """Call every implementation in isolation; return the failures."""
        failures = []
        for impl in self._impls(hook):
            try:
                await self._call(impl, kwargs)
            except Exception as exc:
                failures.append(self._fail(impl, hook, exc))
        return failures

    async def first(self, hook: str, **kwargs: Any) -> tuple[str, Any] | None:
        """The first non-None answer as ``(plugin_name, result)``; an exception names its plugin."""
        for impl in self._impls(hook):
            try:
                result = await self._call(impl, kwargs)
            except Exception as exc:
                raise PluginError(impl.plugin_name, f"{type(exc).__name__}: {exc}", hook=hook) from exc
            if result is not None:
                return impl.plugin_name, result
        return None

    async def risk(self, **kwargs: Any) -> list[RiskVerdict]:
        """Every risk plugin's verdict; a raising check becomes a veto that says why (fail closed)."""
        verdicts = []
        for impl in self._impls("gobot_risk_check"):
            try:
                verdict = await self._call(impl, kwargs)
                if verdict is None:
                    continue
                if not isinstance(verdict, RiskVerdict):
                    raise TypeError(f"returned {type(verdict).__name__}, expected RiskVerdict or None")
                verdicts.append(verdict.model_copy(update={"plugin": impl.plugin_name}))
            except Exception as exc:
                self._fail(impl, "gobot_risk_check", exc)
                reason = f"risk check raised {type(exc).__name__}: {exc} (fail closed)"
                verdicts.append(RiskVerdict(approved=False, reason=reason, plugin=impl.plugin_name))
        return verdicts

    def first_sync(self, hook: str, **kwargs: Any) -> Any:
        """The first non-None answer of a start-up ``firstresult`` hook; later plugins are not called."""
        for impl in self._impls(hook):
            answer = self._call_sync(impl, hook, kwargs)
            if answer is not None:
                return answer
        return None

    def collect_sync(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """``collect`` for start-up hooks, which must be plain functions; errors name the plugin."""
        answers = []
        for impl in self._impls(hook):
            result = self._call_sync(impl, hook, kwargs)
            if result is not None:
                answers.append((impl.plugin_name, result))
        return answers

    @staticmethod
    def _call_sync(impl: pluggy.HookImpl, hook: str, kwargs: dict[str, Any]) -> Any:
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
            if inspect.isawaitable(result):
                getattr(result, "close", lambda: None)()
                raise TypeError(f"{hook} must be a plain function, not async")
        except Exception as exc:
            raise PluginError(impl.plugin_name, f"{type(exc).__name__}: {exc}", hook=hook) from exc
        return result
