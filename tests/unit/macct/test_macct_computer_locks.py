"""Per-computer locks: overlapping jobs wait, disjoint jobs do not, waits end at the deadline."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hostrelay_relay.macct.computer_locks import computer_locks
from hostrelay_relay.macct.errors import StepCanceled, StepTimedOut
from hostrelay_relay.macct.run_limits import RunLimits


def _limits(seconds: float = 10.0) -> RunLimits:
    return RunLimits(time.monotonic() + seconds)


class _WaitWatchingLimits(RunLimits):
    """Limits that tell the test when their job starts waiting for a lock (it checks them)."""

    def __init__(self, deadline: float, waiting: threading.Event) -> None:
        super().__init__(deadline)
        object.__setattr__(self, "waiting", waiting)

    def check(self, what: str) -> None:
        self.waiting.set()  # type: ignore[attr-defined]
        super().check(what)


def test_overlapping_sets_wait_and_disjoint_sets_do_not(tmp_path: Path) -> None:
    # Given one job holding PC01 and PC02
    order: list[str] = []
    with computer_locks(tmp_path, ["PC02", "PC01"], _limits()):
        # When another job wants PC03 only, Then it gets it at once
        with computer_locks(tmp_path, ["PC03"], _limits(1)):
            order.append("disjoint")

        # And a job wanting PC02 waits until the first job is done
        waiting = threading.Event()

        def overlapping() -> None:
            limits = _WaitWatchingLimits(time.monotonic() + 10, waiting)
            with computer_locks(tmp_path, ["PC02", "PC04"], limits):
                order.append("overlapping")

        worker = threading.Thread(target=overlapping)
        worker.start()
        assert waiting.wait(5), "the overlapping job never waited for the lock"
        order.append("first done")
    worker.join(5)
    assert order == ["disjoint", "first done", "overlapping"]


def test_waiting_ends_at_the_deadline_or_on_cancel(tmp_path: Path) -> None:
    with computer_locks(tmp_path, ["PC01"], _limits()):
        # (a deadline already past: the wait ends at its first check, no time passes)
        with pytest.raises(StepTimedOut), computer_locks(tmp_path, ["PC01"], _limits(0)):
            pass
        cancel = threading.Event()
        cancel.set()
        limits = RunLimits(time.monotonic() + 10, cancel)
        with pytest.raises(StepCanceled), computer_locks(tmp_path, ["PC01"], limits):
            pass
    # And the lock is free again afterwards
    with computer_locks(tmp_path, ["PC01"], _limits(1)):
        pass


def test_lock_file_is_private(tmp_path: Path) -> None:
    with computer_locks(tmp_path, ["PC01"], _limits()):
        lock_file = tmp_path / "macct" / "computers.lock"
        assert lock_file.stat().st_mode & 0o077 == 0
