"""The forked side of a job launch: a supervisor that forks the job as PID 1 of new namespaces."""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import select
import signal
from typing import NoReturn

from hostrelay_relay.isolation import syscalls as sc
from hostrelay_relay.isolation.filesystem_view import build_filesystem_view
from hostrelay_relay.isolation.loopback import bring_up_loopback
from hostrelay_relay.isolation.privileges import drop_privileges
from hostrelay_relay.isolation.spec import SandboxSpec
from hostrelay_relay.isolation.syscall_filter import (
    SyscallFilter,
    UnsupportedArchitecture,
    job_filter,
)

# Processes (forked by the spawner, see spawner.py):
# - supervisor: new session, unshares the namespaces, forks the job, then waits for it. A
#   byte or EOF on the control pipe (the relay asked, or died) makes it SIGKILL the job
#   through a pidfd, which cannot hit a recycled pid. It writes one `exited ...` line to the
#   report pipe: `exited <wait status> <utime> <stime> <maxrss_kb>`.
# - job (PID 1 of the new PID namespace): joins the cgroup, builds its filesystem view, sets
#   the hostname, brings up `lo`, drops privileges and execs the command. A failure before
#   exec is reported as a `failed <step>: <message>` line and the job exits 127.
# When the job (PID 1) dies, the kernel kills everything else in its PID namespace.
# Both are forked children: they leave only through execve or os._exit, never by returning.

EXIT_SETUP_FAILED = 127
_MAX_FD = os.sysconf("SC_OPEN_MAX")
# Report lines stay below PIPE_BUF (4096), so two writers on the pipe never interleave.
_MAX_REPORT_BYTES = 4000
_RESETTABLE_SIGNALS = tuple(
    sig
    for sig in signal.valid_signals()
    if sig not in (signal.SIGKILL, signal.SIGSTOP) and (sig < 32 or sig >= signal.SIGRTMIN)
)


def _prepared_filter() -> SyscallFilter | UnsupportedArchitecture:
    try:
        return job_filter()
    except UnsupportedArchitecture as exc:  # every job fails at its "syscall filter" step
        return exc


# Built once in the spawner, before any fork: a job only makes the prctl call.
_SYSCALL_FILTER = _prepared_filter()


def namespace_flags(spec: SandboxSpec) -> int:
    flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWPID
    if spec.isolate_network:
        flags |= sc.CLONE_NEWNET
    return flags


def run_supervisor(
    spec_fd: int, stdio: tuple[int, int, int], control_fd: int, report_fd: int
) -> NoReturn:
    """Run in a fresh fork of the spawner: read the spec, start the job, report its end."""
    try:
        gc.disable()
        # Own session: a Ctrl-C meant for the relay's process group never reaches the job.
        os.setsid()
        _reset_signals()
        spec = SandboxSpec.from_json(_read_all(spec_fd))
        control_fd, report_fd = _install_stdio(stdio, (control_fd, report_fd))
        sc.unshare(namespace_flags(spec))
        job_pid = os.fork()
        if job_pid == 0:
            _run_job(spec, report_fd)
        for fd in (0, 1, 2):
            os.close(fd)
        status, utime, stime, maxrss_kb = _supervise(job_pid, control_fd)
        _write_line(report_fd, f"exited {status} {utime:.6f} {stime:.6f} {maxrss_kb}")
        os._exit(0)
    except BaseException as exc:  # a forked child must never unwind into its parent's code
        _report_failure(report_fd, "supervisor", exc)
    finally:
        os._exit(EXIT_SETUP_FAILED)


def _run_job(spec: SandboxSpec, report_fd: int) -> NoReturn:
    step = "cgroup"
    try:
        for join_file in spec.cgroup_join_files:
            _write_file(join_file, b"0")
        step = "filesystem"
        build_filesystem_view(spec)
        step = "hostname"
        sc.sethostname(spec.hostname.encode())
        if spec.isolate_network:
            step = "loopback"
            bring_up_loopback()
        step = "privileges"
        drop_privileges(spec.uid, spec.gid, spec.cap_last_cap)
        # Set after the uid change, which clears it: the job dies with its supervisor.
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        step = "cwd"
        os.chdir(spec.cwd)
        os.umask(0o022)
        # Last, after no_new_privs (which lets an unprivileged process install it) and after
        # every setup call: from here on only execve is left.
        step = "syscall filter"
        if isinstance(_SYSCALL_FILTER, UnsupportedArchitecture):
            raise _SYSCALL_FILTER
        _SYSCALL_FILTER.install()
        step = "exec"
        os.execve(spec.executable, list(spec.argv), spec.env)  # noqa: S606 - no shell, by design
    except BaseException as exc:  # a forked child must never unwind into its parent's code
        _report_failure(report_fd, step, exc)
    finally:
        os._exit(EXIT_SETUP_FAILED)


def _supervise(job_pid: int, control_fd: int) -> tuple[int, float, float, int]:
    """Wait for the job; SIGKILL it when the relay asks or goes away. Returns wait4 figures."""
    pidfd = os.pidfd_open(job_pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(control_fd, select.POLLIN)
    while True:
        for fd, _events in poller.poll():
            if fd == pidfd:
                _, status, usage = os.wait4(job_pid, 0)
                return status, usage.ru_utime, usage.ru_stime, usage.ru_maxrss
            request = os.read(control_fd, 64)
            if not request:
                poller.unregister(control_fd)
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)


def _reset_signals() -> None:
    # The job must start with default dispositions and an empty mask: Python ignores SIGPIPE
    # and the spawner ignores SIGCHLD (so the kernel reaps supervisors for it).
    signal.set_wakeup_fd(-1)
    for sig in _RESETTABLE_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def _install_stdio(stdio: tuple[int, int, int], keep: tuple[int, int]) -> tuple[int, int]:
    """Put stdio on fds 0-2, keep `keep` (renumbered), close every other inherited fd.

    Other jobs' fds may have been open in the spawner at fork time; holding them would delay
    those jobs' end-of-output.
    """
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in (*stdio, *keep)]
    for target, fd in enumerate(moved[:3]):
        os.dup2(fd, target, inheritable=True)
    kept = sorted(moved[3:])
    low = 3
    for fd in kept:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _MAX_FD)
    return moved[3], moved[4]


def _read_all(fd: int) -> bytes:
    data = bytearray()
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 16):
        data += chunk
    os.close(fd)
    return bytes(data)


def _write_file(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _report_failure(report_fd: int, step: str, exc: BaseException) -> None:
    message = f"failed {step}: {exc}".replace("\n", " ")
    with contextlib.suppress(OSError):
        _write_line(report_fd, message)


def _write_line(fd: int, line: str) -> None:
    os.write(fd, line.encode("utf-8", "replace")[:_MAX_REPORT_BYTES] + b"\n")
