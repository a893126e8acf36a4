"""A Fear & Greed index API on 127.0.0.1 (random port), answering like alternative.me's ``/fng/``.

Source of the shapes: alternative.me, "Crypto Fear & Greed Index", section "API"
(https://alternative.me/crypto/fear-and-greed-index/), as its documented example and as quoted by
users (bt.brrd.tech "Adding External Data — Crypto Fear & Greed Index", lse-ds105 "Data Sources"):

* ``GET /fng/`` with ``limit`` (default 1; 0 = the whole history), ``format`` (``json``, the
  default, or ``csv``) and ``date_format`` (``us``, ``cn``, ``kr``, ``world``; default: unix time).
* ``{"name": "Fear and Greed Index", "data": [{"value": "40", "value_classification": "Fear",
  "timestamp": "1551157200", "time_until_update": "68499"}], "metadata": {"error": null}}`` —
  newest first, every number a JSON string, ``time_until_update`` on the newest value only,
  ``metadata.error`` a message when the request is refused.

The answer's CSV form is not served (gobot asks for JSON). Scripted failures: an HTTP status (with
``Retry-After``), a body of the test's choosing (malformed JSON, ``metadata.error`` set, a bad
value), or hanging past the client's timeout. ``requests`` records every request, so a test can
count them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

#: Date formats of ``date_format`` (alternative.me: "us" 12/31/2024, "cn"/"kr" 2024/12/31, "world" 31-12-2024).
DATE_FORMATS = {"us": "%m/%d/%Y", "cn": "%Y/%m/%d", "kr": "%Y/%m/%d", "world": "%d-%m-%Y"}


def classify(value: int) -> str:
    """The index's words for a value (alternative.me's bands)."""
    for limit, words in ((24, "Extreme Fear"), (46, "Fear"), (54, "Neutral"), (75, "Greed")):
        if value <= limit:
            return words
    return "Extreme Greed"


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 200


@dataclass
class Failure:
    status: int = 503
    retry_after: str | None = None
    body: str | None = None  # None: a short text body; else exactly this (with status 200: a bad answer)
    hang: float = 0.0  # seconds before answering (longer than the client's timeout = a timeout)
    times: int = 1


@dataclass
class Value:
    value: Any  # normally an int 0..100; anything else to test bad answers
    timestamp: int  # unix seconds
    classification: str | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@dataclass
class FearGreedServer:
    """``url`` is its ``/fng/`` address; ``values`` newest first; ``time_until_update`` goes on the newest."""

    values: list[Value] = field(default_factory=list)
    time_until_update: int | None = 68_499
    requests: list[Request] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.httpd = _Server(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{self.base}/fng/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FearGreedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- scripting --------------------------------------------------------------------------------

    def publish(self, value: Any, timestamp: int | datetime, classification: str | None = None,
                time_until_update: int | None = None) -> None:
        """A new newest value (and the seconds until the next, if given)."""
        stamp = int(timestamp.timestamp()) if isinstance(timestamp, datetime) else int(timestamp)
        with self.lock:
            self.values.insert(0, Value(value, stamp, classification))
            if time_until_update is not None:
                self.time_until_update = time_until_update

    def fail(self, status: int = 503, times: int = 1, retry_after: str | None = None, body: str | None = None,
             hang: float = 0.0) -> None:
        with self.lock:
            self.failures.append(Failure(status, retry_after, body, hang, times))

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    # -- answering --------------------------------------------------------------------------------

    def _failure(self) -> Failure | None:
        with self.lock:
            if not self.failures:
                return None
            failure = self.failures[0]
            failure.times -= 1
            if failure.times <= 0:
                self.failures.pop(0)
            return failure

    def answer(self, query: dict[str, str]) -> dict[str, Any]:
        """The documented JSON for a query."""
        try:
            limit = int(query.get("limit", "1"))
        except ValueError:
            limit = 1
        with self.lock:
            chosen = list(self.values if limit <= 0 else self.values[:limit])
            until = self.time_until_update
        date_format = DATE_FORMATS.get(query.get("date_format", ""))
        data = []
        for at, item in enumerate(chosen):
            stamp = (datetime.fromtimestamp(item.timestamp, tz=timezone.utc).strftime(date_format) if date_format
                     else str(item.timestamp))
            words = item.classification if item.classification is not None else (
                classify(int(item.value)) if isinstance(item.value, int) else "Neutral")
            entry = {"value": str(item.value), "value_classification": words, "timestamp": stamp}
            if at == 0 and until is not None:
                entry["time_until_update"] = str(until)
            data.append(entry)
        return {"name": "Fear and Greed Index", "data": data, "metadata": {"error": None}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
                raw = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                request = Request(parts.path, query, {k.lower(): v for k, v in self.headers.items()})
                with server.lock:
                    server.requests.append(request)
                if parts.path.rstrip("/") != "/fng":
                    request.status = 404
                    return self._send(404, json.dumps({"error": "not found"}))
                failure = server._failure()
                if failure is not None:
                    if failure.hang and server.closing.wait(failure.hang):
                        return None
                    request.status = failure.status
                    headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
                    body = failure.body if failure.body is not None else json.dumps({"error": "scripted failure"})
                    return self._send(failure.status, body, headers)
                return self._send(200, json.dumps(server.answer(query)))

        return Handler
