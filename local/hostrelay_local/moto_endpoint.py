"""moto's server (DynamoDB, SQS, S3, IoT, SSM, ...) on a free local port, as a thread or process."""

from __future__ import annotations

import argparse
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from hostrelay_local.broker import free_port

logger = logging.getLogger(__name__)

MotoMode = Literal["process", "thread"]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class MotoFailed(RuntimeError):
    """moto's server did not come up."""


class _CountingInput:
    """wsgi.input that remembers how much of the request body the app read."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self._stream.read(size) if size else b""
        self.remaining -= len(data)
        return bytes(data)

    def readline(self, size: int = -1) -> bytes:
        limit = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self._stream.readline(limit) if limit else b""
        self.remaining -= len(data)
        return bytes(data)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def drain(self) -> None:
        while self.remaining > 0 and self.read(64 * 1024):
            pass


class LocalMotoApp:
    """moto's WSGI app as the local stack serves it.

    One DynamoDB request at a time: moto applies a conditional write as check-then-update
    without a lock, so two concurrent UpdateItems with the same condition could both succeed;
    DynamoDB never lets that happen and the control plane's optimistic versioning relies on it.
    The request body is always read to its end, so the connection can serve the next request.
    """

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._dynamodb = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body: _CountingInput | None = None
        if not environ.get("wsgi.input_terminated"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = _CountingInput(environ["wsgi.input"], length)
            environ["wsgi.input"] = body
        try:
            if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
                with self._dynamodb:
                    return list(self._app(environ, start_response))
            return list(self._app(environ, start_response))
        finally:
            if body is not None:
                body.drain()


def make_moto_server(host: str, port: int) -> Any:
    """A threaded werkzeug server for moto's app: keep-alive, TCP_NODELAY, the DynamoDB lock."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class _RequestHandler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes; never let Nagle hold the body.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def send_header(self, keyword: str, value: str) -> None:
            # werkzeug closes every connection; LocalMotoApp reads each body to its end, so
            # keep-alive is safe and spares every AWS call a new connection and thread.
            if keyword.lower() == "connection" and value.lower() == "close":
                return
            super().send_header(keyword, value)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return

    app = LocalMotoApp(DomainDispatcherApplication(create_backend_app))
    return make_server(host, port, app, threaded=True, request_handler=_RequestHandler)


class MotoServer:
    """moto's HTTP server; every AWS service on one endpoint, state in memory.

    `process` (default) runs it as a child process so its request handling does not compete
    for this process's GIL with the functions it serves; `thread` runs it in-process.
    """

    def __init__(self, mode: MotoMode = "process", log_path: Path | None = None) -> None:
        self.mode = mode
        self.log_path = log_path
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        if self.mode == "thread":
            self._server = make_moto_server("127.0.0.1", 0)
            self.port = int(self._server.server_address[1])
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="moto", daemon=True
            )
            self._thread.start()
            return
        for _ in range(3):
            self.port = free_port()
            log = self.log_path.open("ab") if self.log_path else None
            try:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", __name__, "--port", str(self.port)],
                    stdin=subprocess.DEVNULL,
                    stdout=log or subprocess.DEVNULL,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches the stack, which stops it in order
                )
            finally:
                if log is not None:
                    log.close()
            if self._wait_listening(timeout_s):
                return
            self.stop()
        raise MotoFailed(f"moto server did not start (log: {self.log_path})")

    def _wait_listening(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server; harmless when it is not running. Its state is gone afterwards."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> None:
    """Serve moto on 127.0.0.1:PORT until terminated (the `process` mode's child)."""
    parser = argparse.ArgumentParser(description="moto server for the hostrelay local stack")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    make_moto_server("127.0.0.1", args.port).serve_forever()


if __name__ == "__main__":
    main()
