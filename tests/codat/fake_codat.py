"""A real HTTP server on 127.0.0.1 that answers canned Codat-shaped responses and records hits.

Tests queue replies with `reply()`; each request takes the next one (or an empty 200 `{}`).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Hit:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def error_message(status: int, error: str, *, service: str = "PublicApi") -> dict:
    """Codat's ErrorMessage body as the docs show it."""
    return {
        "statusCode": status,
        "service": service,
        "error": error,
        "correlationId": "7eb40d2d5a2f4d5f8b3b8d2cbd3d4e8f",
        "validation": {"errors": [], "warnings": []},
        "canBeRetried": "Unknown",
        "detailedErrorCode": 0,
    }


class FakeCodat:
    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._replies: deque[Reply] = deque()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reply(
        self,
        status: int = 200,
        json_body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        if raw is None:
            raw = b"" if json_body is None else json.dumps(json_body).encode()
        all_headers = dict(headers or {})
        if json_body is not None:
            all_headers.setdefault("Content-Type", "application/json")
        self._replies.append(Reply(status, raw, all_headers, delay))

    def next_reply(self) -> Reply:
        return self._replies.popleft() if self._replies else Reply()

    def start(self) -> FakeCodat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        fake: FakeCodat = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        fake.hits.append(
            Hit(self.command, url.path, parse_qs(url.query), dict(self.headers.items()), body)
        )
        reply = fake.next_reply()
        if reply.delay:
            time.sleep(reply.delay)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass
