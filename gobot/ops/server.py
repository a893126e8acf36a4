"""The HTTP server of ``gobot start --serve``: health for supervisors, Prometheus metrics, a JSON API
and the live dashboard, served from the bot's own process and event loop.

Built on aiohttp's server: it runs inside the running asyncio loop (no thread, no second process,
so handlers read the bot's state between its awaits), its HTTP parser is hardened and maintained,
and it is already installed with ccxt. It is imported only when the server is switched on.

Security: state-changing requests (pause, resume, kill) need ``Authorization: Bearer <token>``
with the token from ``GOBOT_DASHBOARD_TOKEN`` (compared in constant time, never logged); without
the variable they are refused. Binding to a non-loopback address without a strong token is refused
at start-up, and there every request but ``/health`` and the page's own files needs the token. On
a loopback address only loopback ``Host`` names are answered (no DNS rebinding). A client that
sends wrong tokens is locked out for a while, longer each time (``Throttle``), and alerted about.

Robustness: the server never lets the trading loop starve. It accepts connections itself
(``_Listener``): at most ``[server] max_connections`` at once, and never while fewer than
``[server] reserved_fds`` file descriptors are left under the process's limit — further clients
wait in the kernel's queue, where they cost the bot nothing. Idle connections and slow headers
are closed after ``idle_timeout``, slow bodies after ``body_timeout``; a body is limited to
16 KiB on every route before any of it is read, and never read at all for a refused request.
The dashboard document is built once per change and shared by every waiting long-poll; so is each
chart (``/api/chart``, ``gobot.ops.chart``), whose series and JSON are made in a worker thread.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable

try:
    from aiohttp import web
except ModuleNotFoundError:  # the core install: `--serve` needs the extra [server] (check_bind says so)
    web = None  # type: ignore[assignment]

from gobot.errors import PluginError, StartRefused
from gobot.ops import chart as trade_chart
from gobot.ops import status
from gobot.run.plugin_statuses import plugin_statuses

if TYPE_CHECKING:
    from gobot.run.bot import Bot
    from gobot.run.runner import Runner

log = logging.getLogger(__name__)

TOKEN_ENV = "GOBOT_DASHBOARD_TOKEN"
LONG_POLL_MAX_SECONDS = 25.0
#: Held long-polls are answered at most this often (a replay completes dozens of cycles a second;
#: a person needs a few updates a second): one shared document per answer, whatever the number of pages.
LONG_POLL_MIN_INTERVAL = 0.5
#: A shared dashboard document is reused while nothing changed, for at most this long (its health
#: figures, such as the age of the last cycle, stay current).
DOCUMENT_MAX_AGE = 1.0
MAX_BODY_BYTES = 16 * 1024
STATIC = {"/": ("index.html", "text/html"), "/dashboard.js": ("dashboard.js", "text/javascript"),
          "/dashboard.css": ("dashboard.css", "text/css")}
#: The chart kit's files (``gobot_hookspecs.tradechart.asset``), served by the bot itself: no CDN. Revalidated
#: by their ETag on every load (a 304 without a body), so an upgraded bot never serves a page stale scripts.
ASSETS = {"/assets/lightweight-charts.js": ("lightweight-charts.js", "text/javascript"),
          "/assets/tradechart.js": ("tradechart.js", "text/javascript"),
          "/assets/tradechart.css": ("tradechart.css", "text/css")}
#: Chart documents kept (by symbol, timeframe, limit and dashboard version): a few pages watching a few symbols,
#: each for at most CHART_MAX_AGE seconds.
CHART_CACHE = 8
CHART_MAX_AGE = 2.0
CONTROLS = ("/api/pause", "/api/unpause", "/api/kill")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: The one inline style the page runs: the chart library's attribution logo (the <style> lightweight-charts adds
#: beside its TradingView link, as its licence's NOTICE asks). Its hash changes with the library: a test checks it.
LIBRARY_STYLE_HASH = "sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY="
PAGE_POLICY = (f"default-src 'self'; script-src 'self'; style-src 'self' '{LIBRARY_STYLE_HASH}'; img-src 'self' data:; "
               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
#: A token on a non-loopback address needs at least this many characters, no whitespace, and this many different ones.
MIN_TOKEN_LENGTH = 16
MIN_TOKEN_DISTINCT = 6
#: Wrong tokens a client may send before it is locked out; the lockout lasts LOCKOUT_FIRST
#: seconds and doubles with every further wrong token, up to LOCKOUT_LONGEST. A client's count is
#: forgotten after a right token, or LOCKOUT_FORGET seconds without a wrong one.
LOCKOUT_AFTER = 10
LOCKOUT_FIRST = 1.0
LOCKOUT_LONGEST = 900.0
LOCKOUT_FORGET = 3600.0
LOCKOUT_ALERT_EVERY = 60.0  # one dashboard_lockout alert a minute at most, however many clients
#: Defaults when the bot's settings have no [server] section (they mirror gobot.config.ServerConfig).
DEFAULT_MAX_CONNECTIONS = 128
DEFAULT_RESERVED_FDS = 128
DEFAULT_IDLE_TIMEOUT = 15.0
DEFAULT_BODY_TIMEOUT = 10.0
LISTEN_BACKLOG = 128


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; any other name counts as reachable from outside."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_weakness(token: str) -> str:
    """Why ``token`` is too weak to guard a server reachable from the network ('' when it is not)."""
    if any(c.isspace() for c in token):
        return "it contains whitespace"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"it has {len(token)} character{'s' if len(token) != 1 else ''}, at least {MIN_TOKEN_LENGTH} are needed"
    if len(set(token)) < MIN_TOKEN_DISTINCT:
        return f"it has only {len(set(token))} different characters, at least {MIN_TOKEN_DISTINCT} are needed"
    return ""


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback address without a strong token (checked before the bot starts),
    and refuse to serve at all without aiohttp (the extra [server])."""
    if web is None:
        from gobot.host.extras import require

        require("server", "aiohttp", "the dashboard server (gobot start --serve, [server] enabled)")
    if is_loopback(host):
        return
    if not token:
        raise StartRefused(
            f"[server] host = \"{host}\" is not a loopback address: set {TOKEN_ENV} in the environment "
            "(anyone who can reach the port could otherwise control the bot), or bind to 127.0.0.1"
        )
    weakness = token_weakness(token)
    if weakness:
        raise StartRefused(
            f"{TOKEN_ENV} is too weak for [server] host = \"{host}\" (not a loopback address): {weakness}; "
            f"set a random one, e.g. {TOKEN_ENV}=$(openssl rand -hex 16), or bind to 127.0.0.1"
        )


def client_key(remote: str | None) -> str:
    """Who a failed attempt is counted against: the peer's address (an IPv6 client by its /64)."""
    try:
        address = ipaddress.ip_address((remote or "").split("%")[0])
    except ValueError:
        return remote or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class Throttle:
    """Wrong tokens per client: after ``after`` of them the client is locked out for ``first``
    seconds, doubled by every further wrong one up to ``longest``. While locked out its requests
    are refused (429) without the token being looked at, so guessing goes no faster than the
    lockouts allow. ``clock`` is monotonic seconds."""

    def __init__(self, after: int = LOCKOUT_AFTER, first: float = LOCKOUT_FIRST, longest: float = LOCKOUT_LONGEST,
                 forget: float = LOCKOUT_FORGET, clock: Callable[[], float] = time.monotonic, max_clients: int = 4096):
        self.after, self.first, self.longest, self.forget = after, first, longest, forget
        self.clock = clock
        self.max_clients = max_clients
        self.clients: OrderedDict[str, _Failures] = OrderedDict()  # least recently failed first
        self.failures = 0  # wrong tokens seen, in all
        self.lockouts = 0  # lockouts started, in all

    def locked(self, key: str) -> float:
        """Seconds until ``key`` may try again (0.0: not locked out)."""
        entry = self.clients.get(key)
        return max(0.0, entry.locked_until - self.clock()) if entry is not None else 0.0

    def failed(self, key: str) -> float:
        """A wrong token from ``key``: the lockout it now starts, in seconds (0.0: none yet)."""
        now = self.clock()
        self.failures += 1
        entry = self.clients.pop(key, None)
        if entry is None or now - entry.last > self.forget:
            entry = _Failures()
        entry.count += 1
        entry.last = now
        self.clients[key] = entry
        while len(self.clients) > self.max_clients:
            self.clients.popitem(last=False)
        if entry.count < self.after:
            return 0.0
        lockout = min(self.first * 2 ** min(entry.count - self.after, 64), self.longest)
        entry.locked_until = now + lockout
        self.lockouts += 1
        return lockout

    def succeeded(self, key: str) -> None:
        self.clients.pop(key, None)

    def count(self, key: str) -> int:
        entry = self.clients.get(key)
        return entry.count if entry is not None else 0


class _Quiet:
    """At most ``burst`` warnings of one kind per ``period`` seconds: a flood of requests must not
    become a flood of log lines (the log is on the bot's disk). The rest are counted and summed up."""

    def __init__(self, burst: int = 10, period: float = 60.0):
        self.burst, self.period = burst, period
        self.started, self.logged, self.dropped = -math.inf, 0, 0

    def warning(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self.started > self.period:
            if self.dropped:
                log.warning("dashboard: %d more such warnings in the last %g s were not logged",
                            self.dropped, self.period)
            self.started, self.logged, self.dropped = now, 0, 0
        if self.logged < self.burst:
            self.logged += 1
            log.warning(message, *args)
        else:
            self.dropped += 1


def open_fds() -> int | None:
    """File descriptors this process has open; None when that cannot be counted here."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder)) - 1  # less the one listdir itself used
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                return 1 << 30  # none left at all
            return None
    return None


def fd_limit() -> int | None:
    """The soft limit of open files (RLIMIT_NOFILE); None when there is none or it cannot be read."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the listener told when it closes."""

    __slots__ = ("inner", "on_lost", "lost")

    def __init__(self, inner: asyncio.Protocol, on_lost: Callable[[_Counted], None]):
        self.inner, self.on_lost, self.lost = inner, on_lost, False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self.inner.connection_lost(exc)
        finally:
            if not self.lost:
                self.lost = True
                self.on_lost(self)


class _Listener:
    """The server's own accept loop, so that a flood of connections cannot take the bot's file
    descriptors: a connection is accepted only while fewer than ``limit`` are open and more than
    ``reserved`` descriptors are left under the soft limit. Until then new clients wait in the
    kernel's listen queue (which costs the process nothing) and, once it is full, are not answered.
    """

    def __init__(self, factory: Callable[[], asyncio.Protocol], sockets: list[socket.socket], limit: int,
                 reserved: int, fd_limit: int | None):
        self.factory, self.sockets = factory, sockets
        self.limit, self.reserved, self.fd_limit = limit, reserved, fd_limit
        self.live: set[_Counted] = set()
        self.peak = 0
        self.accepted = 0
        self.full_episodes = 0  # times the server stopped accepting for want of room
        self._full = False
        self._warn = _Quiet(burst=1)
        self._freed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._accept(sock)) for sock in self.sockets]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []
        for sock in self.sockets:
            sock.close()

    def room(self) -> bool:
        if len(self.live) >= self.limit:
            return False
        if self.fd_limit is None:
            return True
        now_open = open_fds()
        return now_open is None or now_open + 1 <= self.fd_limit - self.reserved

    def _lost(self, protocol: _Counted) -> None:
        self.live.discard(protocol)
        self._freed.set()

    async def _wait_for_room(self) -> None:
        while not self.room():
            if not self._full:
                self._full = True
                self.full_episodes += 1
                self._warn.warning("dashboard server: %d connections open (at most %d, %s file descriptors kept "
                                   "for the trading loop): new connections wait", len(self.live), self.limit,
                                   self.reserved)
            self._freed.clear()
            try:  # a connection closing makes room; so may the trading loop closing files
                await asyncio.wait_for(self._freed.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
        self._full = False

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wait_for_room()
            try:
                conn, _address = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno not in (errno.ECONNABORTED,):
                    self._warn.warning("dashboard server: accept failed: %s", exc)
                self._freed.clear()
                try:
                    await asyncio.wait_for(self._freed.wait(), 0.5)
                except asyncio.TimeoutError:
                    pass
                continue
            made: list[_Counted] = []

            def protocol() -> _Counted:
                counted = _Counted(self.factory(), self._lost)
                made.append(counted)  # noqa: B023 -- called within this pass, by connect_accepted_socket below
                self.live.add(counted)
                return counted

            try:
                await loop.connect_accepted_socket(protocol, conn)
            except asyncio.CancelledError:
                for counted in made:
                    self.live.discard(counted)
                conn.close()
                raise
            except OSError:
                for counted in made:
                    self.live.discard(counted)
                conn.close()
                continue
            self.accepted += 1
            self.peak = max(self.peak, len(self.live))


async def _listening_sockets(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for ``host`` (every address it resolves to) and ``port``."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen: set[tuple] = set()
    try:
        for family, kind, proto, _name, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # one free port for every address (localhost: 127.0.0.1 and ::1)
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Refused(Exception):
    def __init__(self, response: web.Response):
        self.response = response


class DashboardServer:
    """Serves one bot. ``start()`` returns the base URL; ``stop()`` closes it (waiting long-polls end at once).

    The connection settings default to the bot's ``[server]`` section."""

    def __init__(self, bot: Bot, runner: Runner | None = None, *, host: str = "127.0.0.1", port: int = 8765,
                 token: str | None = None, stall_seconds: float | None = None, max_connections: int | None = None,
                 reserved_fds: int | None = None, idle_timeout: float | None = None, body_timeout: float | None = None):
        check_bind(host, token)
        config = getattr(getattr(bot, "settings", None), "server", None)

        def setting(value: Any, name: str, default: Any) -> Any:
            return value if value is not None else getattr(config, name, default)

        self.bot, self.runner = bot, runner
        self.host, self.port = host, port
        self._token = token or None
        self.stall_seconds = stall_seconds or None
        self.max_connections = int(setting(max_connections, "max_connections", DEFAULT_MAX_CONNECTIONS))
        self.reserved_fds = int(setting(reserved_fds, "reserved_fds", DEFAULT_RESERVED_FDS))
        self.idle_timeout = float(setting(idle_timeout, "idle_timeout", DEFAULT_IDLE_TIMEOUT))
        self.body_timeout = float(setting(body_timeout, "body_timeout", DEFAULT_BODY_TIMEOUT))
        self.loopback = is_loopback(host)
        self.throttle = Throttle()
        self.version = 0  # bumped on every change the dashboard shows (a cycle, a control)
        self.published = 0  # the version held long-polls were last woken for
        self.long_polls = 0  # requests to /api/dashboard waiting for a change
        self.documents_built = 0
        self.refused = {"body_too_large": 0, "body_timeout": 0, "unauthorized": 0, "locked_out": 0}
        self.connection_limit = self.max_connections
        self._changed = asyncio.Event()
        self._publish_handle: asyncio.TimerHandle | None = None
        self._last_publish = -math.inf
        self._document: tuple[int, float, bytes] | None = None
        self._building: asyncio.Future | None = None
        self._charts: OrderedDict[tuple, tuple[asyncio.Future, float]] = OrderedDict()  # (document, when), newest last
        self._assets: dict[str, tuple[bytes, str]] = {}  # the kit's files with their ETags, read once
        self._archive = trade_chart.ArchiveDetails()  # the archive's trade stories, asked when the ledger changed
        self.charts_built = 0
        self._quiet = _Quiet()
        self._last_lockout_alert = -math.inf
        self._lockouts_unalerted = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._listener: _Listener | None = None
        self.url = ""
        bot.counters.listeners.append(self.changed)

    def changed(self) -> None:
        """Something the dashboard shows changed: wake the held long-polls (at most every LONG_POLL_MIN_INTERVAL)."""
        self.version += 1
        if self._publish_handle is not None and not self._closing:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._publish()
            return
        delay = self._last_publish + LONG_POLL_MIN_INTERVAL - loop.time()
        if delay <= 0 or self._closing:
            self._publish()
        else:
            self._publish_handle = loop.call_later(delay, self._publish)

    def _publish(self) -> None:
        if self._publish_handle is not None:
            self._publish_handle.cancel()
            self._publish_handle = None
        try:
            self._last_publish = asyncio.get_running_loop().time()
        except RuntimeError:
            pass
        self.published = self.version
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    # -- lifecycle --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY_BYTES)
        for path, handler in (("/health", self.health), ("/metrics", self.metrics), ("/api/status", self.status),
                              ("/api/trades", self.trades), ("/api/cycles", self.cycles),
                              ("/api/metrics", self.metrics_json), ("/api/dashboard", self.dashboard),
                              ("/api/chart", self.chart), *((path, self.static) for path in STATIC),
                              *((path, self.asset) for path in ASSETS)):
            app.router.add_get(path, handler, expect_handler=self._expect)
        for path in CONTROLS:
            app.router.add_post(path, self.control, expect_handler=self._expect)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0,
            # the keep-alive timeout also closes a connection whose request headers are not complete by then
            keepalive_timeout=self.idle_timeout,
            lingering_time=0,  # a body nobody reads is never read (the connection closes instead)
            auto_decompress=False,  # no compressed bodies: 16 KiB means 16 KiB
        )
        await self._runner.setup()
        try:
            sockets = await _listening_sockets(self.host, self.port, LISTEN_BACKLOG)
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise StartRefused(f"cannot serve on {self.host}:{self.port}: {exc.strerror or exc}; "
                               "change [server] port") from None
        limit = fd_limit()
        now_open = open_fds()
        self.connection_limit = self.max_connections
        if limit is not None and now_open is not None:
            room = limit - now_open - self.reserved_fds
            self.connection_limit = max(0, min(self.max_connections, room))
            if room < self.max_connections:
                log.warning("dashboard server: the limit of open files (%d, %d open) leaves room for %d "
                            "connections once %d are kept for the trading loop ([server] max_connections = %d): "
                            "raise it (ulimit -n, systemd LimitNOFILE=) or lower [server] reserved_fds",
                            limit, now_open, max(room, 0),
                            self.reserved_fds, self.max_connections)
        self._listener = _Listener(self._runner.server, sockets, self.connection_limit, self.reserved_fds, limit)
        self._listener.start()
        host, port = sockets[0].getsockname()[:2]
        self.port = port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/"
        log.info("dashboard serving on %s (controls %s; at most %d connections)", self.url,
                 "on" if self._token else "off", self.connection_limit)
        return self.url

    async def stop(self) -> None:
        self._closing = True
        self.changed()  # long-polls answer now instead of holding the shutdown
        if self._listener is not None:
            await self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.changed in self.bot.counters.listeners:
            self.bot.counters.listeners.remove(self.changed)

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._listener.live) if self._listener is not None else 0

    @property
    def peak_connections(self) -> int:
        return self._listener.peak if self._listener is not None else 0

    # -- security ---------------------------------------------------------------------------------

    def _authorized(self, request: web.BaseRequest) -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        return (bool(self._token) and scheme.lower() == "bearer"
                and hmac.compare_digest(value.strip().encode(), self._token.encode()))

    def _check(self, request: web.BaseRequest) -> None:
        """Everything decided from the request line and headers alone, before any of the body is
        read: the Host, the body's declared size, the token and the client's lockout. Raises _Refused."""
        if self.loopback and (request.url.host or "").strip("[]").lower() not in LOOPBACK_NAMES:
            raise _Refused(_json({"error": "this server answers loopback host names only"}, status=421))
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            self.refused["body_too_large"] += 1
            raise _Refused(_json({"error": f"request bodies are limited to {MAX_BODY_BYTES} bytes"}, status=413))
        control = request.path in CONTROLS and request.method == "POST"
        page_file = request.method == "GET" and (request.path in STATIC or request.path in ASSETS)
        public = request.path == "/health" or page_file
        if not control and (self.loopback or public):
            return
        if control and not self._token:
            raise _Refused(_json({"error": f"controls are off: start the bot with {TOKEN_ENV} set"}, status=403))
        key = client_key(request.remote)
        wait = self.throttle.locked(key)
        if wait > 0:
            self.refused["locked_out"] += 1
            seconds = math.ceil(wait)
            response = _json({"error": f"too many wrong tokens from {key}: try again in {seconds} s"}, status=429)
            response.headers["Retry-After"] = str(seconds)
            raise _Refused(response)
        if self._authorized(request):
            self.throttle.succeeded(key)
            return
        self.refused["unauthorized"] += 1
        what = request.path.rsplit("/", 1)[-1]
        if "Authorization" in request.headers:  # a guess: counted against the client
            lockout = self.throttle.failed(key)
            self._quiet.warning("dashboard: %s %s refused (wrong token) from %s",
                                request.method, request.path, request.remote)
            if lockout:
                self._locked_out(key, request, lockout)
        elif control:
            self._quiet.warning("dashboard: %s refused (no token) from %s", what, request.remote)
        if control:
            raise _Refused(_unauthorized(f"{what} needs Authorization: Bearer <{TOKEN_ENV}>"))
        raise _Refused(_unauthorized("this server is reachable from the network: "
                                     f"send Authorization: Bearer <{TOKEN_ENV}>"))

    def _locked_out(self, key: str, request: web.BaseRequest, seconds: float) -> None:
        failures = self.throttle.count(key)
        log.warning("dashboard: %s locked out for %g s after %d wrong tokens", key, seconds, failures)
        self.bot.audit("dashboard_lockout", client=key, failures=failures, seconds=seconds, path=request.path)
        now = time.monotonic()
        if now - self._last_lockout_alert < LOCKOUT_ALERT_EVERY:
            self._lockouts_unalerted += 1
            return
        from gobot_hookspecs import Alert, Severity

        others = self._lockouts_unalerted
        self._last_lockout_alert, self._lockouts_unalerted = now, 0
        self.bot.ctx.alert(Alert(
            kind="dashboard_lockout", severity=Severity.WARNING,
            title=f"Dashboard: {key} locked out after {failures} wrong tokens",
            text=f"{failures} wrong GOBOT_DASHBOARD_TOKEN values from {key} (last: {request.method} {request.path}); "
                 f"its requests are refused for {seconds:g} s, twice as long after each further wrong one"
                 + (f"; {others} more lockout(s) in the last minute" if others else ""),
            data={"client": key, "failures": failures, "lockout_seconds": seconds, "other_lockouts": others},
        ))

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue``: the client is told to send its body only if it would be read."""
        try:
            self._check(request)
        except _Refused as refused:
            return _secured(_closing(refused.response))
        expect = request.headers.get("Expect", "")
        if expect.lower() != "100-continue":
            return _secured(_closing(_json({"error": f"unknown Expect: {expect}"}, status=417)))
        if request.version >= (1, 1):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return None

    @(web.middleware if web is not None else (lambda handler: handler))
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            self._check(request)
            if request.body_exists:
                await self._read_body(request)
        except _Refused as refused:
            response = refused.response
            if request.body_exists and not request.content.is_eof():
                _closing(response)  # the rest of the body is never read: the connection ends with the answer
            return _secured(response)
        return _secured(await handler(request))

    async def _read_body(self, request: web.Request) -> bytes:
        """The body, at most MAX_BODY_BYTES within body_timeout (none of our routes uses it, so it is only drained)."""
        chunks: list[bytes] = []
        size = 0

        async def read() -> None:
            nonlocal size
            while True:
                chunk = await request.content.readany()
                if not chunk:
                    return
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    self.refused["body_too_large"] += 1
                    raise _Refused(_json({"error": f"request bodies are limited to {MAX_BODY_BYTES} bytes"},
                                         status=413))
                chunks.append(chunk)

        try:
            await asyncio.wait_for(read(), self.body_timeout)
        except asyncio.TimeoutError:
            self.refused["body_timeout"] += 1
            raise _Refused(_json({"error": f"the request body did not arrive within {self.body_timeout:g} s"},
                                 status=408)) from None
        return b"".join(chunks)

    # -- read-only endpoints ------------------------------------------------------------------------

    async def _observed(self, max_age: float = 0.0) -> tuple[dict[str, Any], dict[str, Any]]:
        statuses = await plugin_statuses(self.bot, max_age)
        return statuses, status.health(self.bot, self.bot.counters, statuses, self.stall_seconds)

    async def health(self, request: web.Request) -> web.Response:
        _statuses, doc = await self._observed()
        return _json(doc, status=200 if doc["healthy"] else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        statuses, doc = await self._observed()
        text = status.prometheus_text(self.bot, self.bot.counters, statuses, doc, extra=self._server_metrics)
        return web.Response(body=text.encode("utf-8"),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    def _server_metrics(self, out: status.Exposition) -> None:
        out.add("gobot_server_connections", self.connections, help="HTTP connections open to the dashboard server")
        out.add("gobot_server_connection_limit", self.connection_limit,
                help="connections the server accepts at most "
                     "([server] max_connections, lowered to fit the open-files limit)")
        out.add("gobot_server_long_polls", self.long_polls, help="dashboard long-polls waiting for a change")
        for reason, number in self.refused.items():
            out.add("gobot_server_refused_total", number, {"reason": reason}, kind="counter",
                    help="requests refused before their body was read, by reason")
        out.add("gobot_server_lockouts_total", self.throttle.lockouts, kind="counter",
                help="clients locked out after too many wrong dashboard tokens")

    async def _status(self, max_age: float = 0.0) -> dict[str, Any]:
        statuses, doc = await self._observed(max_age)
        return status.status_document(self.bot, self.runner, self.bot.counters, statuses, doc,
                                      controls=bool(self._token))

    async def status(self, request: web.Request) -> web.Response:
        return _json(await self._status())

    async def trades(self, request: web.Request) -> web.Response:
        return _json(status.trades_document(self.bot, _limit(request, 100)))

    async def cycles(self, request: web.Request) -> web.Response:
        return _json(status.cycles_document(self.bot, _limit(request, 50)))

    async def metrics_json(self, request: web.Request) -> web.Response:
        return _json(status.metrics_document(self.bot, self.bot.counters))

    async def dashboard(self, request: web.Request) -> web.Response:
        """Everything the page shows, in one document; with ``?after=V`` it waits (long-poll, at most
        ``wait`` seconds) until something changed after version V."""
        try:
            after = int(request.query.get("after", "-1"))
            wait = min(float(request.query.get("wait", "20")), LONG_POLL_MAX_SECONDS)
            if math.isnan(wait):
                raise ValueError(wait)
        except ValueError:
            return _json({"error": "after must be an integer and wait a number of seconds"}, status=400)
        if after >= self.published and not self._closing:
            event = self._changed
            self.long_polls += 1
            try:
                await asyncio.wait_for(event.wait(), timeout=max(wait, 0.0))
            except asyncio.TimeoutError:
                pass
            finally:
                self.long_polls -= 1
        return web.Response(body=await self.dashboard_document(),
                            headers={"Content-Type": "application/json; charset=utf-8"})

    async def dashboard_document(self) -> bytes:
        """The dashboard document as JSON, built once per version and shared by every request that
        wants it (the many long-polls woken by one cycle above all); rebuilt when older than DOCUMENT_MAX_AGE."""
        loop = asyncio.get_running_loop()
        cached = self._document
        if cached is not None and cached[0] == self.version and loop.time() - cached[1] < DOCUMENT_MAX_AGE:
            return cached[2]
        if self._building is None:
            self._building = asyncio.ensure_future(self._build_document())
        return await asyncio.shield(self._building)

    async def _build_document(self) -> bytes:
        try:
            version = self.version
            body = json.dumps({
                "version": version,
                "status": await self._status(max_age=DOCUMENT_MAX_AGE),
                "trades": status.trades_document(self.bot, 50),
                "cycles": status.cycles_document(self.bot, 15),
                "metrics": status.metrics_document(self.bot, self.bot.counters),
            }, default=str).encode("utf-8")
            self.documents_built += 1
            self._document = (version, asyncio.get_running_loop().time(), body)
            return body
        finally:
            self._building = None

    async def static(self, request: web.Request) -> web.Response:
        name, content_type = STATIC[request.path]
        body = resources.files("gobot.ops").joinpath("web", name).read_text(encoding="utf-8")
        headers = {"Content-Security-Policy": PAGE_POLICY} if name.endswith(".html") else {}
        return web.Response(text=body, content_type=content_type, charset="utf-8", headers=headers)

    async def asset(self, request: web.Request) -> web.Response:
        """One of the chart kit's files, with an ETag: a page that has it gets a 304 without a body."""
        name, content_type = ASSETS[request.path]
        if name not in self._assets:
            from gobot_hookspecs.tradechart import asset

            body = asset(name)
            self._assets[name] = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        body, etag = self._assets[name]
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers={**headers, "Content-Type": f"{content_type}; charset=utf-8"})

    async def chart(self, request: web.Request) -> web.Response:
        """``GET /api/chart?symbol=S&timeframe=TF&limit=N``: the chart kit's payload of the running bot: its
        newest candles (at most trade_chart.MAX_CANDLES) with the run's trades on them and their stories."""
        try:
            query = trade_chart.chart_query(self.bot, dict(request.query))
            body = await self.chart_document(*query)
        except trade_chart.ChartRequestError as exc:
            return _json({"error": str(exc)}, status=404 if exc.missing else 400)
        except PluginError as exc:
            return _json({"error": f"the market data failed: {exc}"}, status=502)
        return web.Response(body=body, headers={"Content-Type": "application/json; charset=utf-8"})

    async def chart_document(self, symbol: str, timeframe: str, limit: int) -> bytes:
        """A chart document, built once per dashboard version and shared by every request that wants it;
        built again after CHART_MAX_AGE (the archive's details of the newest trades may have been a write behind)."""
        key = (symbol, timeframe, limit, self.version)
        now = asyncio.get_running_loop().time()
        cached = self._charts.get(key)
        stale = cached is not None and cached[0].done() and (cached[0].cancelled() or cached[0].exception() is not None
                                                             or now - cached[1] > CHART_MAX_AGE)
        if cached is None or stale:
            building = asyncio.ensure_future(
                trade_chart.chart_document(self.bot, self._archive, symbol, timeframe, limit))
            building.add_done_callback(self._chart_built)
            cached = self._charts[key] = (building, now)
            while len(self._charts) > CHART_CACHE:
                self._charts.popitem(last=False)
        self._charts.move_to_end(key)
        return await asyncio.shield(cached[0])

    def _chart_built(self, building: asyncio.Future) -> None:
        if not building.cancelled() and building.exception() is None:
            self.charts_built += 1

    # -- controls -----------------------------------------------------------------------------------

    async def control(self, request: web.Request) -> web.Response:
        """Pause, resume or kill; the guard has checked the token already."""
        action = request.path.rsplit("/", 1)[-1]
        ctx = self.bot.ctx
        reason = f"dashboard ({request.remote})"
        if action == "pause":
            ctx.pause(reason)
        elif action == "unpause":
            ctx.unpause(reason)
        else:
            ctx.kill(reason)  # the runner ends the run at the next check (at most 2 s on the wall clock)
        log.warning("dashboard: %s by %s", action, request.remote)
        self.changed()
        return _json({"ok": True, "action": action, "paused": self.bot.store.paused,
                      "kill_switch": self.bot.kill_switch_on()})


def _limit(request: web.Request, default: int) -> int:
    try:
        return max(1, min(int(request.query.get("limit", default)), 2000))
    except ValueError:
        return default


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, default=str), status=status, content_type="application/json")


def _unauthorized(message: str) -> web.Response:
    response = _json({"error": message}, status=401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="gobot"'
    return response


def _closing(response: web.StreamResponse) -> web.StreamResponse:
    response.force_close()
    return response


def _secured(response: web.StreamResponse) -> web.StreamResponse:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response
