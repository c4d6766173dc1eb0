"""A real HTTP server for tests: ThreadingHTTPServer on 127.0.0.1 with scripted routes and a record of every request."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """A request as the server received it."""

    method: str
    path: str
    query: dict[str, str]  # last value of each parameter
    headers: dict[str, str]  # names in lower case
    target: str  # path and query string as sent

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Reply:
    """What a route answers."""

    status: int = 200  # 0: close the connection without answering
    body: Any = None  # JSON-encoded unless bytes or str
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


Handler = Callable[[Request], Reply]


class HttpTestServer:
    """Routes by path; `fail(path, ...)` queues replies answered before the route's own (to script 429s and 500s)."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[Request] = []
        self._queued: dict[str, deque[Reply]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def fail(self, path: str, status: int, *, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next `times` requests to `path` with `status` (before the route runs)."""
        with self._lock:
            queue = self._queued.setdefault(path, deque())
            for _ in range(times):
                queue.append(Reply(status, {"error": f"scripted {status}"}, dict(headers or {})))

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _handle(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            queue = self._queued.get(request.path)
            if queue:
                return queue.popleft()
        handler = self.routes.get(request.path)
        if handler is None:
            return Reply(404, {"error": f"no route {request.path}"})
        return handler(request)

    def start(self) -> None:
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request("GET", parts.path, query, headers, self.path)
                try:
                    reply = outer._handle(request)
                except Exception as exc:  # a broken test handler answers 599 rather than hanging the client
                    reply = Reply(599, {"error": repr(exc)})
                if reply.status == 0:  # drop the connection without an answer
                    self.close_connection = True
                    return
                body = reply.encoded()
                self.send_response(reply.status)
                if not any(k.lower() == "content-type" for k in reply.headers):
                    self.send_header("Content-Type", "application/json")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-test-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


@contextlib.contextmanager
def http_server() -> Iterator[HttpTestServer]:
    """A started HttpTestServer, stopped on exit."""
    server = HttpTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
