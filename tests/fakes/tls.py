"""A local HTTPS listener for fakes: a test CA signs a certificate for 127.0.0.1."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hostrelay_local.pki import LocalCA


class HttpsFake:
    """A threaded HTTPS server on 127.0.0.1 and a free port; `ca_file` is what clients trust."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], directory: Path) -> None:
        ca = LocalCA(directory / "ca")
        issued = ca.issue_server_cert(directory / "server", dns_names=("localhost",))
        self.ca_file = str(ca.cert_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(issued.cert_path, issued.key_path)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HttpsFake:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
