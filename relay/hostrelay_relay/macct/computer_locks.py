"""Per-computer locks so two captures/repairs never touch one account at the same time."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hostrelay_relay.macct.run_limits import RunLimits

POLL_S = 0.05

# Threads of this process: a set of held (lock file, computer) keys, taken all-or-nothing.
_held: set[tuple[str, str]] = set()
_held_changed = threading.Condition()

# Other processes: one byte-range lock per computer in one lock file. POSIX record locks
# belong to the process and vanish when ANY descriptor of the file is closed, so the
# process keeps exactly one descriptor per lock file open for its lifetime.
_lock_fds: dict[str, int] = {}
_lock_fds_guard = threading.Lock()


def lock_file_for(state_dir: Path) -> Path:
    return state_dir / "macct" / "computers.lock"


@contextmanager
def computer_locks(state_dir: Path, computers: Sequence[str], limits: RunLimits) -> Iterator[None]:
    """Hold the locks of `computers` (normalized names) for the duration of the block.

    Waits while another job holds any of them, until the deadline or cancel of `limits`.
    Cross-process locks are taken in sorted order, so two relays cannot deadlock.
    """
    path = lock_file_for(state_dir)
    names = sorted(set(computers))
    keys = {(str(path), name) for name in names}
    with _held_changed:
        while _held & keys:
            limits.check("waiting for a computer lock")
            _held_changed.wait(POLL_S)
        _held.update(keys)
    try:
        fd = _lock_fd(path)
        locked: list[int] = []
        try:
            for name in names:
                offset = _offset(name)
                _lock_range(fd, offset, limits)
                locked.append(offset)
            yield
        finally:
            for offset in reversed(locked):
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset)
    finally:
        with _held_changed:
            _held.difference_update(keys)
            _held_changed.notify_all()


def _offset(name: str) -> int:
    """A stable byte offset per computer name (62 bits: collisions are not a concern)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 2


def _lock_range(fd: int, offset: int, limits: RunLimits) -> None:
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        limits.check("waiting for a computer lock held by another process")
        time.sleep(POLL_S)


def _lock_fd(path: Path) -> int:
    with _lock_fds_guard:
        fd = _lock_fds.get(str(path))
        if fd is None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(path, flags, 0o600)
            _lock_fds[str(path)] = fd
        return fd
