"""What the local stack's small HTTP endpoints share: the server class and its thread."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalHttpServer(ThreadingHTTPServer):
    """A threaded HTTP server on a local port.

    Replies leave at once (TCP_NODELAY: a small response is not held back waiting for the
    client's delayed ACK), and request threads never keep a stopping process alive.
    """

    daemon_threads = True
    # socketserver listens with a backlog of 5: while the accept loop waits for the GIL (moto
    # and the functions run in this process), a burst of clients (a fleet's enrollments, 16
    # at once) overflowed it, and the kernel reset or stalled the connections past the fifth.
    request_queue_size = socket.SOMAXCONN

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class LocalRequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, no access log, and replies written in one piece."""

    protocol_version = "HTTP/1.1"

    def write_reply(
        self,
        status: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        *,
        length: int | None = None,
    ) -> None:
        """`status` is the status line's tail ("200 OK"); Content-Length is set here (to
        `length` when the body is left out, as for HEAD)."""
        lines = [f"HTTP/1.1 {status}"]
        lines += [f"{name}: {value}" for name, value in headers if name.lower() != "content-length"]
        lines.append(f"Content-Length: {len(body) if length is None else length}")
        if self.close_connection:
            lines.append("Connection: close")
        # One write: header and body in a single segment, so Nagle never waits on a delayed ACK.
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def write_json(self, status: HTTPStatus, body: Any, error_type: str = "") -> None:
        """A JSON reply the way AWS APIs send one (errors name their type in a header)."""
        headers = [("Content-Type", "application/json")]
        if error_type:
            headers.append(("x-amzn-ErrorType", error_type))
        self.write_reply(f"{status.value} {status.phrase}", headers, json.dumps(body).encode())

    def log_message(self, format: str, *args: Any) -> None:
        return


class BackgroundServer:
    """Serves one LocalHttpServer from a daemon thread, from `start` until `stop`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.server: LocalHttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.server.url

    def start(self, server: LocalHttpServer) -> None:
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and close the port; harmless when not running."""
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
