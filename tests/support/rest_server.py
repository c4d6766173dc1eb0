"""The test HTTP server of http_server.py, answering every method and keeping request bodies (for REST clients)."""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.http_server import HttpTestServer, Reply, Request


@dataclass(frozen=True)
class BodyRequest(Request):
    """A request with its body."""

    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, bytes]:
        """The fields of a multipart/form-data body."""
        head = f"Content-Type: {self.header('content-type')}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        fields: dict[str, bytes] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            fields[str(name)] = payload if isinstance(payload, bytes) else b""
        return fields


class RestTestServer(HttpTestServer):
    """Routes by path for GET, POST, PUT, PATCH and DELETE; `requests` holds BodyRequest objects."""

    def start(self) -> None:
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                length = int(headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = BodyRequest(self.command, parts.path, query, headers, self.path, body)
                try:
                    reply = outer._handle(request)
                except Exception as exc:  # a broken test handler answers 599 rather than hanging the client
                    reply = Reply(599, {"error": repr(exc)})
                encoded = reply.encoded()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.headers.get("Content-Type", "application/json"))
                for name, value in reply.headers.items():
                    if name.lower() != "content-type":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="rest-test-server", daemon=True)
        self._thread.start()


@contextlib.contextmanager
def rest_server() -> Iterator[RestTestServer]:
    """A started RestTestServer, stopped on exit."""
    server = RestTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
