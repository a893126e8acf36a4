"""The adaptive rate limiter: weight-aware budgets, a priority queue, header resync, 429/418 handling.

One ``AdaptiveRateLimiter`` per bot. Every exchange request first awaits
``acquire(weight, priority, orders=...)``; the answer's status and headers go to ``on_response``.

- **Budgets.** Each exchange budget (request weight per minute, orders per 10 s and per day, ...,
  from ``exchangeInfo`` via ``set_limits``, or the configured fallbacks) is a sliding-window log in
  a store (``budgets.py``). A sliding window that never holds more than the limit also never puts
  more than the limit into any of the exchange's fixed windows, so steady traffic can use the
  whole budget without a 429. Ordinary requests are also held to an even share of each slice of
  the window, so the log fills as evenly as it empties: no burst now means no stall one window
  later, when the burst's entries would all still be in the window.
- **Priority.** Requests wait in one queue ordered by priority (CRITICAL, HIGH, NORMAL, LOW), then
  arrival; only the head may take budget, so under saturation a CRITICAL request goes next. The last
  ``critical_reserve_percent`` of every budget is CRITICAL's alone: that is also what keeps the
  priority across bots sharing a budget, which have one queue each but one log — the others' ordinary
  requests stop below the reserve, and the log frees up steadily (see above), so a CRITICAL
  request never waits for more than the next free slot.
- **Resync.** ``X-MBX-USED-WEIGHT-<n><unit>`` and ``X-MBX-ORDER-COUNT-<n><unit>`` say what the
  exchange counted; when that is more than the log holds (another program on the same IP), the
  difference is added to the log.
- **429: learn, and wait what the exchange says.** Every request, CRITICAL too, waits the
  ``Retry-After`` — and nothing more: a multiplier on it only delays closes while the budget stays
  wrong. Instead the budget the exchange ran out of comes down to what the exchange said it had
  counted when it refused (its used-weight header; by ``backoff_multiplier`` without one), so the
  next window stays under the exchange's real limit, whatever was configured. It stays there for
  ``decay_after`` windows without another 429, then grows back over as many.
- **418** (banned): no request goes until the ban ends — a non-CRITICAL one fails at once, a
  CRITICAL one waits for the end (if it is near); a CRITICAL alert, and an execution error of kind
  ``banned`` (the circuit breaker opens on it).
- **Shared budgets.** The deadlines the exchange set and the lowered budgets are marks in the
  shared store: every bot behind the IP keeps to them, and a bot started later sees them — as
  wall-clock deadlines, so nothing outlives what the exchange asked for. When the shared store fails
  (after a bounded wait: ``budgets.py``), the bot uses a local budget — its 1/N of each budget for
  the N bots known to share it, and under the exchange's own count from the headers — with a
  CRITICAL alert, and goes back to sharing when the store answers again.

The clock and the sleep are injectable, so tests run minutes of budget in milliseconds.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import logging
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from pyrate_limiter import Rate, RateItem

from gobot_hookspecs import (
    Alert,
    ExecutionError,
    ExecutionFailed,
    MetricSample,
    PluginStatus,
    Priority,
    RateLimit,
    Severity,
)

from .budgets import MemoryStore

log = logging.getLogger(__name__)

HEADER = re.compile(r"^x-mbx-(used-weight|order-count)-(\d+)([smhd])$", re.IGNORECASE)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
HEADER_KIND = {"used-weight": "weight", "order-count": "orders"}
PLUGIN = "adaptive_rate_limit"
LEAK_EVERY_SECONDS = 5.0
MAX_SLEEP_SECONDS = 1.0  # re-check at least this often while waiting (other bots, resync)
#: A CRITICAL request waits out a ban that ends within this; a longer one (Binance's grow from 2
#: minutes to days for repeat offenders) fails it at once, so the caller can report it rather than hang.
CRITICAL_MAX_BAN_WAIT_SECONDS = 600.0
#: A lowered budget moves in steps of its window, but of a minute at most (a daily order budget
#: must not take days to recover).
MAX_STEP_SECONDS = 60.0
STORE_RETRY_SECONDS = 2.0  # while the shared store is unreachable, try it again this often
SHARER_BEAT_SECONDS = 2.0  # each bot says it shares the budget this often (and learns how many do)...
SHARER_TTL_SECONDS = 30.0  # ...and stops counting as a sharer this long after its last word


def default_limits(config: Any) -> list[RateLimit]:
    """Budgets used before an exchange advertises its own: Binance's historical defaults."""
    return [
        RateLimit(kind="weight", limit=1200, window_seconds=60),
        RateLimit(kind="orders", limit=50, window_seconds=10),
        RateLimit(kind="orders", limit=160000, window_seconds=86400),
    ]


def apply_overrides(limits: list[RateLimit], config: Any) -> list[RateLimit]:
    """The configured values replace the exchange's budget of the same kind and window."""
    overrides = {
        ("weight", 60.0): config.requests_per_minute,
        ("weight", 3600.0): config.requests_per_hour,
        ("orders", 10.0): config.orders_per_10s,
        ("orders", 86400.0): config.orders_per_day,
    }
    result = [limit for limit in limits if overrides.get((limit.kind, float(limit.window_seconds))) is None]
    for (kind, window), value in overrides.items():
        if value is not None:
            result.append(RateLimit(kind=kind, limit=value, window_seconds=window))
    return result


@dataclass
class Budget:
    """One exchange budget: a log in the store, with an ordinary and a CRITICAL limit."""

    kind: str
    limit: int  # the exchange's limit (or the configured one)
    ceiling: int  # what is used of it: the limit, or less after a 429 (``AdaptiveRateLimiter._ceiling``)
    window_ms: int
    key: str
    normal: Any  # pyrate bucket: the limit ordinary requests stop at
    critical: Any  # pyrate bucket over the same log: the limit CRITICAL requests stop at
    smooth: Any = None  # the ordinary limit plus a per-slice one (smoothing_slices), for requests that fit a slice
    own: Any = None  # a shared budget: this bot's own charges (in memory), held to its share
    own_critical: Any = None

    def units(self, weight: int, orders: int) -> int:
        return weight if self.kind == "weight" else orders if self.kind == "orders" else 1


@dataclass(order=True)
class Waiter:
    priority: int
    seq: int
    weight: int = field(compare=False)
    orders: int = field(compare=False)
    future: asyncio.Future = field(compare=False)
    charged: set = field(default_factory=set, compare=False)


def _limit_after(limit: int, percent: float) -> int:
    return max(1, math.floor(limit * (1 - percent / 100)))


class AdaptiveRateLimiter:
    """The policy object ``gobot_rate_limit_policy`` returns (see the module docstring)."""

    def __init__(
        self,
        config: Any,
        *,
        store: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        alert: Callable[[Alert], None] | None = None,
        report_error: Callable[[ExecutionError], None] | None = None,
    ):
        self.config = config
        self.shared_store = store if store is not None else MemoryStore()  # where the budgets live...
        self.store = self.shared_store  # ...and the store in use: a local one while the shared one is lost
        self.shared = bool(getattr(self.shared_store, "shared", False))
        self.clock = clock
        if self.shared:
            self.shared_store.clock = clock  # a shared store stamps entries when it writes them
        self.sleep = sleep
        self._alert = alert or (lambda alert: None)
        self._report_error = report_error or (lambda error: None)
        self.member = uuid.uuid4().hex  # this bot, among the sharers of a budget
        self.scope = "default"
        self.limits: list[RateLimit] = []
        self.budgets: list[Budget] = []
        self._own_store = MemoryStore()  # this bot's own charges of shared budgets
        self._queue: list[Waiter] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task | None = None
        self.paused_until = 0.0  # 429: everybody waits until then (the exchange's Retry-After)
        self.banned_until = 0.0  # 418: nobody goes until then
        self.cuts: dict[str, tuple[float, int]] = {}  # budget key -> (when, ceiling): budgets a 429 lowered
        self.local_since: float | None = None  # the shared store failed then: a local budget since
        self.sharers = 1  # bots known to share the budget (this one included)
        self._retry_store_at = 0.0
        self._beat_at = -math.inf
        self._beat_scope: str | None = None
        self._last_leak = 0.0
        # waits: seconds each request spent in acquire, the latest 100,000 per priority (the bench reads them)
        self.stats: dict[str, Any] = {"granted": 0, "status_429": 0, "status_418": 0, "resynced": 0,
                                      "store_failures": 0,
                                      "waits": {p: collections.deque(maxlen=100_000) for p in Priority}}
        self.set_limits(default_limits(config), "default")

    # -- budgets ------------------------------------------------------------------------------

    def set_limits(self, limits: list[RateLimit], scope: str) -> None:
        """Use the exchange's advertised budgets (overridable in the config) under ``scope``."""
        limits = apply_overrides(list(limits), self.config)
        if scope == self.scope and limits == self.limits:
            return
        self.scope, self.limits = scope, limits
        self._guarded(self._build, self.clock())

    def _ceiling(self, limit: int, window_ms: int, key: str, now: float) -> int:
        """The part of ``limit`` in use. After a 429 lowered it to ``value``, it stays there for
        ``decay_after`` steps (the budget's window, a minute at most), then grows back by a
        ``decay_after``-th of the gap each step: slowly enough that a wrong configured limit costs
        one 429 now and then, not a burst of them."""
        if key not in self.cuts:
            return limit
        at, value = self.cuts[key]
        decay = self.config.decay_after
        steps = int((now - at) // min(window_ms / 1000, MAX_STEP_SECONDS)) - decay + 1
        if steps >= decay:
            return limit
        return min(limit, value + max(0, (limit - value) * steps // decay))

    def _share(self) -> float:
        """This bot's part of each budget: ``bot_share``, and 1/N of N known sharers on a local budget."""
        if self.local_since is None:
            return self.config.bot_share
        return min(self.config.bot_share, 1 / max(1, self.sharers))

    def _build(self, now: float) -> None:
        """(Re)make the budgets' buckets in the store in use, at their current ceilings and share."""
        margin = self.config.safety_margin_percent
        reserve = self.config.critical_reserve_percent
        share = self._share()
        budgets = []
        for limit in self.limits:
            window_ms = int(limit.window_seconds * 1000)
            key = f"{self.scope}:{limit.kind}:{window_ms}"
            ceiling = self._ceiling(limit.limit, window_ms, key, now)
            normal_limit = _limit_after(ceiling, margin + reserve)
            normal_rate = Rate(normal_limit, window_ms)
            critical_rate = Rate(_limit_after(ceiling, margin), window_ms)
            normal, critical = self.store.buckets(key, [normal_rate, critical_rate])
            budget = Budget(limit.kind, limit.limit, ceiling, window_ms, key, normal, critical)
            slices = self.config.smoothing_slices
            if slices > 1 and window_ms // slices > 0 and normal_limit >= 2 * slices:
                # ...and no slice of the window may take more than its share: the log fills as evenly
                # as it empties. (1.5 x the share made windows fill in two thirds of their time, then
                # stall for the last third — again one window later, as the burst's entries left.)
                slice_rate = Rate(math.ceil(normal_limit / slices), window_ms // slices)
                [budget.smooth] = self.store.buckets(key, [[slice_rate, normal_rate]])
            if self.shared:
                mine = max(1, int(ceiling * share))
                budget.own, budget.own_critical = self._own_store.buckets(
                    key, [Rate(_limit_after(mine, margin + reserve), window_ms),
                          Rate(_limit_after(mine, margin), window_ms)])
            budgets.append(budget)
        self.budgets = budgets

    def used(self, kind: str, window_seconds: float) -> int:
        """Units the log holds for the budget of this kind and window (0 if there is none)."""
        now_ms = int(self.clock() * 1000)
        for budget in self.budgets:
            if budget.kind == kind and budget.window_ms == int(window_seconds * 1000):
                return self._guarded(self.store.count, budget.key, now_ms - budget.window_ms + 1) or 0
        return 0

    def status(self) -> PluginStatus:
        """Budgets used against their limits, queue depth by priority, ban or back-off: for ``gobot_status``."""
        now = self.clock()
        self._refresh(now)
        samples = []
        for budget in self.budgets:
            label = {"budget": f"{budget.kind}/{budget.window_ms // 1000}s"}
            used = self._guarded(self.store.count, budget.key, int(now * 1000) - budget.window_ms + 1) or 0
            samples.append(MetricSample(name=f"gobot_rate_limit_{budget.kind}_used", value=used, labels=label,
                                        help=f"{budget.kind} units used in the current window"))
            samples.append(MetricSample(name=f"gobot_rate_limit_{budget.kind}_limit", value=budget.limit, labels=label,
                                        help=f"the exchange's {budget.kind} limit for the window"))
            samples.append(MetricSample(name=f"gobot_rate_limit_{budget.kind}_ceiling", value=budget.ceiling,
                                        labels=label,
                                        help=f"the part of the {budget.kind} limit in use (lower after a 429)"))
        waiting = collections.Counter(Priority(waiter.priority).name for waiter in self._queue)
        for priority in Priority:
            samples.append(MetricSample(name="gobot_rate_limit_queue_depth", value=waiting[priority.name],
                                        labels={"priority": priority.name}, help="requests waiting, by priority"))
        if self.shared:
            samples.append(MetricSample(name="gobot_rate_limit_shared", value=0 if self.local_since is not None else 1,
                                        help="1 while the budgets are shared, 0 while the shared store is unreachable"))
        data = {"429": self.stats["status_429"], "418": self.stats["status_418"]}
        if self.banned_until > now:
            return PluginStatus(healthy=False, state="BANNED", metrics=samples, data=data,
                                reason=f"exchange IP ban (418): no requests for {self.banned_until - now:.0f} s")
        if self.local_since is not None:
            return PluginStatus(state="LOCAL_BUDGET", metrics=samples, data=data,
                                reason=f"shared budget unreachable: 1/{self.sharers} of each budget, on this bot's own")
        state = "BACKING_OFF" if self.paused_until > now else "OK"
        return PluginStatus(state=state, metrics=samples, data=data)

    # -- the shared store: marks, sharers, losing it and getting it back ----------------------------

    def _guarded(self, operation: Callable[..., Any], *args: Any) -> Any:
        """``operation(*args)``; if the shared store fails, None, and the local budget from now on."""
        try:
            return operation(*args)
        except self.shared_store.errors as exc:
            self._lose_store(exc)
            return None

    def _mark_names(self) -> list[str]:
        return ["paused_until", "banned_until"] + [f"cut:{budget.key}" for budget in self.budgets]

    def _publish(self, now: float) -> None:
        """Tell the other bots sharing the budget the exchange's deadlines and the lowered budgets."""
        if not self.shared or self.local_since is not None:
            return
        for name in ("paused_until", "banned_until"):
            deadline = getattr(self, name)
            if deadline > now:  # kept exactly until the exchange's own deadline
                self.store.mark(self.scope, name, deadline, now=now, keep_until=deadline)
        for key, (at, value) in self.cuts.items():
            if key.startswith(self.scope + ":"):  # kept until it has surely grown back
                self.store.mark(self.scope, f"cut:{key}", at, str(value), now=now,
                                keep_until=at + 2 * self.config.decay_after * MAX_STEP_SECONDS)

    def _adopt(self, now: float) -> None:
        """Take on the other bots' marks: a later deadline, a more recent cut."""
        marks = self.store.marks(self.scope, self._mark_names())
        self.paused_until = max(self.paused_until, marks.get("paused_until", (0.0, ""))[0])
        self.banned_until = max(self.banned_until, marks.get("banned_until", (0.0, ""))[0])
        for name, (at, payload) in marks.items():
            key = name.removeprefix("cut:")
            if name.startswith("cut:") and at > self.cuts.get(key, (-math.inf, 0))[0]:
                self.cuts[key] = (at, int(payload))

    def _refresh(self, now: float) -> None:
        """Before deciding: the shared marks, this bot's heartbeat, the ceilings, the lost store."""
        if self.local_since is not None:
            if now >= self._retry_store_at:
                self._try_store_again(now)
        elif self.shared:
            try:
                self._adopt(now)
                if self._beat_scope != self.scope or now - self._beat_at >= SHARER_BEAT_SECONDS:
                    if self._beat_scope not in (None, self.scope):
                        self.store.leave(self._beat_scope, self.member)
                    self.sharers = self.store.beat(self.scope, self.member, now, SHARER_TTL_SECONDS)
                    self._beat_scope, self._beat_at = self.scope, now
            except self.shared_store.errors as exc:
                self._lose_store(exc)
        if any(budget.ceiling != self._ceiling(budget.limit, budget.window_ms, budget.key, now)
               for budget in self.budgets):
            self._guarded(self._build, now)

    def _lose_store(self, exc: BaseException) -> None:
        """The shared store failed: from now on a local budget, 1/N of each for N known sharers."""
        now = self.clock()
        self._retry_store_at = now + STORE_RETRY_SECONDS
        if self.local_since is not None:
            return
        self.stats["store_failures"] += 1
        self.local_since = now
        self.store = MemoryStore()  # the exchange's count (headers) and this bot's charges from now on
        self._build(now)
        text = (f"the shared rate-limit store failed ({type(exc).__name__}: {exc}); "
                f"this bot now keeps to 1/{self.sharers} "
                f"of each budget on its own, and shares again once the store answers")
        log.error(text)
        self._alert(Alert(kind="rate_limit_store", title="Shared rate-limit budget unreachable: local budget",
                          text=text, severity=Severity.CRITICAL, data={"sharers": self.sharers}))

    def _try_store_again(self, now: float) -> None:
        """Share again if the store answers: first this bot's charges meanwhile go into the shared log
        (the other bots count them too), then the marks both ways."""
        self._retry_store_at = now + STORE_RETRY_SECONDS
        since, local = self.local_since, self.store
        try:
            self.shared_store.ping()
            for budget in self.budgets:
                horizon = int(now * 1000) - budget.window_ms + 1
                for timestamp, units in self._own_store.entries(budget.key, max(horizon, int(since * 1000))):
                    self.shared_store.force_put(budget.key, timestamp, units)
            self.store, self.local_since = self.shared_store, None
            self._adopt(now)
            self._publish(now)
            self._build(now)
        except self.shared_store.errors as exc:
            self.store, self.local_since = local, since  # still lost (its budgets were not replaced)
            log.warning("the shared rate-limit store is still unreachable: %s", exc)
            return
        text = f"the shared rate-limit store answers again after {now - since:.0f} s: the budgets are shared again"
        log.warning(text)
        self._alert(Alert(kind="rate_limit_store", title="Shared rate-limit budget back", text=text,
                          severity=Severity.INFO))

    # -- acquire ------------------------------------------------------------------------------

    async def acquire(self, weight: float, priority: Priority, orders: int = 0) -> None:
        priority = Priority(priority)
        now = self.clock()
        self._refresh(now)
        if self.banned_until > now and (priority is not Priority.CRITICAL
                                        or self.banned_until - now > CRITICAL_MAX_BAN_WAIT_SECONDS):
            raise self._banned_error(now)
        if priority is not Priority.CRITICAL and self.paused_until - now > self.config.max_wait_seconds:
            raise ExecutionFailed(ExecutionError(
                message=f"rate limited (429): requests paused for {self.paused_until - now:.0f} s more",
                kind="rate_limited", retryable=True, plugin=PLUGIN))
        loop = asyncio.get_running_loop()
        if getattr(self, "_loop", None) is not loop:  # a new event loop (a resumed run): fresh primitives
            self._loop, self._wake, self._queue, self._dispatcher = loop, asyncio.Event(), [], None
        waiter = Waiter(int(priority), next(self._seq), max(0, round(weight)), max(0, int(orders)),
                        loop.create_future())
        heapq.heappush(self._queue, waiter)
        self._wake.set()
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.ensure_future(self._dispatch())
        started = self.clock()
        try:
            await waiter.future
        finally:
            if not waiter.future.done():
                waiter.future.cancel()
        self.stats["granted"] += 1
        self.stats["waits"][priority].append(self.clock() - started)

    def _banned_error(self, now: float) -> ExecutionFailed:
        return ExecutionFailed(ExecutionError(
            message=f"IP banned by the exchange (418) for {self.banned_until - now:.0f} s more", kind="banned",
            retryable=False, plugin=PLUGIN))

    async def _dispatch(self) -> None:
        """Hand out budget to the head of the queue. Never dies with requests waiting (they would hang
        for good): a failing shared store means the local budget; anything else fails the head request."""
        while self._queue:
            self._wake.clear()
            head = self._queue[0]
            try:
                wait = self._step(head)
            except self.shared_store.errors as exc:
                self._lose_store(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - handed to the request that was being decided
                log.exception("rate limiter: a request failed while it waited")
                if self._queue and self._queue[0] is head:
                    heapq.heappop(self._queue)
                if not head.future.done():
                    head.future.set_exception(exc)
                continue
            if wait > 0:
                await self._wait(wait)

    def _step(self, head: Waiter) -> float:
        """Decide about the head request: 0 once it is granted or failed, else seconds to wait."""
        if head.future.done():  # cancelled by its caller
            heapq.heappop(self._queue)
            return 0.0
        now = self.clock()
        self._refresh(now)
        self._leak(now)
        critical = head.priority == Priority.CRITICAL
        if self.banned_until > now:
            if critical and self.banned_until - now <= CRITICAL_MAX_BAN_WAIT_SECONDS:
                return self.banned_until - now  # what the ban requires, no more
            heapq.heappop(self._queue)
            head.future.set_exception(self._banned_error(now))
            return 0.0
        if self.paused_until > now:
            return self.paused_until - now  # the exchange's Retry-After, no more
        wait = self._try_charge(head, now)
        if wait <= 0:
            heapq.heappop(self._queue)
            head.future.set_result(None)
            return 0.0
        return min(wait, MAX_SLEEP_SECONDS)

    async def _wait(self, seconds: float) -> None:
        """Sleep, but wake up early when a new request arrives (it may outrank the head)."""
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        done, pending = await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    def _try_charge(self, waiter: Waiter, now: float) -> float:
        """Charge every budget the request needs; 0 if all took it, else seconds to wait."""
        timestamp = int(now * 1000)
        critical = waiter.priority == Priority.CRITICAL
        for index, budget in enumerate(self.budgets):
            if index in waiter.charged:
                continue
            units = budget.units(waiter.weight, waiter.orders)
            if units <= 0:
                continue
            wait_ms = self._put(budget, units, timestamp, critical)
            if wait_ms:
                return wait_ms / 1000
            waiter.charged.add(index)
        return 0.0

    def _put(self, budget: Budget, units: int, timestamp: int, critical: bool) -> int:
        """Charge one budget; 0 on success, else milliseconds until it may fit."""
        bucket = budget.critical if critical else budget.normal
        units = min(units, bucket.rates[-1].limit)  # heavier than the whole budget: wait for all of it
        if not critical and budget.smooth is not None and units <= budget.smooth.rates[0].limit:
            bucket = budget.smooth
        own = None
        if budget.own is not None:
            own = budget.own_critical if critical else budget.own
            units = min(units, own.rates[0].limit)
            decision = own.put_decision(RateItem("gobot", timestamp, units))
            if not decision.allowed:
                return max(1, decision.retry_after_ms or 50)
        try:
            decision = bucket.put_decision(RateItem("gobot", timestamp, units))
        except BaseException:
            if own is not None:
                self._own_store.remove_newest(budget.key, units)
            raise
        if decision.allowed:
            return 0
        if own is not None:
            self._own_store.remove_newest(budget.key, units)
        return max(1, decision.retry_after_ms or 50)

    def _leak(self, now: float) -> None:
        if now - self._last_leak < LEAK_EVERY_SECONDS:
            return
        self._last_leak = now
        for budget in self.budgets:
            budget.critical.leak(int(now * 1000))
            if budget.own is not None:
                budget.own.leak(int(now * 1000))

    # -- learning from responses -------------------------------------------------------------------

    def on_response(self, status: int, headers: dict[str, str]) -> None:
        now = self.clock()
        lowered = {str(k).lower(): v for k, v in (headers or {}).items()}
        self._guarded(self._resync, lowered, now)
        if status not in (429, 418):
            return
        quiet = max(self.paused_until, self.banned_until) <= now  # not one more answer to a burst already heard
        first_ban = status == 418 and self.banned_until <= now
        retry = self._retry_after(lowered)
        cut = self._cut(lowered, now) if quiet else None
        if status == 429:
            self.stats["status_429"] += 1
            self.paused_until = max(self.paused_until, now + retry)
        else:
            self.stats["status_418"] += 1
            self.banned_until = max(self.banned_until, now + max(retry, 1.0))
        self._guarded(self._publish, now)
        self._wake.set()  # the queue re-decides: fail what must fail, wait what must wait
        lowered_text = ""
        if cut is not None:
            budget, before, seen = cut
            counted = f"the exchange counted {seen}" if seen is not None else "no used-weight header"
            lowered_text = (f"; the {budget.kind}/{budget.window_ms // 1000}s budget comes down "
                            f"from {before} to {budget.ceiling} "
                            f"({counted}) and grows back after {self.config.decay_after} windows without a 429")
        if status == 429 and quiet:
            text = f"every request waits the exchange's Retry-After ({retry:.1f} s){lowered_text}"
            self._alert(Alert(kind="rate_limited", title="Exchange rate limit hit (429)", severity=Severity.WARNING,
                              text=text, data={"pause_seconds": retry}))
        elif first_ban:
            ban = self.banned_until - now
            text = (f"the exchange banned this IP for {ban:.0f} s (418); no request goes until then "
                    f"(CRITICAL ones wait for its end)")
            self._alert(Alert(kind="exchange_ban", title="Exchange IP ban (418): trading halted",
                              text=text + lowered_text, severity=Severity.CRITICAL, data={"ban_seconds": ban}))
            self._report_error(ExecutionError(message=text, kind="banned", retryable=False, plugin=PLUGIN))

    def _cut(self, headers: dict[str, str], now: float) -> tuple[Budget, int, int | None] | None:
        """Lower the budget the exchange ran out of to what it counted when it refused.

        That is the one it counted fullest, relative to what we use of it; with no header, the
        shortest weight budget, by ``backoff_multiplier``. Never by more than that factor at once,
        nor below the limit / ``max_backoff_factor``.
        """
        counted = self._counted(headers)
        known = [budget for budget in self.budgets if (budget.kind, budget.window_ms) in counted]
        if known:
            budget = max(known, key=lambda b: counted[(b.kind, b.window_ms)] / b.ceiling)
            seen: int | None = counted[(budget.kind, budget.window_ms)]
        else:
            weights = [budget for budget in self.budgets if budget.kind == "weight"]
            if not weights:
                return None
            budget, seen = min(weights, key=lambda b: b.window_ms), None
        floor = max(1, math.ceil(budget.limit / self.config.max_backoff_factor),
                    math.ceil(budget.ceiling / self.config.backoff_multiplier))
        value = max(floor, min(budget.ceiling, seen if seen is not None else floor))
        if value >= budget.ceiling:
            return None
        before = budget.ceiling
        self.cuts[budget.key] = (now, value)
        self._guarded(self._build, now)
        return next(b for b in self.budgets if b.key == budget.key), before, seen

    def _retry_after(self, headers: dict[str, str]) -> float:
        try:
            return max(0.0, float(headers.get("retry-after", "")))
        except ValueError:
            return 1.0

    def _counted(self, headers: dict[str, str]) -> dict[tuple[str, int], int]:
        """(kind, window ms) -> what the exchange counted, from its used-weight and order-count headers."""
        counted = {}
        for name, value in headers.items():
            match = HEADER.match(name)
            if not match:
                continue
            try:
                number = int(float(value))
            except ValueError:
                continue
            window_ms = int(match.group(2)) * UNIT_SECONDS[match.group(3).lower()] * 1000
            counted[(HEADER_KIND[match.group(1).lower()], window_ms)] = number
        return counted

    def _resync(self, headers: dict[str, str], now: float) -> None:
        """Add what the exchange counted beyond our log (weight used elsewhere on this IP)."""
        now_ms = int(now * 1000)
        for (kind, window_ms), counted in self._counted(headers).items():
            for budget in self.budgets:
                if budget.kind != kind or budget.window_ms != window_ms:
                    continue
                ours = self.store.count(budget.key, now_ms - window_ms + 1)
                if counted > ours:
                    self.store.force_put(budget.key, now_ms, counted - ours)
                    self.stats["resynced"] += counted - ours

    def close(self) -> None:
        if self._dispatcher is not None and not self._dispatcher.done():
            self._dispatcher.cancel()
        for waiter in self._queue:
            if not waiter.future.done():
                waiter.future.cancel()
        self._queue.clear()
        if self.shared and self._beat_scope is not None and self.local_since is None:
            try:
                self.shared_store.leave(self._beat_scope, self.member)
            except self.shared_store.errors:
                pass
        self.shared_store.close()
        if self.store is not self.shared_store:
            self.store.close()
