"""The job pipeline through the real dispatch, results and sweeper handlers on moto."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest

from hostrelay.clock import utcnow
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.domain.jobs import JobState
from hostrelay.logic import ingest
from hostrelay.logic.jobs import NewJob
from hostrelay.sqs_batch import BatchFailed
from hostrelay_local.lambda_runtime import FakeLambdaContext
from hostrelay_relay.envelope import load_public_key, verify_envelope
from tests.conftest import sqs_event
from tests.integration.control_plane.conftest import ADMIN, Pipeline, rule_message


def test_queued_job_is_signed_published_and_verifiable_by_the_relay(
    pipeline: Pipeline, published
) -> None:
    # Given a ping job for an online host
    job = pipeline.create(params={"message": "hi"})
    # When the dispatch function consumes the dispatch queue
    response = pipeline.run_dispatch()
    # Then the job is DISPATCHED and its envelope went to the host's own jobs topic
    assert response == {"batchItemFailures": []}
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.DISPATCHED
    [(topic, payload)] = published()
    assert topic == "hostrelay/dc01/jobs"
    # And the relay's verifier accepts it with the public key the dispatcher stored in SSM
    pem = pipeline.aws.client("ssm").get_parameter(Name="/hostrelay/dev/signing-public-key")
    envelope = verify_envelope(
        payload,
        public_key=load_public_key(pem["Parameter"]["Value"].encode()),
        host="dc01",
        seen_nonce=lambda nonce, exp: False,
    )
    assert (envelope.job_id, envelope.type, envelope.params) == (job.id, "ping", {"message": "hi"})


def test_private_signing_key_is_a_secure_string(pipeline: Pipeline) -> None:
    pipeline.create()
    pipeline.run_dispatch()
    described = pipeline.aws.client("ssm").describe_parameters()["Parameters"]
    kinds = {p["Name"]: p["Type"] for p in described}
    assert kinds["/hostrelay/dev/signing-key"] == "SecureString"


def test_job_for_offline_host_waits_and_is_republished_on_hello(
    pipeline: Pipeline, published
) -> None:
    # Given host dc01 went offline and a job was queued for it
    HostRepository().mark_offline("dc01")
    job = pipeline.create()
    pipeline.run_dispatch()
    # Then nothing was published and the job is still QUEUED
    assert published() == []
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.QUEUED
    # When the relay reconnects and says hello
    pipeline.send_events("dc01", {"kind": "hello", "relay_version": "0.1.0", "jobs": []})
    pipeline.run_dispatch()
    # Then the pending job is published and the host is online again
    assert [topic for topic, _ in published()] == ["hostrelay/dc01/jobs"]
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.DISPATCHED
    assert HostRepository().get("dc01").state == "online"


def test_accepted_then_result_succeeds_and_duplicates_change_nothing(pipeline: Pipeline) -> None:
    job = pipeline.create()
    pipeline.run_dispatch()
    accepted = {"kind": "accepted", "job_id": job.id, "attempt": 1}
    result = {
        "kind": "result", "job_id": job.id, "attempt": 1, "outcome": "succeeded",
        "result": {"pong": True}, "error": None, "output": None,
    }  # fmt: skip
    pipeline.send_events("dc01", accepted)
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.IN_PROGRESS
    pipeline.send_events("dc01", result)
    done = pipeline.jobs.get(job.id, ADMIN)
    # When the same events arrive again, and a contradicting late result
    late = dict(result, outcome="failed", error={"code": "x", "message": "late"})
    pipeline.send_events("dc01", accepted, result, late)
    # Then the terminal state and its result never change
    again = pipeline.jobs.get(job.id, ADMIN)
    assert again.state is JobState.SUCCEEDED
    assert again.result == {"pong": True}
    assert again.version == done.version
    assert again.finished_at is not None and again.started_at is not None


def test_result_before_accepted_is_applied_and_late_accepted_ignored(pipeline: Pipeline) -> None:
    job = pipeline.create()
    pipeline.run_dispatch()
    pipeline.send_events(
        "dc01",
        {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "failed",
         "result": None, "error": {"code": "boom", "message": "it broke"}},
        {"kind": "accepted", "job_id": job.id, "attempt": 1},
    )  # fmt: skip
    final = pipeline.jobs.get(job.id, ADMIN)
    assert final.state is JobState.FAILED
    assert final.error is not None and final.error.code == "boom"


def test_event_from_another_host_cannot_touch_the_job(pipeline: Pipeline) -> None:
    # Given a job of dc01 and a second host dc02
    HostRepository().register("dc02")
    job = pipeline.create()
    pipeline.run_dispatch()
    # When dc02 publishes a result naming dc01's job
    pipeline.send_events(
        "dc02",
        {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "succeeded",
         "result": {"forged": True}},
    )  # fmt: skip
    # Then the job is untouched: the sender is the topic, not the payload
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.DISPATCHED


def test_retryable_failure_requeues_a_new_attempt_with_backoff(pipeline: Pipeline) -> None:
    job = pipeline.create(max_attempts=2)
    pipeline.run_dispatch()
    pipeline.send_events(
        "dc01",
        {"kind": "accepted", "job_id": job.id, "attempt": 1},
        {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "failed",
         "error": {"code": "busy", "message": "try later", "retryable": True}},
    )  # fmt: skip
    retried = pipeline.jobs.get(job.id, ADMIN)
    assert (retried.state, retried.attempt) == (JobState.QUEUED, 2)
    sqs = pipeline.aws.client("sqs")
    attrs = sqs.get_queue_attributes(
        QueueUrl=pipeline.aws.ref("DispatchQueue"),
        AttributeNames=["ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    # And events of the old attempt no longer count
    pipeline.send_events(
        "dc01",
        {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "succeeded"},
    )
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.QUEUED


def test_non_retryable_failure_ends_the_job_even_with_attempts_left(pipeline: Pipeline) -> None:
    job = pipeline.create(max_attempts=3)
    pipeline.run_dispatch()
    pipeline.send_events(
        "dc01",
        {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "failed",
         "error": {"code": "bad", "message": "no", "retryable": False}},
    )  # fmt: skip
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.FAILED


def test_cancel_of_running_job_waits_for_relay_confirmation(pipeline: Pipeline, published) -> None:
    job = pipeline.create(params={"sleep_s": 30})
    pipeline.run_dispatch()
    pipeline.send_events("dc01", {"kind": "accepted", "job_id": job.id, "attempt": 1})
    # When an operator cancels
    requested = pipeline.jobs.cancel(job.id, ADMIN)
    # Then the job still runs, and a signed cancel goes to the relay
    assert requested.state is JobState.IN_PROGRESS
    assert requested.cancel_requested_at is not None
    pipeline.run_dispatch()
    cancel_payload = published()[-1][1]
    assert json.loads(cancel_payload)["envelope"]["type"] == "cancel"
    # When the relay confirms
    pipeline.send_events(
        "dc01",
        {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "canceled",
         "error": {"code": "canceled", "message": "canceled on request"}},
    )  # fmt: skip
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.CANCELED


def test_cancel_of_queued_job_is_immediate(pipeline: Pipeline) -> None:
    HostRepository().mark_offline("dc01")
    job = pipeline.create()
    assert pipeline.jobs.cancel(job.id, ADMIN).state is JobState.CANCELED


def test_relay_rejection_ends_the_job_rejected_with_the_reason(pipeline: Pipeline) -> None:
    job = pipeline.create()
    pipeline.run_dispatch()
    pipeline.send_events(
        "dc01",
        {"kind": "rejected", "job_id": job.id, "attempt": 1, "reason": "invalid_params",
         "message": "sleep_s: must be >= 0"},
    )  # fmt: skip
    final = pipeline.jobs.get(job.id, ADMIN)
    assert final.state is JobState.REJECTED
    assert final.error is not None and final.error.code == "rejected_invalid_params"


def test_unreadable_events_are_dropped_without_failing_the_batch(pipeline: Pipeline) -> None:
    [garbage] = sqs_event(["not json"])["Records"]
    response = pipeline.results({"Records": [garbage]}, FakeLambdaContext(function_name="results"))
    assert response == {"batchItemFailures": []}


def test_output_chunks_are_assembled_into_s3_with_sha256(pipeline: Pipeline) -> None:
    import base64
    import hashlib
    import zlib

    # Given a job whose relay sends 32 chunks, five to an event, the events out of order,
    # some compressed and some not (they go through OutputTopicRule into the output table)
    job = pipeline.create()
    pipeline.run_dispatch()
    parts = [f"line {n}\n".encode() for n in range(31)] + [b"\xff binary tail"]
    events = []
    for first in range(0, len(parts), 5):
        group = parts[first : first + 5]
        data = b"".join(group)
        encoding = "zlib" if first % 10 == 0 else "identity"
        events.append(
            {"kind": "output", "job_id": job.id, "attempt": 1, "encoding": encoding,
             "first_seq": first, "last_seq": first + len(group) - 1,
             "data": base64.b64encode(zlib.compress(data) if encoding == "zlib" else data).decode(),
             "chunks": [{"seq": first + n, "stream": "stderr" if (first + n) % 7 == 0 else "stdout",
                         "size": len(part)} for n, part in enumerate(group)]}
        )  # fmt: skip
    body = b"".join(parts)
    pipeline.send_events(
        "dc01",
        *reversed(events),
        {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "succeeded",
         "output": {"size": len(body), "chunks": len(parts)}},
    )  # fmt: skip
    # Then the job's log is every chunk in seq order, in S3, with its size and digest
    output = pipeline.jobs.get(job.id, ADMIN).output
    assert output is not None
    assert (output.size, output.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    assert output.chunks == len(parts)
    bucket, key = output.location.removeprefix("s3://").split("/", 1)  # type: ignore[union-attr]
    stored = pipeline.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == body


@pytest.mark.parametrize("route", ["output rule", "results queue"])
def test_malformed_output_events_store_nothing(pipeline: Pipeline, route: str) -> None:
    import base64
    import zlib

    from hostrelay.dal.output_store import OutputStore

    job = pipeline.create()
    pipeline.run_dispatch()

    def event(chunks: list[dict[str, object]], data: bytes, encoding: str = "identity") -> dict:
        sent = {"kind": "output", "job_id": job.id, "attempt": 1, "chunks": chunks,
                "encoding": encoding, "data": base64.b64encode(data).decode()}  # fmt: skip
        if route == "output rule":  # stored as sent, checked when read
            sent["first_seq"] = chunks[0]["seq"] if chunks else 0
            sent["last_seq"] = chunks[-1]["seq"] if chunks else 0
        return sent

    def chunk(seq: int, size: int, stream: str = "stdout") -> dict[str, object]:
        return {"seq": seq, "stream": stream, "size": size}

    bomb = zlib.compress(b"\0" * 10_000_000)
    pipeline.send_events(
        "dc01",
        event([chunk(0, 17 * 1024)], b"x" * 17 * 1024),  # a chunk over 16 KiB
        event([chunk(n, 1) for n in range(65)], b"x" * 65),  # more than 64 chunks
        event([chunk(0, 1, "stdin")], b"x"),  # no such stream
        event([], b""),  # no chunks
        event([chunk(0, 1), chunk(2, 1)], b"xx"),  # a gap in seq
        event([chunk(0, 3)], b"xx"),  # data shorter than the index says
        event([chunk(0, 2)], b"xx", "gzip"),  # unknown encoding
        event([chunk(0, 4)], b"not zlib", "zlib"),  # not what it says it is
        event([chunk(0, 16384)], bomb, "zlib"),  # expands far beyond its index
    )
    # Then none of them can be read
    assert OutputStore().chunks("dc01", job.id, 1) == []
    # while a well-formed one is
    pipeline.send_events("dc01", event([chunk(0, 2)], zlib.compress(b"ok"), "zlib"))
    assert [c.data for c in OutputStore().chunks("dc01", job.id, 1)] == [b"ok"]


def test_sweeper_expires_undelivered_and_times_out_overdue_jobs(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job that must be delivered within a second to an offline host
    HostRepository().mark_offline("dc01")
    expiring = pipeline.create(deliver_by=utcnow() + timedelta(seconds=1))
    # And a running job with a 1 s timeout on another host
    HostRepository().register("dc02")
    HostRepository().seen("dc02")
    running = pipeline.create(host="dc02", timeout_s=1)
    pipeline.run_dispatch()
    pipeline.send_events("dc02", {"kind": "accepted", "job_id": running.id, "attempt": 1})
    # When the sweeper ticks a minute later: past the delivery deadline, the timeout and its
    # grace period (the sweeper reads the clock it is given, nobody waits for it)
    from hostrelay.logic import sweep

    a_minute_later = utcnow() + timedelta(minutes=1)
    monkeypatch.setattr(sweep, "utcnow", lambda: a_minute_later)
    pipeline.sweeper({}, FakeLambdaContext(function_name="sweeper"))
    # Then the first EXPIRED, the second TIMED_OUT, and a cancel went to dc02
    assert pipeline.jobs.get(expiring.id, ADMIN).state is JobState.EXPIRED
    assert pipeline.jobs.get(running.id, ADMIN).state is JobState.TIMED_OUT
    actions = [(b["job_id"], b["action"]) for b in pipeline.queue_bodies("DispatchQueue")]
    assert (running.id, "cancel") in actions


def test_sweeper_marks_hosts_silent_for_three_heartbeats_offline(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hostrelay.logic import sweep

    monkeypatch.setattr(sweep, "utcnow", lambda: utcnow() + timedelta(seconds=91))
    pipeline.sweeper({}, FakeLambdaContext(function_name="sweeper"))
    assert HostRepository().get("dc01").state == "offline"


def test_idempotency_key_returns_same_job_and_conflicts_on_other_body(pipeline: Pipeline) -> None:
    from hostrelay.domain.errors import Conflict

    first, created = pipeline.jobs.create(
        NewJob(type="ping", host="dc01", params={}, idempotency_key="k"), ADMIN
    )
    again, created_again = pipeline.jobs.create(
        NewJob(type="ping", host="dc01", params={}, idempotency_key="k"), ADMIN
    )
    assert created and not created_again and again.id == first.id
    with pytest.raises(Conflict):
        pipeline.jobs.create(
            NewJob(type="ping", host="dc01", params={"message": "x"}, idempotency_key="k"), ADMIN
        )


def _output_event(job_id: str, seq: int, data: bytes, *, keyed: bool = True) -> dict[str, object]:
    """An output event of one chunk; `keyed` ones (with last_seq) take OutputTopicRule."""
    import base64

    event: dict[str, object] = {
        "kind": "output", "job_id": job_id, "attempt": 1, "encoding": "identity",
        "chunks": [{"seq": seq, "stream": "stdout", "size": len(data)}],
        "data": base64.b64encode(data).decode(),
    }  # fmt: skip
    if keyed:
        event.update(first_seq=seq, last_seq=seq)
    return event


def _result_with_output(job_id: str, body: bytes, chunks: int) -> dict[str, object]:
    return {"kind": "result", "job_id": job_id, "attempt": 1, "outcome": "succeeded",
            "output": {"size": len(body), "chunks": chunks}}  # fmt: skip


def test_result_waits_for_output_still_on_its_way(pipeline: Pipeline) -> None:
    import hashlib

    # Given a job whose result overtook its last output chunk
    job = pipeline.create()
    pipeline.run_dispatch()
    pipeline.send_events("dc01", _output_event(job.id, 0, b"first\n"))
    # When the result comes before the second chunk, straight from the topic rule
    pipeline.send_events("dc01", _result_with_output(job.id, b"first\nsecond", 2))
    # Then it waits on the results queue, the job not ended
    [queued] = pipeline.queue_bodies("ResultsQueue")
    assert json.loads(base64.b64decode(queued["payload"]))["kind"] == "result"
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.DISPATCHED
    # When SQS delivers it before the chunk (alone in its batch, with an accepted)
    with pytest.raises(BatchFailed):  # the whole batch failed: SQS keeps it all
        pipeline.send_events(
            "dc01", _result_with_output(job.id, b"first\nsecond", 2), receive_count=2
        )
    accepted = {"kind": "accepted", "job_id": job.id, "attempt": 1}
    response = pipeline.send_events(
        "dc01", accepted, _result_with_output(job.id, b"first\nsecond", 2), receive_count=3
    )
    # Then it is handed back to SQS (delivered again later) and the job has not ended
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.IN_PROGRESS
    # When the chunk is stored and SQS delivers the result again
    pipeline.send_events("dc01", _output_event(job.id, 1, b"second"))
    response = pipeline.send_events(
        "dc01", _result_with_output(job.id, b"first\nsecond", 2), receive_count=4
    )
    # Then the job SUCCEEDED with the whole log
    assert response == {"batchItemFailures": []}
    final = pipeline.jobs.get(job.id, ADMIN)
    assert final.state is JobState.SUCCEEDED
    assert final.output is not None
    assert (final.output.sha256, final.output.chunks, final.output.missing) == (
        hashlib.sha256(b"first\nsecond").hexdigest(),
        2,
        0,
    )


def test_early_results_of_one_batch_share_one_wait(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given ten jobs whose results all came before their output (OUTPUT_WAIT_S is 0.2 here)
    jobs = [pipeline.create() for _ in range(10)]
    pipeline.run_dispatch()
    accepted = [{"kind": "accepted", "job_id": job.id, "attempt": 1} for job in jobs]
    results = [_result_with_output(job.id, b"late", 1) for job in jobs]
    # (the waits the results function asks for are recorded, whatever the machine's load)
    slept: list[float] = []

    def recording_sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(
        ingest, "time", SimpleNamespace(monotonic=time.monotonic, sleep=recording_sleep)
    )
    # When they come in one batch of the results queue (where such results wait)
    response = pipeline.send_events("dc01", *accepted, *results, receive_count=2)
    # Then the batch waited 0.2 s in all, not 0.2 s per result (2 s), and each result is
    # handed back to SQS while the jobs stay running
    assert slept
    assert sum(slept) <= 0.2 + 1e-6
    failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    assert failed == {f"msg-{n}" for n in range(10, 20)}
    assert {pipeline.jobs.get(job.id, ADMIN).state for job in jobs} == {JobState.IN_PROGRESS}


@pytest.mark.parametrize("keyed", [True, False], ids=["output rule", "results queue"])
def test_result_on_its_last_delivery_ends_the_job_and_late_output_completes_it(
    pipeline: Pipeline, keyed: bool
) -> None:
    import hashlib

    # Given a job whose second chunk has not arrived by the result's last delivery
    job = pipeline.create()
    pipeline.run_dispatch()
    pipeline.send_events("dc01", _output_event(job.id, 0, b"first\n", keyed=keyed))
    result = _result_with_output(job.id, b"first\nsecond", 2)
    response = pipeline.send_events("dc01", result, receive_count=5)
    # Then the job ends with the log it has, saying a chunk is missing
    assert response == {"batchItemFailures": []}
    ended = pipeline.jobs.get(job.id, ADMIN)
    assert ended.state is JobState.SUCCEEDED
    assert ended.output is not None
    assert (ended.output.size, ended.output.chunks, ended.output.missing) == (6, 1, 1)
    # When the chunk comes after all, through the results queue (an older relay's form)
    pipeline.send_events("dc01", _output_event(job.id, 1, b"second", keyed=False))
    # Then the stored log and its digest include it, and the job stays SUCCEEDED
    final = pipeline.jobs.get(job.id, ADMIN)
    assert final.state is JobState.SUCCEEDED
    assert final.output is not None
    assert final.output.sha256 == hashlib.sha256(b"first\nsecond").hexdigest()
    assert (final.output.chunks, final.output.missing) == (2, 0)


def test_output_of_another_host_never_reaches_the_job(pipeline: Pipeline) -> None:
    import hashlib

    from hostrelay.dal.output_store import OutputStore

    # Given dc01's job with one chunk of output stored, and a second host dc02
    HostRepository().register("dc02")
    job = pipeline.create()
    pipeline.run_dispatch()
    pipeline.send_events("dc01", _output_event(job.id, 0, b"genuine\n"))
    # When dc02 publishes output naming dc01's job: the same seq, and one more
    pipeline.send_events(
        "dc02",
        _output_event(job.id, 0, b"forged!\n"),
        _output_event(job.id, 1, b"rm -rf /\n"),
        _output_event(job.id, 1, b"forged too", keyed=False),
    )
    # Then dc01's job reads only its own output, and its log is only that
    assert [c.data for c in OutputStore().chunks("dc01", job.id, 1)] == [b"genuine\n"]
    pipeline.send_events("dc01", _result_with_output(job.id, b"genuine\n", 1))
    final = pipeline.jobs.get(job.id, ADMIN)
    assert final.output is not None
    assert final.output.sha256 == hashlib.sha256(b"genuine\n").hexdigest()


def test_result_after_a_change_elsewhere_is_applied_to_the_fresh_job(pipeline: Pipeline) -> None:
    # Given a running job whose `accepted` this results container applied
    job = pipeline.create()
    pipeline.run_dispatch()
    pipeline.send_events("dc01", {"kind": "accepted", "job_id": job.id, "attempt": 1})
    # And an operator asked to cancel it meanwhile (another function changed the job)
    pipeline.jobs.cancel(job.id, ADMIN)
    # When the relay reports it finished first
    pipeline.send_events(
        "dc01", {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "succeeded"}
    )
    # Then it is SUCCEEDED and the cancel request written elsewhere is kept
    final = pipeline.jobs.get(job.id, ADMIN)
    assert final.state is JobState.SUCCEEDED
    assert final.cancel_requested_at is not None


def test_events_of_a_retry_counted_elsewhere_are_not_taken_for_stale(pipeline: Pipeline) -> None:
    # Given a job with two attempts whose first attempt this container saw start
    job = pipeline.create(max_attempts=2)
    pipeline.run_dispatch()
    pipeline.send_events("dc01", {"kind": "accepted", "job_id": job.id, "attempt": 1})
    # And another results container that applied its retryable failure (attempt 2 queued)
    other = pipeline.aws.handler("ResultsFunction")
    failure = {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "failed",
               "error": {"code": "busy", "message": "try later", "retryable": True}}  # fmt: skip
    other(sqs_event([rule_message("dc01", failure)]), FakeLambdaContext(function_name="results"))
    assert pipeline.jobs.get(job.id, ADMIN).attempt == 2
    # When attempt 2 starts and succeeds, reported to the first container
    pipeline.send_events(
        "dc01",
        {"kind": "accepted", "job_id": job.id, "attempt": 2},
        {"kind": "result", "job_id": job.id, "attempt": 2, "outcome": "succeeded"},
    )
    # Then both events count
    final = pipeline.jobs.get(job.id, ADMIN)
    assert (final.state, final.attempt) == (JobState.SUCCEEDED, 2)


def test_dispatch_remembers_online_hosts_briefly_and_offline_hosts_never(
    pipeline: Pipeline, published
) -> None:
    from hostrelay.logic.dispatch import ONLINE_MEMORY_S, DispatchRequest
    from hostrelay.settings import DispatchSettings, load_settings
    from hostrelay.wiring import build_dispatcher

    now = [1000.0]
    dispatcher = build_dispatcher(load_settings(DispatchSettings))
    dispatcher._monotonic = lambda: now[0]
    hosts = HostRepository()

    def dispatch() -> str:
        job = pipeline.create()
        pipeline.queue_bodies("DispatchQueue")  # the test drives the dispatcher itself
        return dispatcher.handle(DispatchRequest(job_id=job.id, attempt=1))

    # A host found offline is looked up again for the next job: it may be back
    hosts.mark_offline("dc01")
    assert dispatch() == "host_offline"
    hosts.seen("dc01", connected=True)
    assert dispatch() == "published"
    # One found online is trusted for a moment (a lost publish is re-sent on its hello) ...
    hosts.mark_offline("dc01")
    now[0] += ONLINE_MEMORY_S / 2
    assert dispatch() == "published"
    # ... and looked up again after it
    now[0] += ONLINE_MEMORY_S
    assert dispatch() == "host_offline"
    assert len(published()) == 2


def test_result_alone_takes_its_start_time_from_the_relay(pipeline: Pipeline) -> None:
    # Given a dispatched job that ended at once on its relay (no `accepted` was sent)
    job = pipeline.create()
    pipeline.run_dispatch()
    started = utcnow() - timedelta(milliseconds=5)
    # When its result arrives, and a far-off start time for another job
    pipeline.send_events(
        "dc01",
        {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "succeeded",
         "started_at": started.timestamp()},
    )  # fmt: skip
    other = pipeline.create()
    pipeline.run_dispatch()
    pipeline.send_events(
        "dc01",
        {"kind": "result", "job_id": other.id, "attempt": 1, "outcome": "succeeded",
         "started_at": 1.0},
    )  # fmt: skip
    # Then the job is SUCCEEDED, started when the relay says
    final = pipeline.jobs.get(job.id, ADMIN)
    assert final.state is JobState.SUCCEEDED
    assert final.started_at is not None
    assert abs((final.started_at - started).total_seconds()) < 0.002
    # and a relay clock far off cannot put the start before the job existed
    late = pipeline.jobs.get(other.id, ADMIN)
    assert late.started_at is not None and late.started_at >= late.created_at


def test_output_that_cannot_be_written_is_left_for_redelivery_alone(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    from hostrelay.dal.output_store import OutputStore

    # Given DynamoDB refusing the output write, and a batch of two output events and a result
    job = pipeline.create()
    other = pipeline.create()
    pipeline.run_dispatch()

    def refuse(self: OutputStore, items: object) -> None:
        raise RuntimeError("throttled")

    monkeypatch.setattr(OutputStore, "put_batches", refuse)
    chunk = {"seq": 0, "stream": "stdout", "size": 2}
    events = [
        {"kind": "output", "job_id": job.id, "attempt": 1, "chunks": [chunk],
         "data": base64.b64encode(b"hi").decode()},
        {"kind": "output", "job_id": job.id, "attempt": 1, "chunks": [{**chunk, "seq": 1}],
         "data": base64.b64encode(b"yo").decode()},
        {"kind": "result", "job_id": other.id, "attempt": 1, "outcome": "succeeded"},
    ]  # fmt: skip
    event = sqs_event([rule_message("dc01", e) for e in events])
    # When the results function takes it
    response = pipeline.results(event, FakeLambdaContext(function_name="results"))
    # Then only the two output messages fail (SQS delivers them again); the result counts
    ids = [record["messageId"] for record in event["Records"]]
    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in ids[:2]]}
    assert pipeline.jobs.get(other.id, ADMIN).state is JobState.SUCCEEDED
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.DISPATCHED


def test_sample_results_event_applies_to_its_job(pipeline: Pipeline) -> None:
    from hostrelay.dal.jobs_repo import JobRepository
    from hostrelay_local.template import REPO_ROOT

    # Given the job the sample event in events/ is about, queued for dc01
    sample = json.loads((REPO_ROOT / "events" / "results_sqs.json").read_text())
    job = pipeline.create()
    job_id = json.loads(base64.b64decode(json.loads(sample["Records"][0]["body"])["payload"]))[
        "job_id"
    ]
    JobRepository().create(job.model_copy(update={"id": job_id, "version": 0}))
    # When the results function takes the sample (an output event, then the result)
    response = pipeline.results(sample, FakeLambdaContext(function_name="results"))
    # Then the job SUCCEEDED with its output stored
    assert response == {"batchItemFailures": []}
    final = pipeline.jobs.get(job_id, ADMIN)
    assert final.state is JobState.SUCCEEDED
    assert final.output is not None and final.output.tail.startswith("uid=65534(nobody)")
