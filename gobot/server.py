"""The HTTP server of ``gobot start --serve``: health for supervisors, Prometheus metrics, a JSON API
and the live dashboard, served from the bot's own process and event loop.

Built on aiohttp's server: it runs inside the running asyncio loop (no thread, no second process,
so handlers read the bot's state between its awaits), its HTTP parser is hardened and maintained,
and it is already installed with ccxt. It is imported only when the server is switched on.

Security: state-changing requests (pause, resume, kill) need ``Authorization: Bearer <token>``
with the token from ``GOBOT_DASHBOARD_TOKEN`` (compared in constant time, never logged); without
the variable they are refused. Binding to a non-loopback address without a token is refused at
start-up, and there every request but ``/health`` and the page's own files needs the token. On a
loopback address only loopback ``Host`` names are answered (no DNS rebinding).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import observe
from .errors import StartRefused

if TYPE_CHECKING:
    from .orchestrator import Bot
    from .runner import Runner

log = logging.getLogger(__name__)

TOKEN_ENV = "GOBOT_DASHBOARD_TOKEN"
LONG_POLL_MAX_SECONDS = 25.0
STATIC = {"/": ("index.html", "text/html"), "/dashboard.js": ("dashboard.js", "text/javascript"),
          "/dashboard.css": ("dashboard.css", "text/css")}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; any other name counts as reachable from outside."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback address without a token (checked before the bot starts)."""
    if not is_loopback(host) and not token:
        raise StartRefused(
            f"[server] host = \"{host}\" is not a loopback address: set {TOKEN_ENV} in the environment "
            "(anyone who can reach the port could otherwise control the bot), or bind to 127.0.0.1"
        )


class DashboardServer:
    """Serves one bot. ``start()`` returns the base URL; ``stop()`` closes it (waiting long-polls end at once)."""

    def __init__(self, bot: Bot, runner: Runner | None = None, *, host: str = "127.0.0.1", port: int = 8765,
                 token: str | None = None, stall_seconds: float | None = None):
        check_bind(host, token)
        self.bot, self.runner = bot, runner
        self.host, self.port = host, port
        self._token = token or None
        self.stall_seconds = stall_seconds or None
        self.loopback = is_loopback(host)
        self.version = 0  # bumped on every change the dashboard shows (a cycle, a control)
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.url = ""
        bot.counters.listeners.append(self.changed)

    def changed(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=16 * 1024)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/api/status", self.status)
        app.router.add_get("/api/trades", self.trades)
        app.router.add_get("/api/cycles", self.cycles)
        app.router.add_get("/api/metrics", self.metrics_json)
        app.router.add_get("/api/dashboard", self.dashboard)
        for action in ("pause", "unpause", "kill"):
            app.router.add_post(f"/api/{action}", self.control)
        for path in STATIC:
            app.router.add_get(path, self.static)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise StartRefused(f"cannot serve on {self.host}:{self.port}: {exc.strerror or exc}; change [server] port") from None
        host, port = self._runner.addresses[0][:2]
        self.port = port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/"
        log.info("dashboard serving on %s (controls %s)", self.url, "on" if self._token else "off")
        return self.url

    async def stop(self) -> None:
        self._closing = True
        self.changed()  # long-polls answer now instead of holding the shutdown
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.changed in self.bot.counters.listeners:
            self.bot.counters.listeners.remove(self.changed)

    # -- security ---------------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        return bool(self._token) and scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self._token.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        if self.loopback and (request.url.host or "").strip("[]").lower() not in LOOPBACK_NAMES:
            return _json({"error": "this server answers loopback host names only"}, status=421)
        public = request.path == "/health" or (request.path in STATIC and request.method == "GET")
        if not self.loopback and not public and not self._authorized(request):
            return _unauthorized("this server is reachable from the network: send Authorization: Bearer <GOBOT_DASHBOARD_TOKEN>")
        response = await handler(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    # -- read-only endpoints ------------------------------------------------------------------------

    async def _observed(self) -> tuple[dict[str, Any], dict[str, Any]]:
        statuses = await observe.plugin_statuses(self.bot)
        return statuses, observe.health(self.bot, self.bot.counters, statuses, self.stall_seconds)

    async def health(self, request: web.Request) -> web.Response:
        _statuses, doc = await self._observed()
        return _json(doc, status=200 if doc["healthy"] else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        statuses, doc = await self._observed()
        text = observe.prometheus_text(self.bot, self.bot.counters, statuses, doc)
        return web.Response(body=text.encode("utf-8"), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def _status(self) -> dict[str, Any]:
        statuses, doc = await self._observed()
        return observe.status_document(self.bot, self.runner, self.bot.counters, statuses, doc, controls=bool(self._token))

    async def status(self, request: web.Request) -> web.Response:
        return _json(await self._status())

    async def trades(self, request: web.Request) -> web.Response:
        return _json(observe.trades_document(self.bot, _limit(request, 100)))

    async def cycles(self, request: web.Request) -> web.Response:
        return _json(observe.cycles_document(self.bot, _limit(request, 50)))

    async def metrics_json(self, request: web.Request) -> web.Response:
        return _json(observe.metrics_document(self.bot, self.bot.counters))

    async def dashboard(self, request: web.Request) -> web.Response:
        """Everything the page shows, in one document; with ``?after=V`` it waits (long-poll, at most
        ``wait`` seconds) until something changed after version V."""
        try:
            after = int(request.query.get("after", "-1"))
            wait = min(float(request.query.get("wait", "20")), LONG_POLL_MAX_SECONDS)
        except ValueError:
            return _json({"error": "after must be an integer and wait a number of seconds"}, status=400)
        if after >= self.version and not self._closing:
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), timeout=max(wait, 0.0))
            except asyncio.TimeoutError:
                pass
        return _json({
            "version": self.version,
            "status": await self._status(),
            "trades": observe.trades_document(self.bot, 50),
            "cycles": observe.cycles_document(self.bot, 15),
            "metrics": observe.metrics_document(self.bot, self.bot.counters),
        })

    async def static(self, request: web.Request) -> web.Response:
        name, content_type = STATIC[request.path]
        body = resources.files("gobot").joinpath("web", name).read_text(encoding="utf-8")
        headers = {"Content-Security-Policy": PAGE_POLICY} if name.endswith(".html") else {}
        return web.Response(text=body, content_type=content_type, charset="utf-8", headers=headers)

    # -- controls -----------------------------------------------------------------------------------

    async def control(self, request: web.Request) -> web.Response:
        action = request.path.rsplit("/", 1)[-1]
        if not self._token:
            return _json({"error": f"controls are off: start the bot with {TOKEN_ENV} set"}, status=403)
        if not self._authorized(request):
            log.warning("dashboard: %s refused (no or wrong token) from %s", action, request.remote)
            return _unauthorized(f"{action} needs Authorization: Bearer <{TOKEN_ENV}>")
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
        return _json({"ok": True, "action": action, "paused": self.bot.store.paused, "kill_switch": self.bot.kill_switch_on()})


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
