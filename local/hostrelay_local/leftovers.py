"""One stack per state directory; what a killed stack left running in it is ended at start."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import time
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

# The children a stack starts, by program (or `python -m` module) name: only these are ever
# ended, and only when one of their arguments lies in the state directory (mosquitto -c,
# slapd -f, the relay's --config, samba-tool's --targetdir, a fleet worker's --directory).
_CHILD_PROGRAMS = frozenset(
    {"mosquitto", "slapd", "samba-tool", "hostrelay-relay", "hostrelay_local.fleet_worker"}
)


class StateDirBusy(RuntimeError):
    """Another stack runs with this state directory."""


class StateDirLock:
    """An exclusive lock on `<state_dir>/stack.lock` for as long as the stack runs.

    The kernel drops it when the process ends, however it ends (even SIGKILL), and children
    do not inherit it: holding it means no other stack uses the directory.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "stack.lock"
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise StateDirBusy(
                f"another hostrelay-local (pid {holder}) runs with {self.path.parent}; "
                "stop it first, or give this one its own --state-dir"
            ) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()  # closing the descriptor drops the lock


def _arguments(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def find_leftovers(state_dir: Path) -> dict[int, str]:
    """Children of an earlier stack still running with `state_dir`: pid → program."""
    inside = f"{state_dir.resolve()}/"
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        args = _arguments(int(entry.name))
        programs = {Path(arg).name for arg in args[:3]} & _CHILD_PROGRAMS
        if programs and any(inside in arg for arg in args[1:]):
            found[int(entry.name)] = programs.pop()
    return found


def end_leftovers(state_dir: Path, timeout_s: float = 5.0) -> dict[int, str]:
    """SIGTERM what `find_leftovers` finds, SIGKILL what is still there after timeout_s."""
    leftovers = find_leftovers(state_dir)
    for pid, program in leftovers.items():
        logger.warning(
            "ending a process a stopped stack left", extra={"pid": pid, "program": program}
        )
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(_running(pid) for pid in leftovers) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in leftovers:
        if _running(pid):
            _signal(pid, signal.SIGKILL)
    return leftovers


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended meanwhile
        os.kill(pid, signum)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie is init's to reap, not ours)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
