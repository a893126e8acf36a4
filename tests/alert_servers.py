"""Loopback servers the alert tests start on 127.0.0.1 (random port): a Telegram Bot API look-alike and a
webhook receiver. Both record what they receive and fail on request (an HTTP status, 429 with
retry_after, or hanging past the client's timeout). Tests wait on what they recorded, with timeouts.

The Telegram server checks messages the way Telegram does where it matters to gobot: the token in
the URL, HTML parse mode (only Telegram's tags; every bare <, > and & must be escaped), the
length limits (4096 visible characters, 1024 for a caption), and a PNG for sendPhoto. getUpdates
long-polls: it waits up to its ``timeout`` for an update to arrive. It keeps the messages it sent, so
editMessageText answers as https://core.telegram.org/bots/api#editmessagetext documents: the edited
Message (with ``edit_date``), or 400 "Bad Request: message to edit not found" (a message deleted in the
chat: ``delete_message``) and 400 "Bad Request: message is not modified: ..." (the same text, parse
mode and buttons again) — the descriptions Telegram sends (github.com/TelegramBotAPI/errors/issues/7,
github.com/yi-jiayu/bus-eta-bot/issues/6).
"""

from __future__ import annotations

import email.parser
import email.policy
import html
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl

TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a", "span", "tg-spoiler",
                 "tg-emoji", "blockquote"}
TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z-]*)((?:\s[^<>]*)?)>")
ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


class BadEntities(ValueError):
    pass


def visible_text(text: str) -> str:
    """What Telegram shows of an HTML message; BadEntities where Telegram would refuse to parse it."""
    stack: list[str] = []
    for match in TAG.finditer(text):
        closing, name = match.group(1), match.group(2).lower()
        if name not in TELEGRAM_TAGS:
            raise BadEntities(f"Unsupported start tag \"{name}\"")
        if closing:
            if not stack or stack.pop() != name:
                raise BadEntities(f"Unmatched end tag \"{name}\"")
        else:
            stack.append(name)
    if stack:
        raise BadEntities(f"Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    bare = ENTITY.sub("", TAG.sub("", text))
    for char in "<>&":
        if char in bare:
            raise BadEntities(f"Unexpected character '{char}': it must be escaped")
    return html.unescape(TAG.sub("", text))


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Call:
    time: float
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    status: int = 200


@dataclass
class Failure:
    method: str  # a Bot API method, or "*" for any but getUpdates
    status: int = 500
    retry_after: int | None = None
    hang: float = 0.0  # seconds to wait before answering (longer than the client's timeout = a timeout)
    times: int = 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TelegramApiServer:
    """A Bot API on 127.0.0.1: ``url`` is its base (``api_url``); ``calls`` is what it received."""

    def __init__(self, token: str):
        self.token = token
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.failures: list[Failure] = []
        self.down_status: int | None = None  # every method but getUpdates answers this while set
        self.cond = threading.Condition()
        self.closing = threading.Event()
        self._update_id = 100
        self._message_id = 1000
        self.messages: dict[tuple[str, int], dict[str, Any]] = {}  # (chat id, message id) -> the bot's message
        self.httpd = _Server(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> TelegramApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.closing.set()
        with self.cond:
            self.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- scripting --------------------------------------------------------------------------------

    def fail(self, method: str = "*", status: int = 500, times: int = 1, retry_after: int | None = None,
             hang: float = 0.0) -> None:
        with self.cond:
            self.failures.append(Failure(method, status, retry_after, hang, times))

    def set_down(self, status: int | None) -> None:
        with self.cond:
            self.down_status = status
            self.cond.notify_all()

    def push_message(self, user_id: int, chat_id: int, text: str, *, age: float = 0.0,
                     chat_type: str = "group") -> None:
        self._push({"message": {"message_id": self._next_message(), "date": int(time.time() - age), "text": text,
                                "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
                                "chat": {"id": chat_id, "type": chat_type}}})

    def push_button(self, user_id: int, chat_id: int, data: str, message_id: int) -> None:
        self._push({"callback_query": {"id": f"cb{self._update_id}", "data": data,
                                       "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
                                       "message": {"message_id": message_id,
                                                   "chat": {"id": chat_id, "type": "group"}}}})

    def delete_message(self, chat_id: Any, message_id: int) -> None:
        """A user deletes one of the bot's messages in the chat: editing it is then "not found"."""
        with self.cond:
            self.messages.pop((str(chat_id), int(message_id)), None)

    def _push(self, update: dict[str, Any]) -> None:
        with self.cond:
            self._update_id += 1
            self.updates.append({"update_id": self._update_id, **update})
            self.cond.notify_all()

    def _next_message(self) -> int:
        self._message_id += 1
        return self._message_id

    # -- reading ----------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every request); its value, or AssertionError."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; calls: "
                                         f"{[(c.method, c.status) for c in self.calls][-20:]}")
                self.cond.wait(left)

    def delivered(self, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.status == 200 and c.method != "getUpdates"
                and (method is None or c.method == method)]

    def texts(self) -> list[str]:
        """Visible text of every delivered message (and photo caption), in order."""
        out = []
        for call in self.delivered():
            if call.method == "sendMessage":
                raw = call.params.get("text", "")
                out.append(visible_text(raw) if call.params.get("parse_mode") == "HTML" else raw)
            elif call.method == "sendPhoto":
                out.append(visible_text(call.params.get("caption", "")))
        return out

    # -- the HTTP side ----------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: the path holds the token
                pass

            def do_POST(self) -> None:
                status, body = server._answer(self)
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler

    def _answer(self, request: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]]:
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", request.path)
        if not match:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        token, method = match.groups()
        params, files = self._parse(request)
        if token != self.token:
            self._record(Call(time.time(), method, params, files, 401))
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        failure = self._take_failure(method)
        if failure is not None and failure.hang:
            self.closing.wait(failure.hang)  # the client gave up long ago: what it missed is not delivered
        if failure is not None:
            self._record(Call(time.time(), method, params, files, failure.status))
            body: dict[str, Any] = {"ok": False, "error_code": failure.status,
                                    "description": _reason(failure.status, failure.retry_after)}
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
            return failure.status, body
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        try:
            result = self._method(method, params, files)
        except BadEntities as exc:
            self._record(Call(time.time(), method, params, files, 400))
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: can't parse entities: {exc}"}
        except ValueError as exc:
            self._record(Call(time.time(), method, params, files, 400))
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}
        self._record(Call(time.time(), method, params, files, 200))
        return 200, {"ok": True, "result": result}

    def _take_failure(self, method: str) -> Failure | None:
        with self.cond:
            if self.down_status is not None and method != "getUpdates":
                return Failure(method, self.down_status)
            for failure in self.failures:
                if failure.method == method or (failure.method == "*" and method != "getUpdates"):
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                    return failure
        return None

    def _record(self, call: Call) -> None:
        with self.cond:
            self.calls.append(call)
            self.cond.notify_all()

    def _parse(self, request: BaseHTTPRequestHandler) -> tuple[dict[str, Any], dict[str, bytes]]:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        kind = request.headers.get("Content-Type", "")
        if kind.startswith("application/json"):
            return (json.loads(raw) if raw else {}), {}
        if kind.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.default).parsebytes(
                f"Content-Type: {kind}\r\n\r\n".encode() + raw)
            params, files = {}, {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                if part.get_filename():
                    files[name] = payload
                else:
                    params[name] = payload.decode()
            return params, files
        return dict(parse_qsl(raw.decode())), {}

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        with self.cond:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and not self.closing.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return list(self.updates)

    def _message(self, chat_id: Any, text: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.cond:
            message = {"message_id": self._next_message(), "date": int(time.time()), "chat": {"id": chat_id},
                       "text": text}
            self.messages[(str(chat_id), message["message_id"])] = {**message, "_sent": _content(params or {})}
            return message

    def _edit(self, params: dict[str, Any], shown: str) -> dict[str, Any]:
        """editMessageText on a message the bot sent: the edited Message, or the errors Telegram answers."""
        with self.cond:
            try:
                key = (str(params["chat_id"]), int(params.get("message_id") or 0))
            except (TypeError, ValueError):
                raise ValueError("message identifier is not specified") from None
            message = self.messages.get(key)
            if message is None:
                raise ValueError("message to edit not found")
            if message["_sent"] == _content(params):
                raise ValueError("message is not modified: specified new message content and reply markup are "
                                 "exactly the same as a current content and reply markup of the message")
            message.update(text=shown, edit_date=int(time.time()), _sent=_content(params))
            return {k: v for k, v in message.items() if not k.startswith("_")}

    def _method(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if method == "getMe":
            return {"id": 4242, "is_bot": True, "first_name": "gobot test", "username": "gobot_test_bot"}
        if method in ("sendMessage", "editMessageText"):
            if not params.get("chat_id"):
                raise ValueError("chat_id is empty")
            text = params.get("text", "")
            shown = visible_text(text) if params.get("parse_mode") == "HTML" else text
            if not shown.strip():
                raise ValueError("message text is empty")
            if utf16_len(shown) > 4096:
                raise ValueError("message is too long")
            if method == "editMessageText":
                return self._edit(params, shown)
            return self._message(params["chat_id"], shown, params)
        if method == "sendPhoto":
            photo = files.get("photo", b"")
            if not photo.startswith(b"\x89PNG\r\n\x1a\n"):
                raise ValueError("wrong type of the web page content")
            caption = (visible_text(params.get("caption", "")) if params.get("parse_mode") == "HTML"
                       else params.get("caption", ""))
            if utf16_len(caption) > 1024:
                raise ValueError("message caption is too long")
            return self._message(params.get("chat_id"), caption)
        if method == "answerCallbackQuery":
            return True
        raise ValueError(f"method {method} not found")


def _content(params: dict[str, Any]) -> tuple:
    """What "message is not modified" compares: the text as parsed, and the buttons."""
    return params.get("text", ""), params.get("parse_mode"), json.dumps(params.get("reply_markup"), sort_keys=True)


def _reason(status: int, retry_after: int | None) -> str:
    if status == 429:
        return f"Too Many Requests: retry after {retry_after}"
    return {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden: bot was blocked by the user",
            502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Internal Server Error")


class WebhookServer:
    """Records JSON POSTs on 127.0.0.1; ``fail(status, times, retry_after)`` scripts failures."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, str, Any, int]] = []  # time, path, body, status answered
        self.failures: list[list] = []  # [status, times, retry_after]
        self.cond = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                status, retry_after = 200, None
                with server.cond:
                    if server.failures:
                        status, _, retry_after = server.failures[0]
                        server.failures[0][1] -= 1
                        if server.failures[0][1] <= 0:
                            server.failures.pop(0)
                    server.posts.append((time.time(), self.path, body, status))
                    server.cond.notify_all()
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", str(retry_after))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/T000/B000/secretpart"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> WebhookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, status: int, times: int = 1, retry_after: int | None = None) -> None:
        with self.cond:
            self.failures.append([status, times, retry_after])

    def delivered(self) -> list[Any]:
        return [body for _, _, body, status in self.posts if status == 200]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; posts: {len(self.posts)}")
                self.cond.wait(left)
