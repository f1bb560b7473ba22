"""moto's server (DynamoDB, SQS, S3, IoT, SSM, ...) on a free local port, in a thread or a process."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

from hostrelay_local.broker import free_port

logger = logging.getLogger(__name__)

MotoMode = Literal["process", "thread"]


class MotoFailed(RuntimeError):
    """moto's server did not come up."""


class MotoServer:
    """moto's HTTP server; every AWS service on one endpoint, state in memory.

    `process` (default) runs `moto.server` as a child process so its request handling does not
    compete for this process's GIL with the functions it serves; `thread` runs it in-process.
    """

    def __init__(self, mode: MotoMode = "process", log_path: Path | None = None) -> None:
        self.mode = mode
        self.log_path = log_path
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._threaded: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        if self.mode == "thread":
            self._start_thread()
            return
        for _ in range(3):
            self.port = free_port()
            log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
            try:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
                )
            finally:
                if self.log_path and not isinstance(log, int):
                    log.close()
            if self._wait_listening(timeout_s):
                return
            self.stop()
        raise MotoFailed(f"moto server did not start (log: {self.log_path})")

    def _start_thread(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._threaded = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._threaded.start()
        self.port = int(self._threaded.get_host_and_port()[1])

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
        threaded, self._threaded = self._threaded, None
        if threaded is not None:
            threaded.stop()
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
