"""The relay ledger: jobs recorded once, nonces remembered, outbox kept in order until acked."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from hostrelay_relay.ledger import JobState, Ledger


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger(tmp_path / "state" / "ledger.sqlite3")
    yield opened
    opened.close()


def _accept(ledger, job_id, attempt=1, nonce=None):
    return ledger.accept_job(
        job_id,
        attempt,
        "ping",
        nonce=nonce or f"n-{job_id}-{attempt}",
        expires_at=2_000_000_000,
        accepted_event=f"accepted {job_id}".encode(),
    )


def test_job_is_recorded_once_per_attempt(ledger):
    # Given a job accepted once
    assert _accept(ledger, "J1") is not None

    # When the same job and attempt is accepted again, and a second attempt arrives
    again = _accept(ledger, "J1", nonce="other")
    second_attempt = _accept(ledger, "J1", attempt=2)

    # Then the repeat changes nothing, while the new attempt is a new job
    assert again is None
    assert second_attempt is not None
    assert [e.payload for e in ledger.pending(0, 10)] == [b"accepted J1", b"accepted J1"]
    assert ledger.job("J1", 1).state is JobState.ACCEPTED


def test_accepting_a_job_uses_up_its_nonce(ledger):
    # Given an unseen nonce
    assert ledger.nonce_seen("abc") is False

    # When a job with that nonce is accepted
    _accept(ledger, "J1", nonce="abc")

    # Then the nonce counts as seen
    assert ledger.nonce_seen("abc") is True


def test_job_moves_from_accepted_to_running_to_finished(ledger):
    # Given an accepted job
    _accept(ledger, "J1")

    # When it runs and finishes
    ledger.mark_running("J1", 1)
    running = ledger.job("J1", 1)
    ledger.finish_job("J1", 1, "succeeded", b"result J1")

    # Then the ledger keeps its outcome and result event, and queued that event
    assert running.state is JobState.RUNNING
    finished = ledger.job("J1", 1)
    assert (finished.state, finished.outcome, finished.result_event) == (
        JobState.FINISHED,
        "succeeded",
        b"result J1",
    )
    assert [e.payload for e in ledger.pending(0, 10)][-1] == b"result J1"


def test_a_finished_job_keeps_its_first_outcome(ledger):
    # Given a finished job
    _accept(ledger, "J1")
    ledger.finish_job("J1", 1, "succeeded", b"first")

    # When something tries to finish it again
    ledger.finish_job("J1", 1, "failed", b"second")

    # Then nothing changes and nothing more is queued
    assert ledger.job("J1", 1).outcome == "succeeded"
    assert b"second" not in [e.payload for e in ledger.pending(0, 10)]


def test_outbox_returns_events_in_order_until_acknowledged(ledger):
    # Given five queued events
    seqs = [ledger.enqueue(f"event {i}".encode()) for i in range(5)]

    # When the broker acknowledges the second and fourth
    ledger.acknowledge([seqs[1], seqs[3]])

    # Then the rest stay queued, oldest first, and paging continues after a sequence number
    assert [e.payload for e in ledger.pending(0, 10)] == [b"event 0", b"event 2", b"event 4"]
    assert [e.payload for e in ledger.pending(seqs[2], 10)] == [b"event 4"]
    assert ledger.outbox_depth() == 3


def test_outbox_survives_reopening(tmp_path):
    # Given an event queued by a relay process that then went away
    path = tmp_path / "ledger.sqlite3"
    first = Ledger(path)
    first.enqueue(b"not yet acknowledged")
    first.close()

    # When the ledger is opened again
    reopened = Ledger(path)

    # Then the event is still waiting
    assert [e.payload for e in reopened.pending(0, 10)] == [b"not yet acknowledged"]
    reopened.close()


def test_prune_forgets_expired_nonces_and_old_finished_jobs(ledger):
    # Given a nonce that expired, one that did not, an old finished job and a running one
    ledger.remember_nonce("old", 100)
    ledger.remember_nonce("fresh", 2_000_000_000)
    _accept(ledger, "DONE")
    ledger.finish_job("DONE", 1, "succeeded", b"r")
    _accept(ledger, "RUNNING")
    ledger.mark_running("RUNNING", 1)

    # When pruning everything expired before "now" and finished before "now"
    ledger.prune(nonces_expired_before=1_000, finished_before=3_000_000_000)

    # Then only the expired nonce and the finished job are gone
    assert ledger.nonce_seen("old") is False
    assert ledger.nonce_seen("fresh") is True
    assert ledger.job("DONE", 1) is None
    assert ledger.job("RUNNING", 1) is not None


def test_summary_counts_jobs_and_outbox(ledger):
    # Given one job of each state and a connect time
    for job_id in ("A", "B", "C"):
        _accept(ledger, job_id)
    ledger.mark_running("B", 1)
    ledger.finish_job("C", 1, "failed", b"r")
    ledger.set_meta("last_connect_at", "1700000000.5")

    # When summarised
    summary = ledger.summary()

    # Then each state is counted and the outbox depth includes every unacked event
    assert (summary.accepted, summary.running, summary.finished) == (1, 1, 1)
    assert summary.outbox_depth == 4
    assert summary.last_connect_at == 1700000000.5


def test_read_only_ledger_cannot_change_anything(tmp_path):
    # Given a ledger written by the relay
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()

    # When `status` opens it read-only and something tries to write
    reader = Ledger(path, read_only=True)

    # Then the write fails and reading works
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.enqueue(b"nope")
    assert reader.outbox_depth() == 0
    reader.close()


def test_ledger_file_is_private(tmp_path):
    # When a ledger is created
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()

    # Then only its owner can read it (it holds job results)
    assert path.stat().st_mode & 0o077 == 0


def test_a_started_job_is_still_known_as_started_after_reopening(tmp_path):
    # Given a job that was marked started by a relay process that then died
    path = tmp_path / "ledger.sqlite3"
    first = Ledger(path)
    _accept(first, "J1")
    _accept(first, "J2")
    first.mark_running("J1", 1)
    first.close()

    # When the next process opens the ledger
    reopened = Ledger(path)

    # Then it knows J1 may have run and J2 never started
    states = {job.job_id: job.state for job in reopened.unfinished_jobs()}
    assert states == {"J1": JobState.RUNNING, "J2": JobState.ACCEPTED}
    reopened.close()


def test_prune_forgets_starts_of_finished_jobs_only(ledger, tmp_path):
    # Given one started job that finished and one still running
    for job_id in ("DONE", "RUNNING"):
        _accept(ledger, job_id)
        ledger.mark_running(job_id, 1)
    ledger.finish_job("DONE", 1, "succeeded", b"r")

    # When pruning
    ledger.prune(nonces_expired_before=0, finished_before=0)

    # Then the running job is still known to have started
    assert [(j.job_id, j.state) for j in ledger.unfinished_jobs()] == [
        ("RUNNING", JobState.RUNNING)
    ]


def test_a_batch_commits_its_writes_together(ledger, tmp_path):
    # Given another process's view of the ledger
    other = Ledger(ledger.path, read_only=True)

    # When two jobs are accepted inside one batch
    with ledger.batch():
        _accept(ledger, "J1")
        _accept(ledger, "J2")
        # Then the batch's own thread sees them, nobody else does yet
        assert ledger.job("J1", 1) is not None
        assert ledger.nonce_seen("n-J2-1") is True
        assert other.job("J1", 1) is None

    # and both are there once it ends
    assert [job.job_id for job in other.unfinished_jobs()] == ["J1", "J2"]
    assert other.outbox_depth() == 2
    other.close()


def test_a_batch_that_raises_leaves_nothing_behind(ledger):
    # When a batch fails half-way
    with pytest.raises(RuntimeError), ledger.batch():
        _accept(ledger, "J1")
        ledger.enqueue(b"event")
        raise RuntimeError("intake bug")

    # Then none of its writes happened
    assert ledger.job("J1", 1) is None
    assert ledger.nonce_seen("n-J1-1") is False
    assert ledger.outbox_depth() == 0


def test_a_write_failing_inside_a_batch_is_undone_alone(ledger):
    # Given a batch in which one write fails part-way (its event is missing, after the job
    # and its nonce were written)
    with ledger.batch():
        _accept(ledger, "J1")
        with pytest.raises(sqlite3.IntegrityError):
            ledger.accept_job(
                "J2", 1, "ping", nonce="n2", expires_at=2_000_000_000, accepted_event=None
            )
        _accept(ledger, "J3")

    # Then the failed write left nothing (not even its nonce), the others are kept
    assert [job.job_id for job in ledger.unfinished_jobs()] == ["J1", "J3"]
    assert ledger.nonce_seen("n2") is False
    assert ledger.outbox_depth() == 2


def test_other_threads_writes_wait_for_the_batch(ledger):
    # Given a batch in progress
    written = threading.Event()

    def write_elsewhere():
        ledger.enqueue(b"from a worker")
        written.set()

    with ledger.batch():
        _accept(ledger, "J1")
        worker = threading.Thread(target=write_elsewhere)
        worker.start()
        # When another thread writes, Then it waits for the batch to end
        assert not written.wait(0.2)
    assert written.wait(5)
    worker.join()
    assert [e.payload for e in ledger.pending(0, 10)] == [b"accepted J1", b"from a worker"]


def test_the_write_ahead_log_is_checkpointed_in_the_background(ledger):
    # When many small writes are committed one by one, without a pause (~50 MB of WAL)
    for number in range(6000):
        ledger.enqueue(b"x" * 200 + str(number).encode())

    # Then the WAL does not keep growing: it is copied back into the database and restarted
    wal = ledger.path.with_name(ledger.path.name + "-wal")
    assert wal.stat().st_size < 32 * 1024 * 1024
    assert ledger.outbox_depth() == 6000


def test_write_check_passes_on_a_writable_ledger_and_changes_nothing(ledger):
    assert ledger.check_writable() is None
    assert ledger.get_meta("write_probe") is None


def test_write_check_says_why_a_ledger_cannot_be_written(ledger, tmp_path):
    # Given a ledger opened read-only, and one whose writer is stuck in a batch
    read_only = Ledger(ledger.path, read_only=True)
    release = threading.Event()
    in_batch = threading.Event()

    def hold_batch():
        with ledger.batch():
            in_batch.set()
            release.wait(5)

    holder = threading.Thread(target=hold_batch)
    holder.start()
    assert in_batch.wait(5)

    # Then the check names the problem instead of passing
    assert "cannot write" in read_only.check_writable()
    assert "busy" in ledger.check_writable(timeout_s=0.1)
    release.set()
    holder.join()
    assert ledger.check_writable() is None
    read_only.close()
