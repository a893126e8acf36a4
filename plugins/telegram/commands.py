"""Telegram commands by long polling (``getUpdates``), deny by default.

Every message and button press is checked on arrival: the sender's Telegram **user id** must be
listed as a viewer or an operator (so adding the bot to a group gives nobody else control), and
the chat must be the configured one or the user's private chat. Viewers may read; operators may
also pause, resume, kill and close, and confirm orders. ``/kill`` and ``/close`` wait for a
confirmation: a button, or the same command again within ``confirm_window`` seconds. Anything
else is ignored and written to the audit log.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from gobot_hookspecs.money import money, quote_of

from .api import BotApi, TelegramError
from .text import escape, table

log = logging.getLogger(__name__)

VIEWER, OPERATOR = "viewer", "operator"
#: What of a command's arguments the audit log keeps: a chat message may be 4,096 characters of
#: anything, repeated; the audit line of one command stays under a kilobyte.
AUDIT_ARGS, AUDIT_ARG_CHARS = 8, 64


def capped(args: list[str]) -> list[str]:
    """``args`` as the audit log keeps them: at most AUDIT_ARGS, each at most AUDIT_ARG_CHARS, the rest counted."""
    kept = [a if len(a) <= AUDIT_ARG_CHARS else f"{a[:AUDIT_ARG_CHARS]}…(+{len(a) - AUDIT_ARG_CHARS} chars)"
            for a in args[:AUDIT_ARGS]]
    return kept + ([f"…(+{len(args) - AUDIT_ARGS} more)"] if len(args) > AUDIT_ARGS else [])


@dataclass
class Command:
    role: str
    help: str


COMMANDS = {
    "status": Command(VIEWER, "run, cycle, equity, pause and kill switch"),
    "balance": Command(VIEWER, "equity, exposure, P&L since the start"),
    "positions": Command(VIEWER, "open positions with their P&L"),
    "performance": Command(VIEWER, "closed trades: win rate, P&L, a chart"),
    "chart": Command(VIEWER, "/chart SYMBOL [TIMEFRAME]: a price chart (needs the charts plugin)"),
    "help": Command(VIEWER, "this list"),
    "pause": Command(OPERATOR, "/pause [reason]: open no new positions"),
    "resume": Command(OPERATOR, "open positions again (undo /pause)"),
    "kill": Command(OPERATOR, "engage the kill switch: no new orders, the run stops (asks to confirm)"),
    "close": Command(OPERATOR, "/close [SYMBOL ...]: close positions now, all by default (asks to confirm)"),
}


@dataclass
class Pending:
    """An action waiting for an operator's confirmation (kill, close) or answer (an order)."""

    kind: str  # kill | close | order
    expires: float  # monotonic
    chat: Any
    message_id: int | None = None
    args: list[str] = field(default_factory=list)
    future: asyncio.Future | None = None  # orders: resolved with True/False
    text: str = ""  # the question, to edit in the outcome


class CommandHandler:
    """Polls updates and answers them; holds the pending confirmations."""

    def __init__(self, api: BotApi, ctx: Any, config: Any, chat_id: str, send_chart: Callable[..., Awaitable[None]],
                 chart_png: Callable[..., Awaitable[bytes | None]]):
        self.api = api
        self.ctx = ctx
        self.config = config
        self.chat_id = str(chat_id)
        self.send_chart = send_chart
        self.chart_png = chart_png
        self.bot_username = ""
        self.pending: dict[str, Pending] = {}
        self.confirmed_reasons: set[str] = set()  # closes an operator confirmed: not asked again (confirm-first)
        self.handled = 0

    # -- who may do what --------------------------------------------------------------------------

    def role(self, user_id: Any) -> str | None:
        if user_id in self.config.operators:
            return OPERATOR
        if user_id in self.config.viewers:
            return VIEWER
        return None

    def chat_allowed(self, chat_id: Any, user_id: Any) -> bool:
        return str(chat_id) == self.chat_id or chat_id == user_id  # the alert chat, or a private chat

    def _ignore(self, reason: str, user_id: Any, chat_id: Any, text: str) -> None:
        # ids as strings, as Telegram shows them (a chat id is not a secret; nothing masks it)
        self.ctx.audit("telegram_ignored", reason=reason, user_id=str(user_id), chat_id=str(chat_id), text=text[:200])

    # -- polling ----------------------------------------------------------------------------------

    async def poll_forever(self) -> None:
        offset = None
        failures = 0
        while True:
            params = {"timeout": self.config.poll_timeout, "allowed_updates": ["message", "callback_query"]}
            if offset is not None:
                params["offset"] = offset
            try:
                updates = await self.api.call("getUpdates", params,
                                              timeout=self.config.poll_timeout + self.config.timeout)
                failures = 0
            except TelegramError as exc:
                failures += 1
                if exc.status == 409:
                    log.error("telegram: another process polls this bot's updates (%s); "
                              "commands are off until it stops", exc)
                elif failures == 1 or failures % 20 == 0:
                    log.warning("telegram: polling for commands failed (%s); retrying", exc)
                delay = exc.retry_after or min(self.config.retry_max,
                                               self.config.retry_initial * 2 ** min(failures - 1, 10))
                await asyncio.sleep(delay)
                continue
            for update in updates or []:
                offset = max(offset or 0, int(update.get("update_id", 0)) + 1)
                try:
                    await self.handle(update)
                except Exception:
                    log.exception("telegram: update %s could not be handled", update.get("update_id"))
                self.handled += 1

    async def handle(self, update: dict[str, Any]) -> None:
        if "callback_query" in update:
            await self._button(update["callback_query"])
        elif "message" in update:
            await self._message(update["message"])

    # -- messages ---------------------------------------------------------------------------------

    async def _message(self, message: dict[str, Any]) -> None:
        user_id = (message.get("from") or {}).get("id")
        chat_id = (message.get("chat") or {}).get("id")
        text = str(message.get("text") or "")
        role = self.role(user_id)
        if role is None:
            return self._ignore("unknown user", user_id, chat_id, text)
        if not self.chat_allowed(chat_id, user_id):
            return self._ignore("chat not allowed", user_id, chat_id, text)
        age = time.time() - float(message.get("date", time.time()))
        if age > self.config.max_command_age:
            return self._ignore(f"stale: sent {age:.0f} s ago", user_id, chat_id, text)
        if not text.startswith("/"):
            return self._ignore("not a command", user_id, chat_id, text)
        words = text[1:].split()
        if not words:
            return self._ignore("not a command", user_id, chat_id, text)
        name, args = words[0], words[1:]
        name, _, target = name.partition("@")
        if target and self.bot_username and target.lower() != self.bot_username.lower():
            return self._ignore("command for another bot", user_id, chat_id, text)
        command = COMMANDS.get(name.lower())
        if command is None:
            return self._ignore("unknown command", user_id, chat_id, text)
        if command.role == OPERATOR and role != OPERATOR:
            self._ignore("needs the operator role", user_id, chat_id, text)
            await self.reply(chat_id, f"/{escape(name)} needs the operator role.")
            return
        self.ctx.audit("telegram_command", command=name.lower(), args=capped(args), user_id=str(user_id), role=role,
                       chat_id=str(chat_id))
        await getattr(self, f"_cmd_{name.lower()}")(chat_id, user_id, args)

    async def reply(self, chat_id: Any, html: str, buttons: list[tuple[str, str]] | None = None) -> dict | None:
        params: dict[str, Any] = {"chat_id": chat_id, "text": html, "parse_mode": "HTML",
                                  "disable_web_page_preview": True}
        if buttons:
            params["reply_markup"] = {"inline_keyboard": [[{"text": label, "callback_data": data}
                                                           for label, data in buttons]]}
        try:
            return await self.api.call("sendMessage", params)
        except TelegramError as exc:
            log.warning("telegram: reply not sent: %s", exc)
            return None

    # -- read-only commands -------------------------------------------------------------------------

    def _prices(self) -> dict[str, float]:
        return {snap.symbol: snap.price for snap in getattr(self.ctx, "snapshots", [])}

    async def _cmd_help(self, chat_id: Any, user_id: Any, args: list[str]) -> None:
        role = self.role(user_id)
        lines = [f"/{name} — {escape(cmd.help)}" for name, cmd in COMMANDS.items()
                 if role == OPERATOR or cmd.role == VIEWER]
        await self.reply(chat_id, f"<b>gobot commands</b> (you are {role})\n" + "\n".join(lines))

    async def _cmd_status(self, chat_id: Any, user_id: Any, args: list[str]) -> None:
        ctx = self.ctx
        capital = ctx.config.trading.initial_capital_usd
        equity = ctx.equity()
        breaker = ctx.plugin_state("circuit_breaker").get("state", "not installed")
        rows = [
            ("Mode", "LIVE" if ctx.live else "paper"),
            ("Run", f"{ctx.run_id}, cycle {ctx.iteration}"),
            ("Time", ctx.now().strftime("%Y-%m-%d %H:%M UTC")),
            ("Equity", f"{money(equity, ctx.currency)} "
                       f"({money(equity - capital, ctx.currency, True)} since the start)"),
            ("Open positions", str(len(ctx.positions()))),
            ("Paused", "yes" if ctx.paused else "no"),
            ("Kill switch", "ON" if ctx.config.kill_switch_path.exists() else "off"),
            ("Circuit breaker", str(breaker)),
        ]
        await self.reply(chat_id, "<b>gobot status</b>\n" + table(rows))

    async def _cmd_balance(self, chat_id: Any, user_id: Any, args: list[str]) -> None:
        ctx = self.ctx
        capital = ctx.config.trading.initial_capital_usd
        equity, exposure = ctx.equity(), ctx.exposure()
        realised = sum(t.pnl for t in ctx.closed_trades())
        cur = ctx.currency
        rows = [
            ("Equity", money(equity, cur)),
            ("Exposure", f"{money(exposure, cur)} in {len(ctx.positions())} positions"),
            ("Initial capital", money(capital, cur)),
            ("P&L", f"{money(equity - capital, cur, True)} ({(equity / capital - 1) * 100:+.2f} %), "
                    f"realised {money(realised, cur, True)}"),
        ]
        await self.reply(chat_id, "<b>Balance</b>\n" + table(rows))

    async def _cmd_positions(self, chat_id: Any, user_id: Any, args: list[str]) -> None:
        positions = self.ctx.positions()
        if not positions:
            await self.reply(chat_id, "No open positions.")
            return
        prices = self._prices()
        lines = []
        for symbol, p in sorted(positions.items()):
            price = prices.get(symbol, p.entry_price)
            stops = " ".join(part for part in (f"SL {p.stop_loss:.6g}" if p.stop_loss else "",
                                               f"TP {p.take_profit:.6g}" if p.take_profit else "") if part)
            lines.append(f"<b>{escape(symbol)}</b> {escape(p.direction.value)} {p.amount:.6g} @ {p.entry_price:.6g} "
                         f"→ {price:.6g}, P&L {money(p.unrealised_pnl(price), quote_of(symbol), True)} "
                         f"{escape(stops)}".rstrip())
        await self.reply(chat_id, "<b>Open positions</b>\n" + "\n".join(lines))

    async def _cmd_performance(self, chat_id: Any, user_id: Any, args: list[str]) -> None:
        trades = self.ctx.closed_trades()
        if not trades:
            await self.reply(chat_id, "No closed trades yet.")
            return
        wins = [t for t in trades if t.pnl > 0]
        total = sum(t.pnl for t in trades)
        cur = self.ctx.currency
        rows = [
            ("Closed trades", f"{len(trades)} ({len(wins)} won, {len(wins) / len(trades):.0%})"),
            ("P&L", f"{money(total, cur, True)} (average {money(total / len(trades), cur, True)})"),
            ("Best / worst", f"{money(max(t.pnl for t in trades), cur, True)} / "
                             f"{money(min(t.pnl for t in trades), cur, True)}"),
        ]
        caption = "<b>Performance</b>\n" + table(rows)
        points, running = [], 0.0
        for trade in trades:
            running += trade.pnl
            points.append((trade.closed_at, running))
        png = (await self.chart_png(points, "Cumulative P&L of closed trades", f"P&L, {cur}", 0.0)
               if len(points) >= 2 else None)
        if png is None:
            await self.reply(chat_id, caption)
        else:
            await self.send_chart(chat_id, png, caption, "performance.png")

    async def _cmd_chart(self, chat_id: Any, user_id: Any, args: list[str]) -> None:
        if not args:
            await self.reply(chat_id, "Usage: /chart SYMBOL [TIMEFRAME], e.g. /chart BTC/USDT 15m")
            return
        symbol, timeframe = args[0].upper(), (args[1] if len(args) > 1 else "15m")
        chart = getattr(self.ctx, "chart", None)
        try:
            if chart is None:
                raise LookupError("no chart support in this gobot")
            image = await chart(symbol, timeframe, 96)
        except Exception as exc:  # LookupError: no chart plugin or no candles; anything else: say so
            await self.reply(chat_id, f"No chart: {escape(exc)}")
            return
        await self.send_chart(chat_id, image.png, f"<b>{escape(symbol)}</b> {escape(timeframe)}", "chart.png")

    # -- operator commands --------------------------------------------------------------------------

    def _who(self, user_id: Any) -> str:
        return f"telegram user {user_id}"

    async def _cmd_pause(self, chat_id: Any, user_id: Any, args: list[str]) -> None:
        reason = " ".join(args) or "no reason given"
        self.ctx.pause(f"telegram /pause by {self._who(user_id)}: {reason}")
        await self.reply(chat_id, "Paused: no new positions until /resume. Exits still run.")

    async def _cmd_resume(self, chat_id: Any, user_id: Any, args: list[str]) -> None:
        self.ctx.unpause(f"telegram /resume by {self._who(user_id)}")
        await self.reply(chat_id, "Resumed: new positions allowed.")

    async def _cmd_kill(self, chat_id: Any, user_id: Any, args: list[str]) -> None:
        await self._ask_or_confirm("kill", chat_id, user_id, [],
                                   "⚠️ <b>Engage the kill switch?</b> No new orders; the run stops after this cycle.")

    async def _cmd_close(self, chat_id: Any, user_id: Any, args: list[str]) -> None:
        symbols = [a.upper() for a in args if a.lower() != "all"]
        held = self.ctx.positions()
        unknown = [s for s in symbols if s not in held]
        if unknown or not held:
            await self.reply(chat_id, "Nothing to close: no open position in "
                                      f"{escape(', '.join(capped(unknown)) or 'any symbol')}.")
            return
        what = ", ".join(symbols) if symbols else f"all {len(held)} positions"
        await self._ask_or_confirm("close", chat_id, user_id, symbols,
                                   f"⚠️ <b>Close {escape(what)} now?</b> Market orders, CRITICAL priority, "
                                   "not risk-checked.")

    async def _ask_or_confirm(self, kind: str, chat_id: Any, user_id: Any, args: list[str], question: str) -> None:
        """The same command again within the window confirms; otherwise ask, with buttons."""
        now = time.monotonic()
        for nonce, pending in list(self.pending.items()):
            if pending.kind == kind and pending.args == args and pending.expires > now:
                await self._confirmed(nonce, user_id, chat_id)
                return
        nonce = secrets.token_hex(6)
        window = self.config.confirm_window
        text = f"{question}\nPress the button or send the same command again within {window:g} s."
        label = "Engage kill switch" if kind == "kill" else "Close now"
        # Stored before a press can come.
        pending = self.pending[nonce] = Pending(kind, now + window, chat_id, None, args, text=text)
        sent = await self.reply(chat_id, text, [(label, f"ok:{nonce}"), ("Cancel", f"no:{nonce}")])
        pending.message_id = (sent or {}).get("message_id")

    async def _confirmed(self, nonce: str, user_id: Any, chat_id: Any) -> None:
        pending = self.pending.pop(nonce)
        who = self._who(user_id)
        if pending.kind == "kill":
            self.ctx.kill(f"telegram /kill by {who}")
            outcome = "Kill switch engaged: no new orders; the run stops after this cycle."
        else:
            reason = f"telegram /close by {who} ({nonce})"
            self.confirmed_reasons.add(reason)
            self.ctx.close_positions(reason, pending.args or None)
            outcome = (f"Closing {escape(', '.join(pending.args) or 'all positions')}: "
                       "sent in this cycle's execute phase (or the next).")
        self.ctx.audit("telegram_confirmed", action=pending.kind, args=capped(pending.args), user_id=str(user_id))
        await self._settle(pending, f"✅ confirmed by {escape(who)}")
        await self.reply(chat_id, outcome)

    async def _settle(self, pending: Pending, outcome: str) -> None:
        """Edit the question to show how it ended, and remove its buttons."""
        if pending.message_id is None:
            return
        try:
            await self.api.call("editMessageText", {"chat_id": pending.chat, "message_id": pending.message_id,
                                                    "text": f"{pending.text}\n\n{outcome}", "parse_mode": "HTML"})
        except TelegramError as exc:
            log.info("telegram: could not edit a confirmation message: %s", exc)

    # -- buttons ------------------------------------------------------------------------------------

    async def _button(self, query: dict[str, Any]) -> None:
        user_id = (query.get("from") or {}).get("id")
        message = query.get("message") or {}
        chat_id = (message.get("chat") or {}).get("id")
        data = str(query.get("data") or "")
        if self.role(user_id) != OPERATOR:
            return self._ignore("button: needs the operator role", user_id, chat_id, data)
        if not self.chat_allowed(chat_id, user_id):
            return self._ignore("button: chat not allowed", user_id, chat_id, data)
        answer, _, nonce = data.partition(":")
        pending = self.pending.get(nonce)
        if pending is None or pending.expires < time.monotonic():
            self.pending.pop(nonce, None)
            await self._answer(query, "Expired: nothing done.")
            return
        self.ctx.audit("telegram_button", action=pending.kind, answer=answer, user_id=str(user_id))
        if pending.kind == "order":
            self.pending.pop(nonce)
            confirmed = answer == "ok"
            if pending.future is not None and not pending.future.done():
                pending.future.set_result(confirmed)
            await self._answer(query, "Order confirmed" if confirmed else "Order rejected")
            mark = "✅ confirmed" if confirmed else "❌ rejected"
            await self._settle(pending, f"{mark} by {escape(self._who(user_id))}")
            return
        if answer == "ok":
            await self._answer(query, "Confirmed")
            await self._confirmed(nonce, user_id, chat_id)
        else:
            self.pending.pop(nonce)
            await self._answer(query, "Cancelled")
            await self._settle(pending, f"Cancelled by {escape(self._who(user_id))}.")

    async def _answer(self, query: dict[str, Any], text: str) -> None:
        try:
            await self.api.call("answerCallbackQuery", {"callback_query_id": query.get("id"), "text": text})
        except TelegramError as exc:
            log.info("telegram: could not answer a button press: %s", exc)

    # -- confirm-first orders -----------------------------------------------------------------------

    async def confirm_order(self, intent: Any) -> bool | None:
        """Ask the operators; True/False as they answer, None if nobody did within ``confirm_timeout``."""
        nonce = secrets.token_hex(6)
        signal = intent.signal
        lines = [
            f"🟡 <b>Confirm order?</b> {escape(intent.side.value.upper())} {escape(intent.symbol)} "
            f"{money(intent.notional_usd, self.ctx.currency)} @ ~{intent.reference_price:.6g} "
            f"({escape(intent.purpose)})",
        ]
        stops = [f"SL {intent.stop_loss:.6g}" if intent.stop_loss else "",
                 f"TP {intent.take_profit:.6g}" if intent.take_profit else ""]
        if signal is not None:
            stops.append(f"confidence {signal.confidence:.2f}"
                         + (f" ({signal.strategy} v{signal.strategy_version})" if signal.strategy else ""))
        if any(stops):
            lines.append(escape(" · ".join(part for part in stops if part)))
        reason = intent.reason or (signal.rationale if signal is not None else "")
        if reason:
            lines.append(escape(reason[:1500]))
        timeout = self.config.confirm_timeout
        lines.append(f"Operators: confirm within {timeout:g} s, or it is only proposed.")
        text = "\n".join(lines)
        future = asyncio.get_running_loop().create_future()
        pending = Pending("order", time.monotonic() + timeout, self.chat_id, None, future=future, text=text)
        self.pending[nonce] = pending  # before the message: an operator may press faster than the send returns
        sent = await self.reply(self.chat_id, text, [("✅ Send", f"ok:{nonce}"), ("❌ Reject", f"no:{nonce}")])
        if sent is None:
            self.pending.pop(nonce, None)
            return None  # Telegram unreachable: proposed only, as without confirm-first
        pending.message_id = sent.get("message_id")
        try:
            answer = await asyncio.wait_for(asyncio.shield(future), timeout=timeout)
            return answer if isinstance(answer, bool) else None
        except asyncio.TimeoutError:
            self.pending.pop(nonce, None)
            await self._settle(pending, f"⌛ not confirmed within {timeout:g} s: proposed only, not sent")
            return None

    def cancel_orders(self) -> None:
        """Shutdown: orders still waiting are answered 'no answer' (proposed only)."""
        for nonce, pending in list(self.pending.items()):
            if pending.future is not None and not pending.future.done():
                pending.future.set_result(None)
            self.pending.pop(nonce, None)
