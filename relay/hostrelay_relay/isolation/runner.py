"""Run one isolated command to the end: cgroup, launch, I/O, timeout, cancel and cleanup."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from hostrelay_relay.handlers.base import OutputStream
from hostrelay_relay.isolation.cgroup_common import JobCgroup
from hostrelay_relay.isolation.cgroups import create_job_cgroup
from hostrelay_relay.isolation.output_pump import OutputPump, OutputSummary
from hostrelay_relay.isolation.spawner_client import LaunchedJob, default_spawner
from hostrelay_relay.isolation.spec import ResourceLimits, SandboxSpec

logger = logging.getLogger(__name__)

_READ_BYTES = 256 * 1024
_PIPE_BYTES = 1024 * 1024
_CANCEL_POLL_S = 0.05
# After the supervisor reported, the pipes normally hit EOF at once (every process of the
# job is dead); this only bounds the wait if some unrelated process inherited a pipe end.
_EOF_AFTER_EXIT_S = 2.0
_EMPTY_CGROUP_TIMEOUT_S = 10.0
# A job killed this long ago that still has not reported its exit is given up on.
_GIVE_UP_AFTER_KILL_S = 10.0

StopReason = Literal["timeout", "canceled"]


@dataclass(frozen=True)
class RunRequest:
    spec: SandboxSpec
    limits: ResourceLimits
    cgroup_root: Path
    cgroup_name: str
    deadline: float  # time.monotonic() at which the job is killed
    kill_grace_s: float  # between SIGTERM and SIGKILL on cancel
    max_output_bytes: int
    stdin: bytes = b""


@dataclass(frozen=True)
class SetupFailure:
    step: str  # "exec" when execve failed, else the sandbox step or "supervisor"
    message: str


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int | None  # None when killed by a signal or never started
    signal: int | None
    stopped: StopReason | None  # set when the relay killed the job
    failure: SetupFailure | None
    max_rss_kb: int  # peak memory of the job's cgroup, else its largest process's max RSS
    cpu_s: float  # CPU of every process of the job (cgroup), else of those PID 1 reaped
    wall_s: float
    oom_kills: int
    output: OutputSummary


@dataclass(frozen=True)
class _ExitReport:
    status: int
    cpu_s: float
    max_rss_kb: int


class _Pipes:
    """The three stdio pipes; the relay keeps one end of each."""

    def __init__(self) -> None:
        self.stdin_r, self.stdin_w = os.pipe()
        self.stdout_r, self.stdout_w = os.pipe()
        self.stderr_r, self.stderr_w = os.pipe()
        for fd in (self.stdout_w, self.stderr_w):
            # Above fs.pipe-max-size the call fails: the default size only costs some speed.
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        os.set_blocking(self.stdin_w, False)

    def close_relay_ends(self) -> None:
        for fd in (self.stdin_w, self.stdout_r, self.stderr_r):
            os.close(fd)

    def close_child_ends(self) -> None:
        for fd in (self.stdin_r, self.stdout_w, self.stderr_w):
            os.close(fd)


def run_isolated(
    request: RunRequest,
    emit: Callable[[OutputStream, bytes], None],
    cancel_event: threading.Event,
) -> RunOutcome:
    """Run the command; returns once every process of the job is gone and the cgroup removed."""
    cgroup = create_job_cgroup(request.cgroup_root, request.cgroup_name, request.limits)
    try:
        started = time.monotonic()
        session = _start(request, cgroup, emit, cancel_event)
        try:
            session.pump()
        finally:
            session.stop()
        wall_s = time.monotonic() - started
        cgroup.wait_empty(_EMPTY_CGROUP_TIMEOUT_S)
        usage = cgroup.usage()
    finally:
        if cgroup.wait_empty(_EMPTY_CGROUP_TIMEOUT_S):
            cgroup.remove()
        else:
            logger.error("exec cgroup did not empty", extra={"job": request.cgroup_name})
    report = session.exit_report
    status = report.status if report else None
    cpu_s = usage.cpu_s if usage.cpu_s is not None else (report.cpu_s if report else 0.0)
    if usage.memory_peak_bytes is not None:
        max_rss_kb = usage.memory_peak_bytes // 1024
    else:
        max_rss_kb = report.max_rss_kb if report else 0
    return RunOutcome(
        exit_code=os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None,
        signal=os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None,
        stopped=session.stopped,
        failure=session.failure,
        max_rss_kb=max_rss_kb,
        cpu_s=round(cpu_s, 6),
        wall_s=round(wall_s, 6),
        oom_kills=usage.oom_kills,
        output=session.output.summary(),
    )


def _start(
    request: RunRequest,
    cgroup: JobCgroup,
    emit: Callable[[OutputStream, bytes], None],
    cancel_event: threading.Event,
) -> _Session:
    spec = replace(request.spec, cgroup_join_files=cgroup.join_files)
    pipes = _Pipes()
    try:
        launched = default_spawner().launch(spec, pipes.stdin_r, pipes.stdout_w, pipes.stderr_w)
    except BaseException:
        pipes.close_relay_ends()
        raise
    finally:
        pipes.close_child_ends()
    return _Session(
        request=request,
        launched=launched,
        pipes=pipes,
        cgroup=cgroup,
        emit=emit,
        cancel_event=cancel_event,
    )


class _Session:
    """The relay's side of one running job: one thread polls every pipe of the job."""

    def __init__(
        self,
        *,
        request: RunRequest,
        launched: LaunchedJob,
        pipes: _Pipes,
        cgroup: JobCgroup,
        emit: Callable[[OutputStream, bytes], None],
        cancel_event: threading.Event,
    ) -> None:
        self.request = request
        self.launched = launched
        self.cgroup = cgroup
        self.cancel_event = cancel_event
        self.output = OutputPump(emit, request.max_output_bytes)
        self.stopped: StopReason | None = None
        self.failure: SetupFailure | None = None
        self.exit_report: _ExitReport | None = None
        self._kill_at: float | None = None
        self._killed_at: float | None = None
        self._report_buffer = bytearray()
        self._ended_at: float | None = None  # when the exit report came (or the pipe closed)
        self._stdin = memoryview(request.stdin)
        self._streams: dict[int, OutputStream] = {
            pipes.stdout_r: "stdout",
            pipes.stderr_r: "stderr",
        }
        self._stdin_fd: int | None = pipes.stdin_w
        self._poller = select.poll()
        for fd in self._streams:
            self._poller.register(fd, select.POLLIN)
        self._poller.register(launched.report_fd, select.POLLIN)
        if self._stdin:
            self._poller.register(pipes.stdin_w, select.POLLOUT)
        else:
            self._close_stdin()

    def pump(self) -> None:
        """Forward output until the job has exited and both output pipes are at EOF."""
        while self._streams or self._ended_at is None:
            now = time.monotonic()
            self._enforce_deadline_and_cancel(now)
            if self._ended_at is not None and now > self._ended_at + _EOF_AFTER_EXIT_S:
                logger.warning(
                    "exec output pipe open after exit", extra={"job": self.request.cgroup_name}
                )
                break
            if self._killed_at is not None and now > self._killed_at + _GIVE_UP_AFTER_KILL_S:
                logger.error(
                    "exec job did not end after kill", extra={"job": self.request.cgroup_name}
                )
                self.failure = self.failure or SetupFailure(
                    "supervisor", "job did not end after SIGKILL"
                )
                break
            for fd, events in self._poller.poll(self._poll_timeout_ms(now)):
                self._handle(fd, events)
            self.output.flush_if_due(time.monotonic())
        self.output.flush()

    def stop(self) -> None:
        """Make sure the job is dead (after an error in pump too) and close the relay's pipes."""
        if self._ended_at is None:
            self._kill()
        for fd in self._streams:
            os.close(fd)
        self._streams.clear()
        self._close_stdin()
        for fd in (self.launched.report_fd, self.launched.control_fd):
            os.close(fd)

    def _enforce_deadline_and_cancel(self, now: float) -> None:
        if self.exit_report is None and self.stopped is None:
            # The deadline first: a relay core may also set cancel_event when it passes.
            if now >= self.request.deadline:
                self.stopped = "timeout"
                self._kill_at = now
            elif self.cancel_event.is_set():
                self.stopped = "canceled"
                # PID 1 of the namespace only gets SIGTERM if it handles it; the rest do.
                self.cgroup.signal_all(signal.SIGTERM)
                self._kill_at = now + self.request.kill_grace_s
        if self._kill_at is not None and self._killed_at is None and now >= self._kill_at:
            self._kill()

    def _kill(self) -> None:
        """SIGKILL the job's PID 1, which takes the whole PID namespace with it."""
        self._killed_at = time.monotonic()
        with contextlib.suppress(OSError):  # the supervisor may be gone already
            os.write(self.launched.control_fd, b"K")
        self.cgroup.kill_all()

    def _poll_timeout_ms(self, now: float) -> int:
        waits = [_CANCEL_POLL_S]
        if self.stopped is None:
            waits.append(max(0.0, self.request.deadline - now))
        flush_in = self.output.seconds_until_flush(now)
        if flush_in is not None:
            waits.append(flush_in)
        if self._kill_at is not None and self._killed_at is None:
            waits.append(max(0.0, self._kill_at - now))
        return max(1, int(min(waits) * 1000))

    def _handle(self, fd: int, events: int) -> None:
        if fd == self._stdin_fd:
            self._write_stdin()
            return
        try:
            data = os.read(fd, _READ_BYTES)
        except BlockingIOError:
            return
        if fd == self.launched.report_fd:
            self._on_report(data)
            return
        if data:
            self.output.feed(self._streams[fd], data, time.monotonic())
        else:
            self._poller.unregister(fd)
            os.close(fd)
            del self._streams[fd]

    def _write_stdin(self) -> None:
        assert self._stdin_fd is not None
        try:
            written = os.write(self._stdin_fd, self._stdin[:_READ_BYTES])
        except BlockingIOError:
            return
        except OSError as exc:  # the job closed its stdin: the rest is not wanted
            if exc.errno not in (errno.EPIPE, errno.EBADF):
                raise
            self._close_stdin()
            return
        self._stdin = self._stdin[written:]
        if not self._stdin:
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self._stdin_fd is None:
            return
        with contextlib.suppress(KeyError):
            self._poller.unregister(self._stdin_fd)
        os.close(self._stdin_fd)
        self._stdin_fd = None

    def _on_report(self, data: bytes) -> None:
        if not data:
            self._poller.unregister(self.launched.report_fd)
            self._ended_at = time.monotonic()
            if self.failure is None:
                message = "the supervisor ended without reporting the job's exit"
                self.failure = SetupFailure("supervisor", message)
            return
        self._report_buffer += data
        while b"\n" in self._report_buffer:
            line, _, rest = bytes(self._report_buffer).partition(b"\n")
            self._report_buffer = bytearray(rest)
            self._parse_report(line.decode("utf-8", "replace"))

    def _parse_report(self, line: str) -> None:
        kind, _, rest = line.partition(" ")
        if kind == "exited":
            status, utime, stime, maxrss = rest.split(" ")
            self.exit_report = _ExitReport(
                status=int(status), cpu_s=float(utime) + float(stime), max_rss_kb=int(maxrss)
            )
            self._ended_at = time.monotonic()
            # Nothing follows the exit report; the supervisor's own exit is not waited for.
            self._poller.unregister(self.launched.report_fd)
        elif kind == "failed" and self.failure is None:
            step, _, message = rest.partition(": ")
            self.failure = SetupFailure(step, message)
