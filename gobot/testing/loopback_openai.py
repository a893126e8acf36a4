"""A loopback OpenAI-compatible chat completions server, for testing plugins that call a model.

It listens on 127.0.0.1 (a random port), records every request, checks that each image it is
sent is a real PNG (signature, chunks, CRCs, pixel data), and answers with what the test scripted:
a JSON answer, a refusal, a cut-off answer, an HTTP error (429 with ``retry-after-ms``, 500, ...),
or a reply slower than the client's timeout. Standard library only. ``gobot.testing`` wraps it in
the ``loopback_openai`` fixture::

    def test_hold_on_a_500(loopback_openai):
        loopback_openai.queue(Reply.error(500), Reply.error(500), Reply.error(500))
        ...  # point the plugin's base_url at loopback_openai.base_url
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class PngImage:
    """A decoded 8-bit PNG: its size and its pixels, one ``bytes`` row per line (no filter byte)."""

    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, ...]:
        start = x * self.channels
        return tuple(self.rows[y][start : start + self.channels])

    def colours(self, step: int = 4) -> set[tuple[int, ...]]:
        """Distinct colours on a grid of every ``step``-th pixel (a blank image has one)."""
        return {self.pixel(x, y) for y in range(0, self.height, step) for x in range(0, self.width, step)}

    def share_of(self, colour: tuple[int, ...], step: int = 2) -> float:
        """Fraction of sampled pixels that have exactly ``colour``."""
        samples = [(x, y) for y in range(0, self.height, step) for x in range(0, self.width, step)]
        return sum(1 for x, y in samples if self.pixel(x, y) == colour) / len(samples)


def decode_png(data: bytes, pixels: bool = True) -> PngImage:
    """Decode a non-interlaced 8-bit greyscale, RGB or RGBA PNG; ValueError naming what is wrong.

    With ``pixels=False`` everything is checked (chunks, CRCs, the compressed data and its length)
    but the rows are not unfiltered (``rows`` stays empty): fast enough for every request.
    """
    if data[:8] != PNG_SIGNATURE:
        raise ValueError("not a PNG: bad signature")
    pos, header, idat = 8, None, bytearray()
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("truncated PNG chunk header")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"PNG chunk {kind!r}: CRC mismatch")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, colour_type, _compression, _filter, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour_type)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"unsupported PNG (bit depth {depth}, colour type {colour_type}, interlace {interlace})")
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    if len(raw) != height * (stride + 1):
        raise ValueError("PNG pixel data has the wrong length")
    rows: list[bytes] = []
    if not pixels:
        return PngImage(width, height, channels, rows)
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            upper_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - upper_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else upper_left
                line[i] = (line[i] + predictor) & 0xFF
            elif kind != 0:
                raise ValueError(f"unknown PNG filter {kind}")
        rows.append(bytes(line))
        previous = line
    return PngImage(width, height, channels, rows)


@dataclass
class Reply:
    """One scripted answer. Build with ``Reply.answer``, ``Reply.error`` or ``Reply.slow``."""

    status: int = 200
    content: str | None = ""
    refusal: str | None = None
    finish_reason: str = "stop"
    usage: tuple[int, int] = (1200, 80)
    message: str = ""  # the error message of a non-200 reply
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def answer(cls, content: str | dict[str, Any], *, finish_reason: str = "stop",
               usage: tuple[int, int] = (1200, 80)) -> Reply:
        text = content if isinstance(content, str) else json.dumps(content)
        return cls(content=text, finish_reason=finish_reason, usage=usage)

    @classmethod
    def refused(cls, refusal: str = "I can't help with that.") -> Reply:
        return cls(content=None, refusal=refusal)

    @classmethod
    def error(cls, status: int, message: str = "", retry_after_ms: int | None = 10) -> Reply:
        headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
        return cls(status=status, message=message or f"scripted HTTP {status}", headers=headers)

    @classmethod
    def slow(cls, seconds: float, content: str | dict[str, Any] = "{}") -> Reply:
        """An answer that comes after ``seconds`` (or when the server closes, whichever is first)."""
        reply = cls.answer(content)
        reply.delay = seconds
        return reply


@dataclass
class Received:
    """One request as the server saw it."""

    path: str
    body: dict[str, Any]
    images: list[PngImage]
    authorization: str

    @property
    def model(self) -> str:
        return self.body.get("model", "")

    @property
    def texts(self) -> list[str]:
        parts = []
        for message in self.body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            else:
                parts.extend(part.get("text", "") for part in content or [] if part.get("type") == "text")
        return parts


class LoopbackOpenAI:
    """The server. ``base_url`` goes into the client's config; ``queue`` scripts the next replies;
    ``default`` answers when the queue is empty; ``received`` lists what came in."""

    def __init__(self, default: Reply | None = None):
        self.default = default or Reply.answer({"action": "HOLD", "confidence": 0.5, "entry": None, "stop_loss": None,
                                                "take_profit": None, "timeframes": [], "rationale": "nothing to do"})
        self.received: list[Received] = []
        self.rejected: list[str] = []  # requests refused because their images were not real PNGs
        self.replier: Callable[[Received], Reply] | None = None
        self._queue: list[Reply] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._arrived = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-openai", daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` requests arrived (True) or ``timeout`` passed (False)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.received) >= count, timeout)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackOpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next(self, received: Received) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
        return self.replier(received) if self.replier else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                    return
                try:
                    images = _images(body)
                except ValueError as exc:
                    with server._lock:
                        server.rejected.append(str(exc))
                    self._send(400, {"error": {"message": f"bad image: {exc}", "type": "invalid_request_error"}})
                    return
                received = Received(self.path, body, images, self.headers.get("Authorization", ""))
                with server._arrived:
                    server.received.append(received)
                    server._arrived.notify_all()
                reply = server._next(received)
                if reply.delay and server._closing.wait(reply.delay):
                    return  # the server is closing: drop the slow answer
                try:
                    if reply.status != 200:
                        kind = ("rate_limit_error" if reply.status == 429
                                else "server_error" if reply.status >= 500 else "invalid_request_error")
                        self._send(reply.status, {"error": {"message": reply.message, "type": kind, "code": None}},
                                   reply.headers)
                        return
                    self._send(200, _completion(body.get("model", "model"), reply))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

        return Handler


def _images(body: dict[str, Any]) -> list[PngImage]:
    images = []
    for message in body.get("messages", []):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if part.get("type") != "image_url":
                continue
            url = part.get("image_url", {}).get("url", "")
            prefix = "data:image/png;base64,"
            if not url.startswith(prefix):
                raise ValueError(f"expected a data:image/png;base64 URL, got {url[:40]!r}")
            images.append(decode_png(base64.b64decode(url[len(prefix) :], validate=True), pixels=False))
    return images


def _completion(model: str, reply: Reply) -> dict[str, Any]:
    prompt, completion = reply.usage
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content, "refusal": reply.refusal},
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }
