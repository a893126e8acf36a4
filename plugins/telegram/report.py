"""The cycle report: one compact Telegram message per cycle, edited in place so that a 15-minute loop
does not flood the chat (``[plugins.telegram] report_every_cycle``).

The policy, in *pages* (one page = one Telegram message):

- a quiet cycle (no order placed or proposed, no trade closed) edits the live page in place: the
  chat does not grow, and an edit never notifies; its fills (an order of an earlier cycle filled),
  and a trade closed by a close order placed on this page, are added to the page's events;
- a notable cycle (an order placed or proposed, a trade closed otherwise: a stop-loss, a
  take-profit) starts a new page, sent with a notification; its events stay on that page while
  later quiet cycles edit the part above them;
- a new page also starts at the first cycle of a UTC day and when the live page is
  ``report_edit_window`` hours old; those are sent silently (``disable_notification``).

The sender serves the report below the alerts (``delivery.Sender.set_report``). Cycles that end while
a report waits merge into it: only the newest state is sent, and the events of a page that was never
sent are carried into the next one. The live page (its message id and events) is kept in
``ctx.plugin_state("telegram")``, saved with the bot's state, so a restart goes on editing it.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import datetime, timedelta
from typing import Any

from gobot_hookspecs.money import amount_text, money

from .api import BotApi, TelegramError
from .text import MESSAGE_LIMIT, escape, units

log = logging.getLogger(__name__)

STATE_KEY = "cycle_report"
LINE_LIMIT = 240  # visible characters of one line of the report (a longer reason is cut)
MAX_VETOES, MAX_EVENTS = 6, 25
KEPT_EVENTS = 100  # events a page keeps in the state (a long outage carries many pages into one): the newest
NOT_MODIFIED = "message is not modified"
GONE = ("message to edit not found", "message can't be edited")
_TAG = re.compile(r"<[^>]+>")


def visible(text_html: str) -> str:
    """What Telegram shows of the report's HTML (its tags are the few this module writes)."""
    return html.unescape(_TAG.sub("", text_html))


def shorten(text: str, limit: int = LINE_LIMIT) -> str:
    """``text`` cut to ``limit`` UTF-16 units with an ellipsis; one line."""
    text = " ".join(str(text).split())
    if units(text) <= limit:
        return text
    while units(text) > limit - 1:
        text = text[:-1]
    return text + "…"


def fold(lines: list[str], keep: int, what: str) -> list[str]:
    """The first ``keep`` lines, then ``… and N more <what>``."""
    if len(lines) <= keep:
        return lines
    return lines[:keep] + [f"… and {len(lines) - keep} more {what}"]


def fit(lines: list[str], limit: int = MESSAGE_LIMIT) -> str:
    """``lines`` joined, the last ones folded into ``… and N more lines`` until the text fits ``limit``."""
    text = "\n".join(lines)
    if units(visible(text)) <= limit:
        return text
    for keep in range(len(lines) - 1, 0, -1):
        text = "\n".join(lines[:keep] + [f"… and {len(lines) - keep} more lines"])
        if units(visible(text)) <= limit:
            return text
    return escape(shorten(visible(lines[0]), limit))


# -- what a cycle says ----------------------------------------------------------------------------


def _price(value: float | None) -> str:
    return "market" if value is None else f"{value:.6g}"


def top_lines(report: Any, currency: str, day_base: float, snapshots: list[Any]) -> list[str]:
    """The part of the page a later cycle replaces: header, signals, vetoes, sentiment, errors."""
    today = (report.equity / day_base - 1) * 100 if day_base > 0 else 0.0
    header = (f"📊 <b>#{report.iteration}</b> {report.time:%H:%M} UTC · equity {escape(money(report.equity, currency))}"
              f" ({today:+.2f} % today) · P&amp;L {escape(amount_text(report.realised_pnl, currency, signed=True))}"
              f" · {report.open_positions} open" + (" · ⏸ paused" if report.paused else ""))
    lines = [header]
    acting = [s for s in report.signals if str(getattr(s.action, "value", s.action)) != "HOLD"]
    holds = len(report.signals) - len(acting)
    if report.signals:
        items = [f"{s.symbol} {getattr(s.action, 'value', s.action)} {s.confidence:.2f}" for s in acting]
        shown: list[str] = []
        for item in items:
            if units(" · ".join([*shown, item])) > LINE_LIMIT - 40:
                break
            shown.append(item)
        rest = len(items) - len(shown)
        text = " · ".join(shown) + (f" · … and {rest} more" if rest else "")
        lines.append("📈 signals: " + escape(text or "none") + (f" ({holds} hold)" if holds else ""))
    vetoes: dict[str, int] = {}
    for veto in report.vetoes:
        key = shorten(f"{veto.symbol or '?'} — {veto.plugin or 'risk'}: {veto.reason or 'no reason given'}")
        vetoes[key] = vetoes.get(key, 0) + 1
    lines += fold([f"🛑 {escape(key)}" + (f" ×{n}" if n > 1 else "") for key, n in vetoes.items()],
                  MAX_VETOES, "vetoes")
    mood = sentiment_line(snapshots)
    if mood:
        lines.append(f"🧭 sentiment: {escape(mood)}")
    if report.errors:
        lines.append(f"⚠️ {len(report.errors)} plugin errors: {escape(shorten(report.errors[0], 160))}")
    return lines


def sentiment_line(snapshots: list[Any]) -> str:
    """The sentiment readings on this cycle's snapshots in one short line: source, symbol, score, its
    classification, stale; "" when there are none. (``gobot_hookspecs.sentiment.describe`` has the inputs.)"""
    seen, items = set(), []
    for snap in snapshots or []:
        for reading in (getattr(snap, "sentiment", None) or {}).values():
            key = (reading.source, reading.symbol)
            if key in seen:
                continue
            seen.add(key)
            score = "no score" if reading.score is None else f"{reading.score:+.2f}"
            label = reading.fields.get("classification")
            items.append(f"{reading.source}{' ' + reading.symbol if reading.symbol else ''} {score}"
                         + (f" ({label})" if isinstance(label, str) and label else "")
                         + (" STALE" if reading.stale else ""))
    return shorten(" · ".join(items)) if items else ""


def event_lines(report: Any, currency: str) -> list[str]:
    """This cycle's orders, fills (those not of its orders) and closed trades, each marked with the cycle."""
    mark = f"<b>#{report.iteration}</b>"
    lines = []
    for order in report.orders:
        side = str(getattr(order.side, "value", order.side)).upper()
        lines.append(f"{mark} 🟢 {escape(shorten(f'{side} {order.amount:.6g} {order.symbol} @ {_price(order.price)}'))}"
                     f" ({escape(order.purpose)}, {escape(order.status)})")
    ordered = {order.id for order in report.orders}
    for fill in report.fills:
        if fill.order_id in ordered:
            continue
        side = str(getattr(fill.side, "value", fill.side)).upper()
        lines.append(f"{mark} ✅ filled {escape(shorten(f'{side} {fill.amount:.6g} {fill.symbol} @ {fill.price:.6g}'))}"
                     f" ({escape(shorten(fill.reason, 60))})")
    for trade in report.trades_closed:
        direction = getattr(trade.direction, "value", trade.direction)
        lines.append(f"{mark} 💰 closed {escape(trade.symbol)} {escape(direction)} "
                     f"{escape(money(trade.pnl, currency, signed=True))} ({escape(shorten(trade.exit_reason, 60))})")
    return lines


def render(page: dict[str, Any]) -> str:
    """The page as one message: the newest cycle on top, the page's events below, within 4096 characters."""
    lines = list(page.get("top") or [])
    events = list(page.get("events") or [])
    if events:
        lines += fold(events, MAX_EVENTS, "events")
    if page.get("older"):
        lines.append(f"… and {page['older']} older events (not kept)")
    first, last = page.get("first"), page.get("last")
    if last is not None and first is not None and last != first:
        lines.append(f"<i>cycles #{first}–#{last} on this message</i>")
    return fit(lines)


# -- the policy and its delivery ------------------------------------------------------------------


class CycleReporter:
    """Keeps the live page in the plugin's state, updates it each cycle, and sends or edits it."""

    def __init__(self, api: BotApi, chat_id: str, edit_window_hours: float):
        self.api = api
        self.chat_id = chat_id
        self.edit_window = timedelta(hours=edit_window_hours)
        self.state: dict[str, Any] = {}
        self._in_flight: dict[str, Any] | None = None
        self.sent = self.edited = 0

    @property
    def page(self) -> dict[str, Any] | None:
        return self.state.get(STATE_KEY)

    def on_cycle(self, state: dict[str, Any], report: Any, currency: str, snapshots: list[Any]) -> None:
        """Fold one finished cycle into the live page (a new page when the policy says so)."""
        self.state = state
        day = report.time.date().isoformat()
        if state.get("report_day") != day:  # "today" counts from the day's first cycle, as the daily P&L does
            state["report_day"], state["report_day_base"] = day, report.equity
        events = event_lines(report, currency)
        page = self.page
        closing = set((page or {}).get("closing") or [])  # symbols this page placed a close order for
        notable = bool(report.orders) or any(t.symbol not in closing for t in report.trades_closed)
        if self._new_page(page, report, day, notable):
            page = self._start(page, report, day, notable)
        page["closing"] = sorted({*page.get("closing", []), *(o.symbol for o in report.orders if o.purpose == "close")})
        page["events"] = [*page["events"], *events]
        if len(page["events"]) > KEPT_EVENTS:
            page["older"] = page.get("older", 0) + len(page["events"]) - KEPT_EVENTS
            page["events"] = page["events"][-KEPT_EVENTS:]
        page["top"] = top_lines(report, currency, float(state["report_day_base"]), snapshots)
        page["last"] = report.iteration
        page["version"] = page.get("version", 0) + 1

    def _new_page(self, page: dict[str, Any] | None, report: Any, day: str, notable: bool) -> bool:
        if page is None or notable or page.get("day") != day:
            return True
        try:
            return report.time - datetime.fromisoformat(page["started"]) >= self.edit_window
        except (KeyError, TypeError, ValueError):  # a damaged or naive time in the state: start afresh
            return True

    def _start(self, old: dict[str, Any] | None, report: Any, day: str, notable: bool) -> dict[str, Any]:
        page = {"message_id": None, "first": report.iteration, "started": report.time.isoformat(), "day": day,
                "events": [], "notify": notable, "version": 0, "delivered": 0}
        if old is not None and old.get("message_id") is None and old is not self._in_flight and old.get("events"):
            self._carry(old, page)  # never sent: its events go out with this page
        self.state[STATE_KEY] = page
        return page

    @staticmethod
    def _carry(old: dict[str, Any], page: dict[str, Any]) -> None:
        page["events"] = [*old["events"], *page["events"]]
        page["older"] = page.get("older", 0) + old.get("older", 0)
        page["first"] = old.get("first", page["first"])
        page["notify"] = page["notify"] or bool(old.get("notify"))

    # -- ReportSource (delivery.Sender) -----------------------------------------------------------

    def due(self) -> bool:
        page = self.page
        return page is not None and page.get("version", 0) > page.get("delivered", 0)

    def drop(self, why: str) -> None:
        page = self.page
        if page is not None:
            page["delivered"] = page.get("version", 0)
        log.warning("telegram: cycle report dropped: %s", why)

    async def deliver(self) -> None:
        page = self.page
        if page is None:
            return
        version, text = page.get("version", 0), render(page)
        self._in_flight = page
        try:
            if page.get("message_id") is None:
                page["message_id"] = await self._send(text, silent=not page.get("notify"))
            else:
                await self._edit(page, text)
        except TelegramError as exc:
            current = self.page
            if current is not page and current is not None:  # a new page started while this one was being sent
                if page.get("message_id") is None:
                    self._carry(page, current)  # and this one was not sent: its events go with the new one
                    current["version"] = current.get("version", 0) + 1
                if not exc.retryable:
                    return  # given up on the old page only: the new one is due
            raise
        finally:
            self._in_flight = None
        page["delivered"] = max(page.get("delivered", 0), version)

    async def _send(self, text: str, silent: bool) -> int:
        message = await self.api.call("sendMessage", {
            "chat_id": self.chat_id, "text": text, "parse_mode": "HTML", "disable_web_page_preview": True,
            "disable_notification": silent})
        self.sent += 1
        return int((message or {}).get("message_id"))

    async def _edit(self, page: dict[str, Any], text: str) -> None:
        try:
            await self.api.call("editMessageText", {
                "chat_id": self.chat_id, "message_id": page["message_id"], "text": text, "parse_mode": "HTML",
                "disable_web_page_preview": True})
            self.edited += 1
        except TelegramError as exc:
            if exc.status != 400:
                raise
            if NOT_MODIFIED in str(exc):
                return  # already shows this: nothing to do
            if not any(reason in str(exc) for reason in GONE):
                raise
            log.info("telegram: the cycle report message is gone (%s); sending a new one", exc)
            page["message_id"] = await self._send(text, silent=True)
