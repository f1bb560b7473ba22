"""What the API fakes share: HTTPS on a free port, JSON answers, the request log, throttling on
demand and the lock their handlers hold while they read or change the state."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

from tests.fakes.tls import HttpsFake


@dataclass(kw_only=True)
class FakeApiState:
    """The part of a fake's state every fake has; tests arrange throttling through it."""

    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    throttle_next: int = 0  # the next n requests are answered 429 with Retry-After
    retry_after: str = "1"
    throttled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def throttle_now(self) -> bool:
        """Whether this request is one of the throttled ones (counts it)."""
        if self.throttle_next <= 0:
            return False
        self.throttle_next -= 1
        self.throttled += 1
        return True


class JsonHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 (as the real APIs serve), quiet, JSON in and out."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle on, the body waits for the client's
    # delayed ACK of the headers (~40 ms a request on Linux), which made paged reads slow.
    disable_nagle_algorithm = True
    content_type = "application/json"  # of JSON answers (Azure adds its charset)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def base_url(self) -> str:
        """This fake's origin, for the links it answers with (paging)."""
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def path_and_query(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        return parts.path, parse_qs(parts.query)

    def payload(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """`body` as JSON (None: an empty answer, e.g. 204)."""
        data = b"" if body is None else json.dumps(body).encode()
        self._send_bytes(status, data, headers, self.content_type if body is not None else None)

    def send_json_lines(self, items: Iterable[Any]) -> None:
        """A stream of JSON objects, one a line (a Kubernetes watch), ended by the answer."""
        data = b"".join(json.dumps(item).encode() + b"\n" for item in items)
        self._send_bytes(200, data, None, self.content_type)

    def _send_bytes(
        self, status: int, data: bytes, headers: dict[str, str] | None, content_type: str | None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


StateT = TypeVar("StateT", bound=FakeApiState)
ServerT = TypeVar("ServerT", bound="FakeServer[Any]")


class FakeServer(Generic[StateT]):
    """A fake API: `state` (what tests arrange and inspect) served by `handler` over HTTPS on
    127.0.0.1 with a test CA (`ca_file`)."""

    def __init__(self, state: StateT, handler: type[BaseHTTPRequestHandler], directory: Path):
        self.state = state
        self._https = HttpsFake(handler, directory)
        self.base_url = self._https.base_url
        self.ca_file = self._https.ca_file

    def start(self: ServerT) -> ServerT:
        self._https.start()
        return self

    def stop(self) -> None:
        self._https.stop()
