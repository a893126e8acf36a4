"""``telegram``: alerts to a Telegram chat, commands and order confirmations from it (Bot API, httpx).

Secrets come from the environment only: ``TELEGRAM_TOKEN`` (from @BotFather) and
``TELEGRAM_CHAT_ID`` (or ``[plugins.telegram] chat_id``). The token is part of every Bot API
URL, so it is masked in every log line and error text. Delivery runs in a background task and
never blocks the trading loop; what cannot be delivered waits in ``<state_dir>/telegram-outbox.json``.
Enabled without a token, the bot refuses to start with an error that says what to set.
With ``report_every_cycle`` it also keeps one compact cycle report in the chat, edited in place
(``report.py``). docs/alerts.md has the set-up, step by step.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from gobot_hookspecs import PluginConfig, Severity, hookimpl

from .api import BotApi, TelegramError
from .delivery import DELAYED_AFTER_SECONDS, Entry, Outbox, Sender
from .report import CycleReporter
from .text import CAPTION_LIMIT, ICONS, alert_parts, escape, units

log = logging.getLogger(__name__)

NAME = "telegram"
TOKEN_ENV = "TELEGRAM_TOKEN"
CHAT_ENV = "TELEGRAM_CHAT_ID"
OUTBOX_FILE = "telegram-outbox.json"
LEVELS = [Severity.INFO, Severity.WARNING, Severity.CRITICAL]


class TelegramConfig(PluginConfig):
    chat_id: str = Field(
        "", description="chat that gets the alerts and order confirmations; TELEGRAM_CHAT_ID in the environment wins"
    )
    api_url: str = Field(
        "https://api.telegram.org",
        description="Bot API base URL (a local Bot API server, a test server); https unless loopback",
    )
    min_severity: Severity = Field(Severity.INFO, description="quietest alert sent: INFO, WARNING or CRITICAL")
    operators: list[int] = Field(
        default_factory=list,
        description="Telegram user ids that may read, pause, resume, kill, close and confirm orders",
    )
    viewers: list[int] = Field(
        default_factory=list,
        description="Telegram user ids that may read: status, balance, positions, performance, chart",
    )
    commands: bool = Field(
        True, description="answer commands (long polling getUpdates); none are answered while no user id is listed"
    )
    confirm_orders: bool = Field(
        True, description="with [trading] auto_execute = false: ask the operators to confirm each order (buttons)"
    )
    confirm_timeout: float = Field(
        120.0, gt=0, description="seconds an order waits for an operator; unanswered = proposed only"
    )
    confirm_window: float = Field(
        60.0, gt=0, description="seconds to confirm /kill or /close: the button, or the same command again"
    )
    fold_window: float = Field(
        600.0, ge=0,
        description="an alert identical to one sent less than this many seconds ago is counted, then sent once with "
                    "the count; 0 = never fold",
    )
    charts: bool = Field(
        True, description="send pictures: the daily summary's equity curve, the /performance P&L chart (sendPhoto)"
    )
    timeout: float = Field(10.0, gt=0, description="seconds one Bot API request may take")
    poll_timeout: int = Field(25, ge=1, le=50, description="seconds getUpdates waits for a command (long polling)")
    max_command_age: float = Field(
        300.0, gt=0, description="commands older than this many seconds (sent while the bot was down) are ignored"
    )
    retry_initial: float = Field(
        2.0, gt=0, description="seconds before the first retry of a failed delivery; doubles with each failure"
    )
    retry_max: float = Field(300.0, gt=0, description="longest wait between two retries, seconds")
    drain_timeout: float = Field(
        10.0, gt=0, description="at shutdown, seconds without a delivery before the rest is left in the outbox"
    )
    outbox_max: int = Field(
        1000, ge=1, description="undelivered alerts kept in <state_dir>/telegram-outbox.json (the oldest is dropped)"
    )
    report_every_cycle: bool = Field(
        False, description="keep a compact report of every cycle in the chat: one message edited in place, a new one "
                           "(notifying) when a cycle places an order or a stop-loss or take-profit closes a trade"
    )
    report_edit_window: float = Field(
        24.0, ge=0, description="hours one report message is edited before a new (silent) one starts; a new one also "
                               "starts each UTC day; 0 = a new message every cycle"
    )
    report_min_interval: float = Field(
        3.0, ge=0, description="seconds between two cycle report requests at least (Telegram: 20 messages a minute "
                               "in a group); cycles that end meanwhile are merged into one"
    )

    @field_validator("api_url")
    @classmethod
    def _https_unless_loopback(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{url}' is not an http(s) URL such as 'https://api.telegram.org'")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise ValueError("the token travels in the URL: use https (plain http only on 127.0.0.1 / localhost)")
        return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Telegram:
    """The plugin: one instance per bot (or per ``gobot alerts test`` / ``gobot watchdog``)."""

    def __init__(self) -> None:
        self.ctx: Any = None
        self.config = TelegramConfig()
        self.chat_id = ""
        self.api: BotApi | None = None
        self.sender: Sender | None = None
        self.commands: Any = None
        self._poller: asyncio.Task | None = None
        self._chart_warning = False
        self.reporter: CycleReporter | None = None

    @hookimpl
    def gobot_config_model(self):
        return TelegramConfig

    # -- lifecycle --------------------------------------------------------------------------------

    def _open(self, ctx: Any, with_outbox: bool) -> None:
        config = TelegramConfig.of(ctx, NAME)
        token = os.environ.get(TOKEN_ENV, "").strip()
        chat_id = os.environ.get(CHAT_ENV, "").strip() or config.chat_id.strip()
        if not token:
            raise RuntimeError(f"{TOKEN_ENV} is not set: create a bot with @BotFather and export its token "
                               "(docs/alerts.md), or disable the telegram plugin")
        if not chat_id:
            raise RuntimeError(f"no chat to send to: set {CHAT_ENV} or [plugins.telegram] chat_id "
                               "(docs/alerts.md shows how to find it)")
        self.ctx, self.config, self.chat_id = ctx, config, chat_id
        self.api = BotApi(token, config.api_url, config.timeout)
        outbox = Outbox(ctx.config.state_path / OUTBOX_FILE, config.outbox_max) if with_outbox else None
        self.sender = Sender(self._send_entry, self._receipt, fold_window=config.fold_window,
                             retry_initial=config.retry_initial, retry_max=config.retry_max,
                             drain_timeout=config.drain_timeout, outbox=outbox)

    @hookimpl
    async def gobot_startup(self, ctx):
        self._open(ctx, with_outbox=True)
        try:
            me = await self.api.call("getMe")
        except TelegramError as exc:
            if exc.status in (401, 404):
                await self.api.close()
                self.api = self.sender = None
                raise RuntimeError(f"Telegram refused {TOKEN_ENV} ({exc}): "
                                   "copy the token again from @BotFather") from None
            log.warning("telegram: the Bot API is not reachable at start (%s); alerts are queued and retried", exc)
            me = {}
        config = self.config
        if config.report_every_cycle:
            self.reporter = CycleReporter(self.api, self.chat_id, config.report_edit_window)
            self.sender.set_report(self.reporter, config.report_min_interval)
        self.sender.start()
        if not config.commands:
            return
        if not (config.operators or config.viewers):
            log.warning("telegram: no user ids in [plugins.telegram] operators or viewers: "
                        "commands are off (deny by default)")
            return
        from .commands import CommandHandler

        self.commands = CommandHandler(self.api, ctx, config, self.chat_id, self._send_photo, self._chart_png)
        self.commands.bot_username = str((me or {}).get("username", ""))
        self._poller = asyncio.get_running_loop().create_task(self.commands.poll_forever(), name="telegram-commands")

    @hookimpl
    async def gobot_shutdown(self):
        if self._poller is not None:
            self._poller.cancel()
            try:
                await self._poller
            except (asyncio.CancelledError, Exception):
                pass
            self._poller = None
        if self.commands is not None:
            self.commands.cancel_orders()
            self.commands = None
        if self.sender is not None:
            await self.sender.drain()
            self.sender = None
        self.reporter = None
        if self.api is not None:
            await self.api.close()
            self.api = None

    # -- alerts -----------------------------------------------------------------------------------

    @hookimpl
    def gobot_send_alert(self, ctx, alert):
        config = TelegramConfig.of(ctx, NAME)
        if LEVELS.index(alert.severity) < LEVELS.index(config.min_severity):
            return
        if self.sender is None:  # no running bot (gobot alerts test, gobot watchdog): no outbox, no commands
            self._open(ctx, with_outbox=False)
        self.sender.submit(alert.model_dump(mode="json"))
        self.sender.start()

    @hookimpl
    def gobot_report(self, ctx, report):
        """The cycle report (``report_every_cycle``): fold this cycle into the live message; the sender
        edits or sends it once no alert waits."""
        if self.reporter is None or self.sender is None:
            return
        self.reporter.on_cycle(ctx.plugin_state(NAME), report, ctx.currency, list(ctx.snapshots or []))
        self.sender.report_submitted()

    def _receipt(self, entry: Entry, delivered: bool, detail: str) -> None:
        try:
            self.ctx.audit("alert_delivery", channel=NAME, kind=entry.alert.get("kind"), title=entry.alert.get("title"),
                           delivered=delivered, detail=detail, count=entry.count)
        except Exception:  # the audit log may already be closed; a receipt never breaks delivery
            log.debug("telegram: receipt not recorded", exc_info=True)

    async def _send_entry(self, entry: Entry) -> None:
        """Send one queued alert: its picture (a daily summary's equity curve), then its text parts."""
        alert = entry.alert
        delayed = time.time() - entry.created > DELAYED_AFTER_SECONDS
        steps: list[tuple[str, Any]] = []
        curve = (alert.get("data") or {}).get("equity_curve")
        if (entry.count == 1 and self.config.charts and alert.get("kind") == "daily_summary"
                and curve and len(curve) >= 2):
            from .chart import parse_curve

            points = parse_curve(curve)
            data = alert.get("data") or {}
            ylabel = f"equity, {data['currency']}" if data.get("currency") else "equity"
            png = (await self._chart_png(points, f"Equity {data.get('day', '')}", ylabel,
                                         points[0][1]) if len(points) >= 2 else None)
            if png is not None:
                icon = ICONS.get(str(alert.get("severity")), "")
                caption = f"{icon} <b>{escape(alert.get('title', ''))}</b>"
                steps.append(("photo", (png, caption if units(caption) < CAPTION_LIMIT else f"{icon} equity curve")))
        steps += [("message", part) for part in alert_parts(alert, entry.count, entry.window, delayed)]
        for index, (kind, payload) in enumerate(steps):
            if index < entry.parts_sent:
                continue  # delivered by an earlier try
            if kind == "photo":
                await self.api.call("sendPhoto", {"chat_id": self.chat_id, "caption": payload[1], "parse_mode": "HTML"},
                                    files={"photo": ("equity.png", payload[0], "image/png")})
            else:
                await self._send_text(self.chat_id, payload)
            self.sender.part_sent(entry)

    async def _send_text(self, chat_id: str, part: Any) -> None:
        params = {"chat_id": chat_id, "text": part.html, "parse_mode": "HTML", "disable_web_page_preview": True}
        try:
            await self.api.call("sendMessage", params)
        except TelegramError as exc:
            if not exc.unparsable:
                raise
            log.warning("telegram: the message could not be parsed as HTML (%s); sent as plain text", exc)
            await self.api.call("sendMessage",
                                {"chat_id": chat_id, "text": part.plain, "disable_web_page_preview": True})

    async def _chart_png(self, points: list, title: str, ylabel: str, baseline: float | None = None) -> bytes | None:
        if not self.config.charts:
            return None
        from .chart import line_chart_png

        try:
            return await asyncio.to_thread(line_chart_png, points, title, ylabel, baseline)
        except ImportError:
            if not self._chart_warning:
                self._chart_warning = True
                log.warning("telegram: matplotlib is not installed: charts are sent as text only")
        except Exception:
            log.exception("telegram: the chart could not be drawn")
        return None

    async def _send_photo(self, chat_id: Any, png: bytes, caption_html: str, filename: str) -> None:
        try:
            await self.api.call("sendPhoto", {"chat_id": chat_id, "caption": caption_html, "parse_mode": "HTML"},
                                files={"photo": (filename, png, "image/png")})
        except TelegramError as exc:
            log.warning("telegram: picture not sent: %s", exc)

    # -- confirm-first ----------------------------------------------------------------------------

    @hookimpl
    async def gobot_confirm_order(self, ctx, intent):
        commands = self.commands
        if commands is None or not self.config.confirm_orders or not self.config.operators:
            return None
        if intent.reason and intent.reason in commands.confirmed_reasons:
            return True  # a close an operator already confirmed with /close
        return await commands.confirm_order(intent)
