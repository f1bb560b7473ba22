"""Job intake: messages are handled in arrival order, a burst per commit, effects after it."""

from __future__ import annotations

import threading

import pytest

from hostrelay_relay.intake import BURST_MAX, INBOX_MAX, JobIntake
from hostrelay_relay.ledger import Ledger


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger(tmp_path / "state" / "ledger.sqlite3")
    yield opened
    opened.close()


def _accepting(ledger, intake_ref, effects, outside):
    """A message handler that records the message as a job and defers a visible effect."""

    def handle(payload: bytes) -> None:
        job_id = payload.decode()
        seq = ledger.accept_job(
            job_id, 1, "ping", nonce=job_id, expires_at=2_000_000_000, accepted_event=payload
        )

        def publish() -> None:
            # What another connection (the broker pump, a restart) can see at this moment
            effects.append((job_id, seq, outside.job(job_id, 1) is not None))

        assert intake_ref[0].defer(publish)

    return handle


def test_messages_are_recorded_in_order_and_published_only_after_commit(ledger):
    # Given an intake whose handler records each job and defers publishing it
    outside = Ledger(ledger.path, read_only=True)
    effects: list[tuple[str, int, bool]] = []
    ref: list[JobIntake] = []
    intake = JobIntake(_accepting(ledger, ref, effects, outside), ledger)
    ref.append(intake)
    intake.start()

    # When a stream of messages arrives, more than one burst's worth
    names = [f"J{n:03d}" for n in range(BURST_MAX * 3 + 5)]
    for name in names:
        intake.put(name.encode())
    intake.stop()

    # Then every job is recorded, in arrival order, and each was published only once its
    # record was visible outside the intake (committed)
    assert [job_id for job_id, _, _ in effects] == names
    assert all(visible for _, _, visible in effects)
    assert [seq for _, seq, _ in effects] == sorted(seq for _, seq, _ in effects)
    assert [job.job_id for job in ledger.unfinished_jobs()] == names
    outside.close()


def test_defer_outside_a_burst_runs_nothing_later(ledger):
    # Given an intake, When code on another thread (a job worker) asks to defer
    intake = JobIntake(lambda payload: None, ledger)

    # Then it is told to act now
    assert intake.defer(lambda: None) is False


def test_a_crash_while_handling_stops_the_relay_and_records_nothing(ledger):
    # Given a handler that records a job and then fails on a bug
    fatal = threading.Event()

    def handle(payload: bytes) -> None:
        ledger.enqueue(b"half-done")
        raise KeyError("bug")

    intake = JobIntake(handle, ledger, on_fatal=fatal.set)
    intake.start()

    # When a message arrives
    intake.put(b"J1")

    # Then the relay is told to stop, and the burst's writes were undone
    assert fatal.wait(5)
    assert intake.crashed.is_set()
    assert ledger.outbox_depth() == 0
    # and the network thread is never left waiting on an intake that is gone
    for number in range(INBOX_MAX + 10):
        intake.put(f"J{number}".encode())
    intake.stop()
