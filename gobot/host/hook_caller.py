"""Call hooks the way gobot's contract promises, sync or async, one implementation at a time.

pluggy alone would treat an un-awaited coroutine as a non-None "first result" and would let
an async risk check raise outside its error handling, so the core walks the implementations
itself (in pluggy's order: tryfirst first, trylast last) and awaits where needed.

Four call styles:
- ``collect``: every implementation answers; a raising one is logged with its name and skipped.
- ``notify``: the same, for hooks whose answers don't matter (alerts, reports, events).
- ``first``: stop at the first non-None answer (executor, sizer, clock, rate-limit policy).
- ``risk``: every verdict counts and a raising risk check is a veto (fail closed).

A spec's ``firstresult`` says which style its call sites use (``first`` for firstresult specs, the
others for the rest); ``tests/test_hook_contract.py`` walks the core's call sites to keep that true.
Hook wrappers (``wrapper=True``, ``hookwrapper=True``) are refused, never skipped silently: the
implementations are called one by one, so there is no single call for a wrapper to wrap. The
failure names the plugin and the hook, like any implementation that raised.

``GOBOT_TRACE_HOOKS=1`` writes one line to stderr per implementation called: the hook, the
plugin, the duration and the outcome (see docs/operations.md).
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import time
from dataclasses import dataclass
from types import CoroutineType
from typing import Any, Callable, Collection

import pluggy

from gobot.errors import PluginError
from gobot_hookspecs import RiskVerdict

log = logging.getLogger(__name__)

TRACE_ENV = "GOBOT_TRACE_HOOKS"


class HookWrapperRefused(TypeError):
    """A plugin implemented a hook as a wrapper, which gobot's caller does not run."""


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
        self.trace = os.environ.get(TRACE_ENV) == "1"

    def _impls(self, hook: str) -> list[pluggy.HookImpl]:
        # pluggy calls the last-registered (and tryfirst) implementation first.
        return getattr(self.pm.hook, hook).get_hookimpls()[::-1]

    def _answer(self, impl: pluggy.HookImpl, kwargs: dict[str, Any], hook: str) -> Any:
        """The implementation's answer, or what to await for it (``_awaitable``): the call styles await only
        what needs it, so a plain implementation costs no coroutine of the caller's."""
        if self.trace:
            return self._traced(impl, kwargs, hook)
        if impl.wrapper or impl.hookwrapper:
            _refuse_wrapper(impl, hook)
        return impl.function(*[kwargs[name] for name in impl.argnames])

    async def _traced(self, impl: pluggy.HookImpl, kwargs: dict[str, Any], hook: str) -> Any:
        """``_call`` with its line on stderr (``GOBOT_TRACE_HOOKS=1``)."""
        started = time.perf_counter()
        outcome = "raised"
        try:
            _refuse_wrapper(impl, hook)
            result = impl.function(*[kwargs[name] for name in impl.argnames])
            if inspect.isawaitable(result):
                result = await result
            outcome = "None" if result is None else "answered"
            return result
        finally:
            _trace(hook, impl.plugin_name, started, outcome)

    def _fail(self, impl: pluggy.HookImpl, hook: str, error: BaseException) -> HookFailure:
        failure = HookFailure(impl.plugin_name, hook, error)
        self.on_failure(failure)
        return failure

    async def collect(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Every non-None answer as ``(plugin_name, result)``, in call order."""
        answers = []
        for impl in self._impls(hook):
            try:
                result = self._answer(impl, kwargs, hook)
                if _awaitable(result):
                    result = await result
            except Exception as exc:
                self._fail(impl, hook, exc)
                continue
            if result is not None:
                answers.append((impl.plugin_name, result))
        return answers

    def implementers(self, *hooks: str) -> set[str]:
        """The plugins implementing at least one of ``hooks``."""
        return {impl.plugin_name for hook in hooks for impl in getattr(self.pm.hook, hook).get_hookimpls()}

    async def notify(self, hook: str, **kwargs: Any) -> list[HookFailure]:
        """Call every implementation in isolation; return the failures."""
        return await self.notify_plugins(None, hook, **kwargs)

    async def notify_plugins(self, plugins: Collection[str] | None, hook: str, **kwargs: Any) -> list[HookFailure]:
        """``notify``, for the implementations of ``plugins`` only (None: every one)."""
        failures = []
        for impl in self._impls(hook):
            if plugins is not None and impl.plugin_name not in plugins:
                continue
            try:
                result = self._answer(impl, kwargs, hook)
                if _awaitable(result):
                    await result
            except Exception as exc:
                failures.append(self._fail(impl, hook, exc))
        return failures

    async def first(self, hook: str, **kwargs: Any) -> tuple[str, Any] | None:
        """The first non-None answer as ``(plugin_name, result)``; an exception names its plugin."""
        for impl in self._impls(hook):
            try:
                result = self._answer(impl, kwargs, hook)
                if _awaitable(result):
                    result = await result
            except Exception as exc:
                raise PluginError(impl.plugin_name, f"{type(exc).__name__}: {exc}", hook=hook) from exc
            if result is not None:
                return impl.plugin_name, result
        return None

    async def risk(self, **kwargs: Any) -> list[RiskVerdict]:
        """Every risk plugin's verdict, naming the plugin and the intent it judged (symbol, intent id); a raising
        check becomes a veto that says why (fail closed)."""
        verdicts = []
        intent = kwargs["intent"]
        tag = {"symbol": intent.symbol, "intent_id": intent.id}
        for impl in self._impls("gobot_risk_check"):
            try:
                verdict = self._answer(impl, kwargs, "gobot_risk_check")
                if _awaitable(verdict):
                    verdict = await verdict
                if verdict is None:
                    continue
                if not isinstance(verdict, RiskVerdict):
                    raise TypeError(f"returned {type(verdict).__name__}, expected RiskVerdict or None")
                verdicts.append(verdict.model_copy(update={"plugin": impl.plugin_name, **tag}))
            except Exception as exc:
                self._fail(impl, "gobot_risk_check", exc)
                reason = f"risk check raised {type(exc).__name__}: {exc} (fail closed)"
                verdicts.append(RiskVerdict(approved=False, reason=reason, plugin=impl.plugin_name, **tag))
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

    def _call_sync(self, impl: pluggy.HookImpl, hook: str, kwargs: dict[str, Any]) -> Any:
        started = time.perf_counter()
        outcome = "raised"
        try:
            _refuse_wrapper(impl, hook)
            result = impl.function(*[kwargs[name] for name in impl.argnames])
            if inspect.isawaitable(result):
                getattr(result, "close", lambda: None)()
                raise TypeError(f"{hook} must be a plain function, not async")
            outcome = "None" if result is None else "answered"
        except Exception as exc:
            raise PluginError(impl.plugin_name, f"{type(exc).__name__}: {exc}", hook=hook) from exc
        finally:
            if self.trace:
                _trace(hook, impl.plugin_name, started, outcome)
        return result


def _awaitable(result: Any) -> bool:
    """Whether an implementation's answer is to be awaited: most are None or plain values, a coroutine is known
    by its type (``inspect.isawaitable`` asks the ``Awaitable`` ABC only of the rest)."""
    return result is not None and (type(result) is CoroutineType or inspect.isawaitable(result))


def _refuse_wrapper(impl: pluggy.HookImpl, hook: str) -> None:
    if impl.wrapper or impl.hookwrapper:
        kind = "wrapper=True" if impl.wrapper else "hookwrapper=True"
        raise HookWrapperRefused(
            f"{hook} is a hook wrapper ({kind}), which gobot does not run: it calls each implementation on its own "
            f"(to isolate failures and await async ones), so there is no call to wrap. Implement {hook} as a plain "
            f"hook; to time hooks, set {TRACE_ENV}=1"
        )


def _trace(hook: str, plugin: str, started: float, outcome: str) -> None:
    """One line per implementation called, on stderr: greppable, and seen even before logging is set up."""
    ms = (time.perf_counter() - started) * 1000
    print(f"gobot hook {hook} plugin={plugin} {ms:.3f} ms {outcome}", file=sys.stderr, flush=True)
