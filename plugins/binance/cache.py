"""A read-through cache for market data, with request coalescing.

``await cache.get(key, ttl, load)`` returns the cached value while it is younger than ``ttl``
seconds; otherwise it calls ``load()`` once and every concurrent caller of the same key awaits
that one call (one request to the exchange, not one per caller). A failed load is not cached:
every waiter sees the error and the next call tries again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Hashable


class ReadThroughCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._values: dict[Hashable, tuple[float, Any]] = {}
        self._loading: dict[Hashable, asyncio.Future] = {}
        self.loads = 0  # calls that reached ``load`` (for tests and the bench)
        self.hits = 0

    async def get(self, key: Hashable, ttl: float, load: Callable[[], Awaitable[Any]]) -> Any:
        cached = self._values.get(key)
        if cached is not None and self.clock() - cached[0] < ttl:
            self.hits += 1
            return cached[1]
        pending = self._loading.get(key)
        if pending is not None and pending.get_loop() is asyncio.get_running_loop():
            self.hits += 1
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        self.loads += 1
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        else:
            self._values[key] = (self.clock(), value)
            future.set_result(value)
            return value
        finally:
            self._loading.pop(key, None)

    def clear(self) -> None:
        self._values.clear()
