"""The spawner: a small single-threaded process that forks every isolated job for the relay."""

from __future__ import annotations

import os
import signal
import socket
import sys

from hostrelay_relay.isolation.launcher import run_supervisor

# Why a spawner process, rather than something else:
# - A fresh `python -m ...launcher` interpreter per job costs 20-40 ms of start-up, over the
#   30 ms budget for an isolated `/bin/true`. The spawner is started once per relay.
# - `unshare(CLONE_NEWNS)` is refused in a multi-threaded process and `CLONE_NEWPID` only
#   applies to children of the caller, so some child has to unshare and fork again anyway.
# - Forking the relay itself works but its children would be copies of a multi-threaded
#   process of 50+ MB: fork, copy-on-write faults and exec teardown grow with its size (about
#   3 ms per fork at 30 MB here) and any lock held by another relay thread at fork time (a C
#   library's, not just Python's) could deadlock the child before execve.
# - `subprocess.Popen(preexec_fn=...)` cannot host the second fork: the supervisor would hold
#   Popen's exec-status pipe open until the job ends, blocking the caller.
# The spawner imports only the isolation code (about 10 MB), never starts a thread, and forks
# a supervisor per request; the relay passes the job's pipes and spec over a socketpair.

REQUEST = b"spawn"
# spec (memfd), stdin, stdout, stderr, control pipe (read end), report pipe (write end)
FDS_PER_REQUEST = 6
# The spawner answers every request, before it forks anything. A relay that got no answer
# from a spawner that has died therefore knows nothing ran: it may hand the same request to
# a new spawner without running the job twice. (A send to a spawner that was just SIGKILLed
# usually succeeds: the socket lives until the dying process closes its files.)
ACCEPTED = b"accepted"
REJECTED = b"rejected"
# Sent once, when the spawner is ready for requests: the relay's answer timeout then measures
# the spawner's answer alone, not its interpreter's start-up (seconds on a loaded host).
READY = b"ready"


def serve(channel: socket.socket) -> None:
    """Fork a supervisor per request until the relay closes its end of the channel."""
    # Supervisors are reaped by the kernel; they reset SIGCHLD to default for the job.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        channel.send(READY)
    except (BrokenPipeError, ConnectionResetError):
        return
    while True:
        message, fds, _flags, _address = socket.recv_fds(channel, 64, FDS_PER_REQUEST)
        if not message:
            return
        try:
            accepted = message == REQUEST and len(fds) == FDS_PER_REQUEST
            try:
                channel.send(ACCEPTED if accepted else REJECTED)
            except (BrokenPipeError, ConnectionResetError):
                return  # the relay is gone: it will not wait for this job
            if accepted:
                _fork_supervisor(fds)
        finally:
            for fd in fds:
                os.close(fd)


def _fork_supervisor(fds: list[int]) -> None:
    spec_fd, stdin_fd, stdout_fd, stderr_fd, control_fd, report_fd = fds
    try:
        pid = os.fork()
    except OSError as exc:
        os.write(report_fd, f"failed spawner: {exc}\n".encode())
        return
    if pid == 0:
        run_supervisor(spec_fd, (stdin_fd, stdout_fd, stderr_fd), control_fd, report_fd)


def main() -> int:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.stderr.write("usage: python -m hostrelay_relay.isolation.spawner <socket fd>\n")
        return 2
    # Interrupts are for the relay; the spawner ends when the relay closes the channel.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with socket.socket(fileno=int(sys.argv[1])) as channel:
        serve(channel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
