"""The job executor: what handlers return or raise becomes result, output and progress events."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
import zlib
from typing import Any

import pytest
from pydantic import Field

from hostrelay_contract.base import StrictParams
from hostrelay_relay.executor import JobExecutor, finish_interrupted_jobs
from hostrelay_relay.handlers.base import (
    Handler,
    JobContext,
    JobError,
)
from hostrelay_relay.ledger import Ledger
from hostrelay_relay.settings import RelaySettings


class FnParams(StrictParams):
    value: int = Field(default=0)


class FunctionHandler(Handler[FnParams]):
    """A handler whose `run` is whatever function the test gives it."""

    type = "test.fn"
    params_model = FnParams

    def __init__(self, settings: RelaySettings, fn) -> None:
        super().__init__(settings)
        self.fn = fn

    def run(self, params: FnParams, ctx: JobContext) -> dict[str, Any]:
        return self.fn(params, ctx)


@pytest.fixture
def settings(tmp_path):
    return RelaySettings(host="unit", state_dir=tmp_path / "state", max_concurrent_jobs=2)


@pytest.fixture
def ledger(settings):
    opened = Ledger(settings.ledger_path)
    yield opened
    opened.close()


@pytest.fixture
def executor(settings, ledger):
    running = JobExecutor(settings, ledger, send=lambda seq, payload: None)
    yield running
    running.shutdown(drain_timeout_s=5)


_job_numbers = iter(range(1, 1_000_000))


def submit(executor, ledger, settings, fn, *, timeout_s=30.0):
    job_id = f"J{next(_job_numbers)}"
    ledger.accept_job(
        job_id, 1, "test.fn", nonce=job_id, expires_at=2_000_000_000, accepted_event=b"{}"
    )
    executor.submit(job_id, 1, FunctionHandler(settings, fn), FnParams(), timeout_s)
    return job_id


def events_of(ledger, job_id):
    decoded = [json.loads(e.payload) for e in ledger.pending(0, 100_000) if e.payload != b"{}"]
    return [e for e in decoded if e.get("job_id") == job_id]


def wait_result(ledger, job_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        results = [e for e in events_of(ledger, job_id) if e["kind"] == "result"]
        if results:
            return results[0]
        time.sleep(0.01)
    raise AssertionError(f"no result for {job_id}")


def refused_at_once(executor, ledger, settings):
    """Whether a job submitted now is ended before submit returns (the executor is closing)."""
    job_id = submit(executor, ledger, settings, lambda p, ctx: {"ran": True})
    return any(e["kind"] == "result" for e in events_of(ledger, job_id))


def wait_for_events(ledger, job_id, kind, timeout=10.0):
    """The job's events of `kind` once there is one (polling the ledger until a deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in events_of(ledger, job_id) if e["kind"] == kind]
        if found:
            return found
        time.sleep(0.01)
    raise AssertionError(f"no {kind} event for {job_id}")


def output_chunks(event):
    """(seq, stream, bytes) of each chunk of an `output` event, as the control plane reads it."""
    data = base64.b64decode(event["data"])
    if event["encoding"] == "zlib":
        data = zlib.decompress(data)
    else:
        assert event["encoding"] == "identity"
    chunks, offset = [], 0
    for chunk in event["chunks"]:
        chunks.append((chunk["seq"], chunk["stream"], data[offset : offset + chunk["size"]]))
        offset += chunk["size"]
    assert offset == len(data)
    return chunks


def start_job_that_runs_until_canceled(executor, ledger, settings):
    """Submit a job that polls for cancellation forever; return once it is running."""
    started = threading.Event()

    def until_canceled(params, ctx):
        started.set()
        while True:
            ctx.check_cancel_or_timeout()
            ctx.cancel_event.wait(1)

    job_id = submit(executor, ledger, settings, until_canceled)
    assert started.wait(5)
    return job_id


def test_returned_object_becomes_a_succeeded_result(executor, ledger, settings):
    # When a handler returns a result object
    job_id = submit(executor, ledger, settings, lambda p, ctx: {"answer": 42})

    # Then the result event carries it, with no error and no output
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "succeeded"
    assert result["result"] == {"answer": 42}
    assert result["error"] is None
    assert result["output"] is None
    assert ledger.job(job_id, 1).outcome == "succeeded"


def test_job_error_becomes_a_failed_result_with_its_code(executor, ledger, settings):
    # When a handler raises a JobError
    def fail(params, ctx):
        raise JobError(
            "no_such_computer",
            "computer pc01 not found",
            retryable=True,
            result={"looked_in": "sam.ldb"},
        )

    job_id = submit(executor, ledger, settings, fail)

    # Then the job fails with that code, message, retryability and partial result
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "failed"
    assert result["error"] == {
        "code": "no_such_computer",
        "message": "computer pc01 not found",
        "retryable": True,
    }
    assert result["result"] == {"looked_in": "sam.ldb"}


def test_handler_bug_is_reported_as_handler_crashed(executor, ledger, settings, caplog):
    # When a handler has a bug
    job_id = submit(executor, ledger, settings, lambda p, ctx: {}["missing"])

    # Then the job fails with handler_crashed, and the traceback goes to the log
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "failed"
    assert result["error"]["code"] == "handler_crashed"
    assert "KeyError" in result["error"]["message"]
    assert any(r.message == "handler crashed" and r.exc_info for r in caplog.records)


def test_result_that_is_not_json_is_reported_as_handler_crashed(executor, ledger, settings):
    # When a handler returns something that cannot be sent
    job_id = submit(executor, ledger, settings, lambda p, ctx: {"when": object()})

    # Then the job fails instead of the relay choking on it
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "failed"
    assert result["error"]["code"] == "handler_crashed"


def test_polling_handler_is_stopped_at_its_timeout(executor, ledger, settings):
    # When a handler that checks for cancellation runs past a 0.3 s timeout
    def loop_forever(params, ctx):
        while True:
            ctx.check_cancel_or_timeout()
            time.sleep(0.01)

    started = time.monotonic()
    job_id = submit(executor, ledger, settings, loop_forever, timeout_s=0.3)

    # Then it is reported timed out soon after the deadline
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "timed_out"
    assert result["error"]["code"] == "timeout"
    assert time.monotonic() - started < 2


def test_handler_waiting_on_cancel_event_is_woken_at_its_timeout(executor, ledger, settings):
    # When a handler sleeps on its cancel event far longer than its 0.3 s timeout
    def wait_a_minute(params, ctx):
        ctx.cancel_event.wait(60)
        ctx.check_cancel_or_timeout()
        return {}

    started = time.monotonic()
    job_id = submit(executor, ledger, settings, wait_a_minute, timeout_s=0.3)

    # Then the watchdog wakes it and the job is reported timed out, not canceled
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "timed_out"
    assert time.monotonic() - started < 2


def test_handler_ignoring_its_timeout_is_reported_timed_out_when_it_returns(
    executor, ledger, settings
):
    # When a handler returns a result only after its deadline passed (the watchdog's cancel
    # at the deadline is what wakes it; it does not check for it)
    def late(params, ctx):
        ctx.cancel_event.wait(10)
        return {"late": 1}

    job_id = submit(executor, ledger, settings, late, timeout_s=0.2)

    # Then its late result is not trusted: the job timed out
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "timed_out"
    assert result["result"] == {}


def test_cancel_stops_a_running_job(executor, ledger, settings):
    # Given a job that runs until canceled
    job_id = start_job_that_runs_until_canceled(executor, ledger, settings)

    # When it is canceled
    assert executor.cancel(job_id, 1) is True

    # Then it ends canceled
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "canceled"
    assert result["error"]["code"] == "canceled"


def test_cancel_of_unknown_job_says_so(executor):
    # When canceling a job the executor does not have, Then it answers False
    assert executor.cancel("NOPE", 1) is False


def test_output_is_sequenced_chunked_and_summarised(executor, ledger, settings):
    # When a handler writes 100 KB to stdout and then a line to stderr
    big = bytes(range(256)) * 400  # 102400 bytes

    def chatty(params, ctx):
        ctx.output("stdout", big[:10_000])
        ctx.output("stdout", big[10_000:])
        ctx.output("stderr", b"warning: done\n")
        return {}

    job_id = submit(executor, ledger, settings, chatty)

    # Then output chunks come in order, seq from 0, each at most 16 KB, streams kept apart,
    # several to an event but never more than fits an IoT message
    result = wait_result(ledger, job_id)
    events = [e for e in events_of(ledger, job_id) if e["kind"] == "output"]
    assert all(len(json.dumps(e)) < 128 * 1000 for e in events)
    outputs = [chunk for e in events for chunk in output_chunks(e)]
    assert [seq for seq, _, _ in outputs] == list(range(len(outputs)))
    chunks = [data for _, _, data in outputs]
    assert all(len(chunk) <= 16 * 1024 for chunk in chunks)
    streams = [stream for _, stream, _ in outputs]
    stdout = b"".join(c for c, s in zip(chunks, streams, strict=True) if s == "stdout")
    stderr = b"".join(c for c, s in zip(chunks, streams, strict=True) if s == "stderr")
    assert stdout == big
    assert stderr == b"warning: done\n"
    # and the result summarises all of it
    everything = b"".join(chunks)
    assert result["output"] == {
        "size": len(everything),
        "sha256": hashlib.sha256(everything).hexdigest(),
        "chunks": len(outputs),
    }
    # and every output event was queued before the result
    kinds = [e["kind"] for e in events_of(ledger, job_id)]
    assert kinds[-1] == "result"


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("text", b"".join(b"%d\n" % n for n in range(400_000))),  # 2.6 MB, compresses 3x
        ("random", random.Random(7).randbytes(600_000)),  # does not compress
    ],
)
def test_large_output_travels_in_few_events_that_fit_iot(executor, ledger, settings, name, payload):
    # When a job writes a lot of output at once
    def loud(params, ctx):
        for offset in range(0, len(payload), 65536):
            ctx.output("stdout", payload[offset : offset + 65536])
        return {}

    job_id = submit(executor, ledger, settings, loud)
    result = wait_result(ledger, job_id)

    # Then every byte arrives in order, in 16 KiB chunks packed into events under 128 KB
    events = [e for e in events_of(ledger, job_id) if e["kind"] == "output"]
    chunks = [chunk for e in events for chunk in output_chunks(e)]
    assert b"".join(data for _, _, data in chunks) == payload
    assert [seq for seq, _, _ in chunks] == list(range(len(chunks)))
    assert all(len(json.dumps(e, separators=(",", ":"))) < 128 * 1024 for e in events)
    # and each event names its first and last seq (OutputTopicRule keys the table by them)
    assert [(e["first_seq"], e["last_seq"]) for e in events] == [
        (e["chunks"][0]["seq"], e["chunks"][-1]["seq"]) for e in events
    ]
    assert result["output"]["chunks"] == len(chunks) == -(-len(payload) // (16 * 1024))
    # and compressible output is compressed: far fewer events than 80 KiB each would need
    if name == "text":
        assert {e["encoding"] for e in events} == {"zlib"}
        assert len(events) < len(payload) / (80 * 1024) / 2
    else:
        assert {e["encoding"] for e in events} == {"identity"}


def test_small_output_is_flushed_within_250_ms(executor, ledger, settings):
    # Given a handler that writes a little output and then keeps running
    release = threading.Event()

    def slow(params, ctx):
        ctx.output("stdout", b"first line\n")
        release.wait(5)
        return {}

    job_id = submit(executor, ledger, settings, slow)

    # When its output is flushed (the flusher's clock decides when: within 250 ms)
    outputs = wait_for_events(ledger, job_id, "output")
    finished_early = any(e["kind"] == "result" for e in events_of(ledger, job_id))
    release.set()

    # Then the output was already sent while the job still ran
    assert not finished_early
    chunks = [data for e in outputs for _, _, data in output_chunks(e)]
    assert chunks == [b"first line\n"]
    assert wait_result(ledger, job_id)["outcome"] == "succeeded"


def test_progress_reports_become_progress_events(executor, ledger, settings):
    # When a handler reports progress
    def steps(params, ctx):
        ctx.progress(1, 3, "first")
        ctx.progress(2, None, "second")
        return {}

    job_id = submit(executor, ledger, settings, steps)
    wait_result(ledger, job_id)

    # Then each report is a progress event, in order
    progress = [e for e in events_of(ledger, job_id) if e["kind"] == "progress"]
    assert [(e["done"], e["total"], e["message"]) for e in progress] == [
        (1, 3, "first"),
        (2, None, "second"),
    ]


def test_no_more_than_max_concurrent_jobs_run_at_once(executor, ledger, settings):
    # Given max_concurrent_jobs = 2 and five jobs: the first two to run wait for each other,
    # so two surely run at once; a third running beside them would raise the peak
    lock = threading.Lock()
    active = [0]
    peak = [0]
    first_pair = threading.Barrier(2)
    started = [0]

    def hold(params, ctx):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            started[0] += 1
            in_first_pair = started[0] <= 2
        if in_first_pair:
            first_pair.wait(5)
        with lock:
            active[0] -= 1
        return {}

    # When all five are submitted at once
    job_ids = [submit(executor, ledger, settings, hold) for _ in range(5)]

    # Then all of them finish, never more than two at a time
    assert all(wait_result(ledger, j)["outcome"] == "succeeded" for j in job_ids)
    assert peak[0] == 2


def test_shutdown_drains_running_jobs_and_does_not_start_queued_ones(settings, ledger):
    # Given two running jobs that need 0.3 s and a third one waiting for a worker
    executor = JobExecutor(settings, ledger, send=lambda seq, payload: None)
    both_started = threading.Barrier(3)

    finish = threading.Event()

    def short(params, ctx):
        both_started.wait(5)
        finish.wait(10)
        return {"done": True}

    running = [submit(executor, ledger, settings, short) for _ in range(2)]
    queued = submit(executor, ledger, settings, lambda p, ctx: {"ran": True})
    both_started.wait(5)

    # When the executor shuts down with a generous drain timeout
    drained: list[bool] = []
    stopping = threading.Thread(target=lambda: drained.append(executor.shutdown(5)))
    stopping.start()
    # (it has begun once a job submitted now is refused at once; then the running ones end)
    deadline = time.monotonic() + 10
    while not refused_at_once(executor, ledger, settings):
        assert time.monotonic() < deadline, "shutdown never began"
        time.sleep(0.01)
    finish.set()
    stopping.join(10)
    assert drained == [True]

    # Then the running jobs finished normally and the queued one never started
    assert [wait_result(ledger, j)["outcome"] for j in running] == ["succeeded", "succeeded"]
    never = wait_result(ledger, queued)
    assert never["outcome"] == "failed"
    assert never["error"] == {
        "code": "relay_stopped",
        "message": "relay stopped before the job started",
        "retryable": True,
    }


def test_shutdown_cancels_jobs_still_running_after_the_drain_timeout(settings, ledger):
    # Given a job that runs until canceled
    executor = JobExecutor(settings, ledger, send=lambda seq, payload: None)
    job_id = start_job_that_runs_until_canceled(executor, ledger, settings)

    # When the executor shuts down with a 0.2 s drain timeout
    assert executor.shutdown(drain_timeout_s=0.2) is True

    # Then the job is stopped and reported as cut short by the relay stopping
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "failed"
    assert result["error"]["code"] == "relay_stopping"
    assert result["error"]["retryable"] is False


def test_jobs_left_unfinished_by_a_crash_are_reported_at_start(ledger):
    # Given a ledger where a crashed relay left one job running and one only accepted
    for job_id in ("RUN", "WAIT"):
        ledger.accept_job(
            job_id, 1, "ping", nonce=job_id, expires_at=2_000_000_000, accepted_event=b"{}"
        )
    ledger.mark_running("RUN", 1)

    # When the next relay process starts
    interrupted = finish_interrupted_jobs(ledger)

    # Then both are finished FAILED: the running one as maybe partly done, not retryable
    assert {job.job_id for job in interrupted} == {"RUN", "WAIT"}
    run = wait_result(ledger, "RUN")
    assert run["outcome"] == "failed"
    assert run["error"] == {
        "code": "relay_restarted",
        "message": "relay stopped while the job was running; it may have partially run",
        "retryable": False,
    }
    wait = wait_result(ledger, "WAIT")
    assert wait["error"]["code"] == "relay_stopped"
    assert wait["error"]["retryable"] is True
    assert ledger.unfinished_jobs() == []


def test_report_event_publishes_a_job_event_of_that_kind(executor, ledger, settings):
    # When a handler reports an inventory event
    def inventory(params, ctx):
        ctx.report_event("inventory", {"connector": "c1", "deletes": ["pc01"]})
        return {}

    job_id = submit(executor, ledger, settings, inventory)
    wait_result(ledger, job_id)

    # Then it is sent with the job's id and attempt and the usual event fields
    [event] = [e for e in events_of(ledger, job_id) if e["kind"] == "inventory"]
    assert event["deletes"] == ["pc01"]
    assert event["attempt"] == 1
    assert event["event_id"] and event["sent_at"] and event["v"] == 1


def test_report_event_refuses_to_impersonate_core_events(executor, ledger, settings):
    # When a handler tries to send a `result` event of its own
    def impostor(params, ctx):
        ctx.report_event("result", {"outcome": "succeeded"})
        return {}

    job_id = submit(executor, ledger, settings, impostor)

    # Then that is a handler bug, and the only result is the relay's own
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "failed"
    assert "may not send" in result["error"]["message"]


def test_report_event_refuses_what_the_control_plane_would_drop(executor, ledger, settings):
    # When a handler reports an inventory event without its connector
    def careless(params, ctx):
        ctx.report_event("inventory", {"deletes": ["pc01"]})
        return {}

    job_id = submit(executor, ledger, settings, careless)

    # Then nothing unreadable is sent: the handler fails, naming the missing field
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "failed"
    assert "connector" in result["error"]["message"]
    assert [e for e in events_of(ledger, job_id) if e["kind"] == "inventory"] == []


def _fails_with_an_overlong_code(params, ctx):
    raise JobError("c" * 65, "the control plane takes codes of up to 64 characters")


@pytest.mark.parametrize(
    "fn",
    [lambda p, ctx: {"handle": object()}, _fails_with_an_overlong_code],
    ids=["result not JSON", "error code too long"],
)
def test_a_result_the_control_plane_would_refuse_is_reported_as_handler_crashed(
    executor, ledger, settings, fn
):
    # When a handler ends with what the contract's result event model refuses
    job_id = submit(executor, ledger, settings, fn)

    # Then the job still ends, failed as a handler bug, instead of leaving it unfinished
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "failed"
    assert result["error"]["code"] == "handler_crashed"
    assert result["error"]["message"].startswith("result refused:")
    assert ledger.unfinished_jobs() == []


def test_result_with_nan_is_reported_as_handler_crashed(executor, ledger, settings):
    # When a handler returns a number JSON cannot carry
    job_id = submit(executor, ledger, settings, lambda p, ctx: {"ratio": float("nan")})

    # Then the job fails and no invalid JSON is queued for the broker
    result = wait_result(ledger, job_id)
    assert result["outcome"] == "failed"
    assert result["error"]["code"] == "handler_crashed"
    assert "not JSON" in result["error"]["message"]


class RepeatableHandler(FunctionHandler):
    repeatable = True


@pytest.mark.parametrize("repeatable", [False, True])
def test_only_a_repeatable_job_starts_before_its_start_mark_is_on_disk(
    executor, ledger, settings, monkeypatch, repeatable
):
    # Given a disk that holds every start-mark commit until it is let go
    from hostrelay_relay.start_journal import StartJournal

    committing, disk_free = threading.Event(), threading.Event()
    commit = StartJournal._commit

    def slow_commit(self, batch):
        committing.set()
        assert disk_free.wait(10)
        commit(self, batch)

    monkeypatch.setattr(StartJournal, "_commit", slow_commit)
    ran_with_mark_on_disk: list[bool] = []
    ran = threading.Event()

    def note(params, ctx):
        ran_with_mark_on_disk.append(disk_free.is_set())
        ran.set()
        return {}

    # When a job starts, and the disk is let go once the job ran or its mark is being written
    job_id = f"J{next(_job_numbers)}"
    ledger.accept_job(
        job_id, 1, "test.fn", nonce=job_id, expires_at=2_000_000_000, accepted_event=b"{}"
    )
    handler_class = RepeatableHandler if repeatable else FunctionHandler
    executor.submit(job_id, 1, handler_class(settings, note), FnParams(), 30.0)
    assert (ran if repeatable else committing).wait(10)
    disk_free.set()

    # Then a repeatable one ran while its mark was on its way; any other only after it
    assert wait_result(ledger, job_id)["outcome"] == "succeeded"
    assert ran_with_mark_on_disk == [not repeatable]


def test_the_read_only_job_types_are_the_repeatable_ones(settings):
    from hostrelay_relay.handlers import HANDLERS, handler_class

    repeatable = {name for name, where in HANDLERS.items() if handler_class(name, where).repeatable}
    assert repeatable == {"ping", "ldap.group_members", "connector.group_members"}
