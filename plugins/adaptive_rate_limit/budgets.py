"""Where the budgets' sliding-window logs live: in this process, a SQLite file, or Redis.

pyrate-limiter does the counting (its buckets keep one timestamped entry per unit of weight and
decide atomically whether ``weight`` more fit in the window); this module picks its backend for
the ``share`` setting and adds what pyrate-limiter has no call for: counting what a window holds
(to compare with the exchange's used-weight headers), adding weight regardless of the limit (to
catch up with the exchange's count), and, for shared stores, what the bots sharing a budget must
also agree on:

- **marks**: wall-clock deadlines the exchange set (a 429's ``Retry-After``, a 418 ban's end) and
  lowered budgets, so every bot behind the IP waits them out, and a new process still sees them.
  A mark only ever moves forward (the later one wins) and is forgotten at its ``keep_until``: it
  never outlives what the exchange asked for;
- **sharers**: which bots use the budget (a heartbeat each), so that a bot cut off from the store
  knows what share of the budget it may safely use on its own.

Each budget has two pyrate buckets over the *same* log: one with the limit for ordinary requests
and one with the higher limit CRITICAL requests may reach (see ``policy.py``).

Every operation on a shared store either answers or fails within a bounded time (short socket
timeouts for Redis, a short busy timeout for SQLite, no retries): ``errors`` lists what a failure
raises, and the limiter then falls back to a local budget rather than waiting on it.
"""

from __future__ import annotations

import bisect
import collections
import re
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from pyrate_limiter import InMemoryBucket, Rate, RateItem, RedisBucket, SQLiteBucket
from pyrate_limiter.buckets.redis_bucket import LuaScript

from gobot_hookspecs.files import use_wal

#: A SQLite write lock held longer than this means a stuck or frozen bot, not contention (a
#: check-and-charge holds it for well under a millisecond): give up and use the local budget.
SQLITE_BUSY_SECONDS = 2.0
#: Redis answers in a millisecond on a working network; this bounds a request's wait for a lost one.
REDIS_TIMEOUT_SECONDS = 0.5


def _listed(rate: Rate | list[Rate]) -> list[Rate]:
    return list(rate) if isinstance(rate, (list, tuple)) else [rate]


def _table(key: str) -> str:
    return "gobot_" + re.sub(r"[^A-Za-z0-9_]", "_", key)


class MemoryStore:
    """Budgets of this process only (``share = "none"``, and a shared store's local fallback).

    It has nobody to share marks or a heartbeat with: the limiter keeps those to itself."""

    shared = False
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self._items: dict[str, list[RateItem]] = {}

    def buckets(self, key: str, rates: list[Rate | list[Rate]]) -> list[InMemoryBucket]:
        """One pyrate bucket per entry of ``rates`` (a Rate, or a list of them), all over one log."""
        items = self._items.setdefault(key, [])
        made = []
        for rate in rates:
            bucket = InMemoryBucket(_listed(rate))
            bucket.items = items  # every limit of a budget counts the same log
            made.append(bucket)
        return made

    def count(self, key: str, since_ms: int) -> int:
        items = self._items.get(key, [])
        return len(items) - bisect.bisect_left(items, since_ms, key=lambda item: item.timestamp)

    def entries(self, key: str, since_ms: int) -> list[tuple[int, int]]:
        """(timestamp, units) of the log's entries since ``since_ms``."""
        items = self._items.get(key, [])
        start = bisect.bisect_left(items, since_ms, key=lambda item: item.timestamp)
        return sorted(collections.Counter(item.timestamp for item in items[start:]).items())

    def force_put(self, key: str, timestamp_ms: int, units: int) -> None:
        items = self._items.setdefault(key, [])
        index = bisect.bisect_right(items, timestamp_ms, key=lambda item: item.timestamp)
        items[index:index] = [RateItem("resync", timestamp_ms)] * units

    def remove_newest(self, key: str, units: int) -> None:
        """Undo a charge that a later budget refused (only this process writes a memory log)."""
        items = self._items.get(key, [])
        del items[len(items) - units :]

    def close(self) -> None:
        self._items.clear()


class _ImmediateTransaction:
    """The lock pyrate's SQLiteBucket holds around count-then-insert: a write transaction.

    ``BEGIN IMMEDIATE`` takes SQLite's write lock, so no other process can count and insert in
    between: the check and the charge are atomic across processes without a lock file.
    """

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.thread_lock = threading.RLock()

    def __enter__(self) -> _ImmediateTransaction:
        self.thread_lock.acquire()
        try:
            if not self.conn.in_transaction:
                self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.thread_lock.release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.conn.in_transaction:
                if exc_type is None:
                    self.conn.commit()
                else:
                    self.conn.rollback()
        finally:
            self.thread_lock.release()


class _SQLiteBucket(SQLiteBucket):
    """pyrate's SQLite bucket, stamping each entry with the time it is written, under the lock.

    Waiting for another process's write lock can take milliseconds; an entry stamped before that
    wait would leave the window early, while the request it stands for goes out late.
    """

    clock: Callable[[], float] | None = None

    def put(self, item: RateItem) -> bool:
        with self.lock:
            if self.clock is not None:
                item.timestamp = max(item.timestamp, int(self.clock() * 1000))
            return super().put(item)


class SQLiteStore:
    """Budgets in one SQLite file shared by the bots of one machine (``share = "sqlite:PATH"``)."""

    shared = True
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    clock: Callable[[], float] | None = None  # set by the limiter: entries are stamped when written

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(str(path), timeout=SQLITE_BUSY_SECONDS, isolation_level="DEFERRED",
                                    check_same_thread=False)
        use_wal(self.conn, SQLITE_BUSY_SECONDS)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.lock = _ImmediateTransaction(self.conn)
        with self.lock:
            self.conn.execute("CREATE TABLE IF NOT EXISTS gobot_marks (scope TEXT, name TEXT, value REAL, "
                              "payload TEXT, keep_until REAL, PRIMARY KEY (scope, name))")
            self.conn.execute("CREATE TABLE IF NOT EXISTS gobot_sharers (scope TEXT, member TEXT, seen REAL, "
                              "PRIMARY KEY (scope, member))")

    def _ensure(self, key: str) -> str:
        table = _table(key)
        with self.lock:
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS '{table}' (name VARCHAR, item_timestamp INTEGER)")
            self.conn.execute(f"CREATE INDEX IF NOT EXISTS 'idx_{table}' ON '{table}' (item_timestamp)")
        return table

    def buckets(self, key: str, rates: list[Rate | list[Rate]]) -> list[SQLiteBucket]:
        table = self._ensure(key)
        made = [_SQLiteBucket(_listed(rate), self.conn, table, lock=self.lock) for rate in rates]
        for bucket in made:
            bucket.clock = self.clock
        return made

    def count(self, key: str, since_ms: int) -> int:
        with self.lock:
            return self.conn.execute(f"SELECT COUNT(*) FROM '{_table(key)}' WHERE item_timestamp >= ?",
                                     (since_ms,)).fetchone()[0]

    def force_put(self, key: str, timestamp_ms: int, units: int) -> None:
        with self.lock:
            self.conn.executemany(f"INSERT INTO '{_table(key)}' (name, item_timestamp) VALUES (?, ?)",
                                  [("resync", timestamp_ms)] * units)

    def marks(self, scope: str, names: list[str]) -> dict[str, tuple[float, str]]:
        rows = self.conn.execute("SELECT name, value, payload FROM gobot_marks WHERE scope = ?", (scope,)).fetchall()
        return {name: (value, payload) for name, value, payload in rows if name in names}

    def mark(self, scope: str, name: str, value: float, payload: str = "", *, now: float, keep_until: float) -> None:
        with self.lock:
            # what the exchange asked for is over
            self.conn.execute("DELETE FROM gobot_marks WHERE keep_until < ?", (now,))
            self.conn.execute(
                "INSERT INTO gobot_marks (scope, name, value, payload, keep_until) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (scope, name) DO UPDATE SET value = excluded.value, payload = excluded.payload, "
                "keep_until = excluded.keep_until WHERE excluded.value > gobot_marks.value",
                (scope, name, value, payload, keep_until))

    def beat(self, scope: str, member: str, now: float, ttl: float) -> int:
        with self.lock:
            self.conn.execute("INSERT OR REPLACE INTO gobot_sharers (scope, member, seen) VALUES (?, ?, ?)",
                              (scope, member, now))
            self.conn.execute("DELETE FROM gobot_sharers WHERE scope = ? AND seen < ?", (scope, now - ttl))
            return self.conn.execute("SELECT COUNT(*) FROM gobot_sharers WHERE scope = ?", (scope,)).fetchone()[0]

    def leave(self, scope: str, member: str) -> None:
        with self.lock:
            self.conn.execute("DELETE FROM gobot_sharers WHERE scope = ? AND member = ?", (scope, member))

    def ping(self) -> None:
        with self.lock:  # takes the write lock: a store we could read but not charge is no use
            self.conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        self.conn.close()


class _RedisBucket(RedisBucket):
    """pyrate's Redis bucket, counting a window's entries up to +inf instead of up to "now".

    Each process stamps its entries with its own clock reading, taken a moment before the script
    runs; counting only up to its own "now" would miss an entry another process stamped a
    millisecond later and let both through. Counting everything newer than the window's start
    keeps the check atomic across processes.
    """

    SCRIPT = LuaScript.PUT_ITEM.replace("redis.call('ZCOUNT', bucket, window_start, now)",
                                        "redis.call('ZCOUNT', bucket, window_start, '+inf')")

    @classmethod
    def init(cls, rates, redis, bucket_key, algorithm=None):
        assert cls.SCRIPT != LuaScript.PUT_ITEM, "pyrate-limiter's Redis script changed: review _RedisBucket"
        return cls(rates, redis, bucket_key, redis.script_load(cls.SCRIPT), algorithm)


#: Keep the later of two marks (value|payload in one string), for ARGV[3] milliseconds.
_MARK_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current then
    local value = tonumber(string.match(current, '^([^|]*)'))
    if value and value >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1
"""


class RedisStore:
    """Budgets in Redis, for bots on several hosts behind one IP (``share = "redis://HOST:PORT/DB"``)."""

    shared = True

    def __init__(self, url: str, prefix: str = "gobot:budget:"):
        try:
            import redis
        except ModuleNotFoundError:  # the redis client comes with gobot-trading's extra [redis]
            raise RuntimeError("a budget shared through Redis needs: pip install 'gobot-trading[redis]'") from None
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.errors = (redis.exceptions.RedisError, OSError)
        # No retries: a lost Redis must fail fast, so the limiter can fall back to a local budget.
        self.client = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                           socket_timeout=REDIS_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0))
        self.client.ping()  # fail at start-up, not on the first order
        self.prefix = prefix
        self._mark = self.client.register_script(_MARK_SCRIPT)  # reloads itself after a Redis restart

    def buckets(self, key: str, rates: list[Rate | list[Rate]]) -> list[RedisBucket]:
        return [_RedisBucket.init(_listed(rate), self.client, self.prefix + key) for rate in rates]

    def count(self, key: str, since_ms: int) -> int:
        return int(self.client.zcount(self.prefix + key, since_ms, "+inf"))

    def force_put(self, key: str, timestamp_ms: int, units: int) -> None:
        tag = uuid.uuid4().hex
        self.client.zadd(self.prefix + key, {f"resync:{tag}:{i}": timestamp_ms for i in range(units)})

    def marks(self, scope: str, names: list[str]) -> dict[str, tuple[float, str]]:
        if not names:
            return {}
        found = {}
        for name, raw in zip(names, self.client.mget([f"{self.prefix}mark:{scope}:{name}" for name in names])):
            if raw is not None:
                value, _, payload = raw.decode().partition("|")
                found[name] = (float(value), payload)
        return found

    def mark(self, scope: str, name: str, value: float, payload: str = "", *, now: float, keep_until: float) -> None:
        ttl_ms = max(1, int((keep_until - now) * 1000))  # Redis forgets it when what the exchange asked for is over
        self._mark(keys=[f"{self.prefix}mark:{scope}:{name}"], args=[repr(float(value)), payload, ttl_ms])

    def beat(self, scope: str, member: str, now: float, ttl: float) -> int:
        key = f"{self.prefix}sharers:{scope}"
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(key, {member: now})
        pipe.zremrangebyscore(key, "-inf", now - ttl)
        pipe.zcard(key)
        pipe.pexpire(key, int(ttl * 2000))
        return int(pipe.execute()[2])

    def leave(self, scope: str, member: str) -> None:
        self.client.zrem(f"{self.prefix}sharers:{scope}", member)

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()


def open_store(share: str, base: Any = None) -> MemoryStore | SQLiteStore | RedisStore:
    """The store for ``share``: ``none``, ``sqlite:PATH`` (relative to ``base``) or ``redis://...``."""
    if share == "none":
        return MemoryStore()
    if share.startswith("sqlite:"):
        path = Path(share.removeprefix("sqlite:")).expanduser()
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        return SQLiteStore(path)
    if urlparse(share).scheme in ("redis", "rediss", "unix"):
        return RedisStore(share)
    raise ValueError(f"share = {share!r}: expected none, sqlite:PATH or redis://HOST:PORT/DB")
