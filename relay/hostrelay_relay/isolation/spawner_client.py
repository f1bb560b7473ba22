"""The relay's side of the spawner: start it once, hand it each job's spec and pipes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass

from hostrelay_relay.isolation.spawner import REQUEST
from hostrelay_relay.isolation.spec import SandboxSpec


class SpawnerUnavailable(Exception):
    """The spawner process could not be started or reached."""


@dataclass(frozen=True)
class LaunchedJob:
    """The relay's ends of a launched job's control pipes."""

    control_fd: int  # write any byte, or close, to SIGKILL the job
    report_fd: int  # `failed <step>: <message>` and `exited ...` lines, then EOF


class Spawner:
    """Thread-safe handle on one spawner process, (re)started on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channel: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def launch(
        self, spec: SandboxSpec, stdin_fd: int, stdout_fd: int, stderr_fd: int
    ) -> LaunchedJob:
        """Start the job; returns at once (it may still be setting up). The caller keeps and
        closes its stdio fds; the spawner got copies."""
        spec_fd = os.memfd_create("hostrelay-job-spec", os.MFD_CLOEXEC)
        control_r, control_w = os.pipe()
        report_r, report_w = os.pipe()
        try:
            os.write(spec_fd, spec.to_json())
            self._send([spec_fd, stdin_fd, stdout_fd, stderr_fd, control_r, report_w])
        except BaseException:
            for fd in (control_w, report_r):
                os.close(fd)
            raise
        finally:
            for fd in (spec_fd, control_r, report_w):
                os.close(fd)
        return LaunchedJob(control_fd=control_w, report_fd=report_r)

    @property
    def pid(self) -> int | None:
        """The spawner's pid, when it has been started."""
        return None if self._process is None else self._process.pid

    def close(self) -> None:
        """Stop the spawner; jobs already running are unaffected (the relay holds their pipes)."""
        with self._lock:
            self._stop_locked()

    def _send(self, fds: list[int]) -> None:
        with self._lock:
            for attempt in (1, 2):
                channel = self._channel or self._start_locked()
                try:
                    socket.send_fds(channel, [REQUEST], fds)
                    return
                except (BrokenPipeError, ConnectionResetError) as exc:
                    self._stop_locked()  # it died: start a fresh one and try once more
                    if attempt == 2:
                        raise SpawnerUnavailable(f"spawner unreachable: {exc}") from exc

    def _start_locked(self) -> socket.socket:
        relay_end, spawner_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # -I: no current directory, PYTHONPATH or user site on sys.path of a root process.
            command = [sys.executable, "-I", "-m", "hostrelay_relay.isolation.spawner"]
            self._process = subprocess.Popen(
                [*command, str(spawner_end.fileno())],
                pass_fds=[spawner_end.fileno()],
                stdin=subprocess.DEVNULL,
                cwd="/",
                start_new_session=True,
            )
        except OSError as exc:
            relay_end.close()
            raise SpawnerUnavailable(f"cannot start the spawner: {exc}") from exc
        finally:
            spawner_end.close()
        self._channel = relay_end
        return relay_end

    def _stop_locked(self) -> None:
        if self._channel is not None:
            self._channel.close()  # EOF: the spawner exits
            self._channel = None
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


_default: Spawner | None = None
_default_lock = threading.Lock()


def default_spawner() -> Spawner:
    """The relay process's one spawner, created on first use."""
    global _default  # noqa: PLW0603 - one spawner per relay process, created lazily
    with _default_lock:
        if _default is None:
            _default = Spawner()
        return _default
