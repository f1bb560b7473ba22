"""Machine-wide locks for tests that use what a host has only one of (fixed ports, cgroups)."""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def machine_wide(name: str) -> Iterator[None]:
    """Hold the lock `name` for the block; waits while another test run on this machine holds it.

    Test runs go side by side (pytest-xdist workers, the relay matrix's Pythons, other
    checkouts), so tests that share a host resource take turns through a lock file in the
    system's temporary directory.
    """
    path = Path(tempfile.gettempdir()) / f"hostrelay-{name}.lock"
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
