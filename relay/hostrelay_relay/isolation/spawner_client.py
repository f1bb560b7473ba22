"""The relay's side of the spawner: start it once, hand it each job's spec and pipes."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass

from hostrelay_relay.isolation.spawner import ACCEPTED, READY, REQUEST
from hostrelay_relay.isolation.spec import SandboxSpec

logger = logging.getLogger(__name__)

# The spawner answers before it forks, in microseconds when the host is idle; a spawner this
# late is treated as hung and replaced.
_ANSWER_TIMEOUT_S = 10.0
# Its start (an interpreter and the isolation code) is waited for apart, and longer: a busy
# host may take seconds, and a request must not be charged for it.
_START_TIMEOUT_S = 60.0


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
        """Start the job; returns once the spawner accepted it (it may still be setting up).
        The caller keeps and closes its stdio fds; the spawner got copies."""
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
        """Hand the request over and wait for the spawner's answer.

        A spawner that dies before answering forked nothing for this request, so it goes once
        more to a fresh spawner; one that answered owns the job, whatever happens to it next.
        """
        with self._lock:
            for attempt in (1, 2):
                answer = self._request_locked(self._channel or self._start_locked(), fds)
                if answer == ACCEPTED:
                    return
                if answer:
                    raise SpawnerUnavailable("the spawner rejected the job's request")
                logger.warning(
                    "exec spawner lost before accepting a job", extra={"attempt": attempt}
                )
            raise SpawnerUnavailable("spawner unreachable: it died twice before accepting the job")

    def _request_locked(self, channel: socket.socket, fds: list[int]) -> bytes:
        """The spawner's answer to one request; empty when it died or hung without one."""
        try:
            socket.send_fds(channel, [REQUEST], fds)
            answer = channel.recv(64)
        except (ConnectionError, TimeoutError):
            answer = b""
        return answer or self._answer_of_lost_spawner_locked(channel)

    def _answer_of_lost_spawner_locked(self, channel: socket.socket) -> bytes:
        """Make sure the spawner is dead, then return the answer it sent before dying, if any.

        Once it is reaped, any answer it sent is queued on the channel: without one, it cannot
        have forked a supervisor for the request.
        """
        self._kill_locked()  # EOF means it is dying already; a timeout, that it is hung
        channel.setblocking(False)
        answer = b""
        for _ in range(2):  # a reset is reported once, ahead of any queued message
            try:
                answer = channel.recv(64)
                break
            except ConnectionResetError:
                continue
            except BlockingIOError:  # a supervisor forked earlier may still hold its end
                break
        channel.close()
        self._channel = None
        return answer

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
        relay_end.settimeout(_START_TIMEOUT_S)
        try:
            ready = relay_end.recv(64)
        except (ConnectionError, TimeoutError):
            ready = b""
        if ready != READY:
            relay_end.close()
            self._kill_locked()
            raise SpawnerUnavailable(
                f"the spawner exited or was not ready within {_START_TIMEOUT_S:g} s"
                if not ready
                else f"the spawner sent {ready!r} instead of {READY!r}"
            )
        relay_end.settimeout(_ANSWER_TIMEOUT_S)
        self._channel = relay_end
        return relay_end

    def _kill_locked(self) -> None:
        """Kill the spawner, if any, and reap it."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def _stop_locked(self) -> None:
        if self._channel is not None:
            self._channel.close()  # EOF: the spawner exits
            self._channel = None
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._kill_locked()
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
