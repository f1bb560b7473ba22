"""The collector pause around directory syncs: overlapping syncs, and a collector left off."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from hostrelay_relay.directory.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


def test_collector_is_off_during_a_sync_and_on_after_it() -> None:
    # Given the collector on
    gc.enable()

    # When a sync runs, then the collector is off while it runs and on again after
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collector_resumes_only_when_the_last_of_overlapping_syncs_ends() -> None:
    # Given the collector on and a sync in another thread that is still running
    gc.enable()
    first_in, second_done = threading.Event(), threading.Event()
    seen_after_second: list[bool] = []

    def first_sync() -> None:
        with gc_paused():
            first_in.set()
            second_done.wait(10)
            seen_after_second.append(gc.isenabled())

    thread = threading.Thread(target=first_sync)
    thread.start()
    assert first_in.wait(10)

    # When a second sync starts and ends while the first still runs
    with gc_paused():
        pass
    second_done.set()
    thread.join(10)

    # Then the first still ran with the collector off, and it is on once both ended
    assert seen_after_second == [False]
    assert gc.isenabled()


def test_collector_switched_off_by_the_process_stays_off() -> None:
    # Given a process that runs with the collector off
    gc.disable()

    # When a sync runs and ends, then it does not switch the collector on
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_collector_resumes_when_a_sync_fails() -> None:
    # Given the collector on
    gc.enable()

    # When a sync raises, then the collector is on again
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("directory unreachable")
    assert gc.isenabled()
