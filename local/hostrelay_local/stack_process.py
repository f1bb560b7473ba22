"""Runs `hostrelay-local run` as a child process and reads where its API is (tests, benches)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from hostrelay_local.stack import STATE_FILE, TOKEN_FILE


class StackProcessFailed(RuntimeError):
    """The stack process exited or did not become ready; the message quotes its log."""


class StackProcess:
    """`python -m hostrelay_local.stack` with its state under `state_dir`, on a free API port."""

    def __init__(
        self,
        state_dir: Path,
        *,
        api_port: int = 0,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.log_path = state_dir / "stack.log"
        self._api_port = api_port
        self._extra_args = extra_args or []
        self._env = env or {}
        self._process: subprocess.Popen[bytes] | None = None
        self.api_url = ""
        self.admin_token = ""
        self.state: dict[str, object] = {}

    def start(self, timeout_s: float = 120.0) -> StackProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "HOSTRELAY_STATE_DIR": str(self.state_dir),
                "HOSTRELAY_PORT": str(self._api_port),
                **self._env,
            }
        )
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "hostrelay_local.stack", "run", *self._extra_args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        state_path = self.state_dir / STATE_FILE
        while not state_path.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise StackProcessFailed(f"the stack did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        self.state = self.read_state()
        self.api_url = str(self.state["api_url"])
        self.admin_token = (self.state_dir / TOKEN_FILE).read_text().strip()
        return self

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def read_state(self) -> dict[str, object]:
        """stack.json as the stack last wrote it (it rewrites it when it restarts a part)."""
        state: dict[str, object] = json.loads((self.state_dir / STATE_FILE).read_text())
        return state

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (a clean shutdown), SIGKILL after timeout_s; returns the exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> StackProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
