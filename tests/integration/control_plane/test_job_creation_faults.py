"""Job creation cannot strand a job: DynamoDB, Lambda or SQS failing half-way, then retries."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pynamodb.connection.base import Connection
from pynamodb.exceptions import PynamoDBException

from hostrelay.dal.aws_clients import client
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.domain.jobs import REQUEUE_AFTER, Job, JobState
from hostrelay.logic.jobs import NewJob
from hostrelay_local.lambda_runtime import FakeLambdaContext
from tests.integration.control_plane.conftest import ADMIN, Pipeline

Published = Callable[[], list[tuple[str, bytes]]]


def _injected(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, operation)


@pytest.fixture
def job_write_fails_once(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The next DynamoDB write that would store a job fails (the first such call only)."""
    jobs_table = pipeline.aws.ref("JobsTable")
    original = Connection._make_api_call
    failed: list[str] = []

    def failing(self: Connection, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        writes_job = operation in ("PutItem", "TransactWriteItems") and jobs_table in json.dumps(
            kwargs
        )
        if writes_job and not failed:
            failed.append(operation)
            raise _injected(operation)
        return original(self, operation, kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(Connection, "_make_api_call", failing)
    return failed


def _refused_once(service: str, operation: str) -> Iterator[list[str]]:
    """The next `operation` call of the `service` client is refused."""
    failed: list[str] = []

    def refuse(**_: Any) -> None:
        if not failed:
            failed.append(operation)
            raise _injected(operation)

    events = client(service).meta.events
    events.register(f"before-call.{service}.{operation}", refuse)
    yield failed
    events.unregister(f"before-call.{service}.{operation}", refuse)


@pytest.fixture
def invoke_fails_once(pipeline: Pipeline) -> Iterator[list[str]]:
    """The next invocation of a function (the dispatch function's, by the API) is refused."""
    yield from _refused_once("lambda", "Invoke")


@pytest.fixture
def queue_send_fails_once(pipeline: Pipeline) -> Iterator[list[str]]:
    """The next message sent to an SQS queue is refused."""
    yield from _refused_once("sqs", "SendMessage")


def _request() -> NewJob:
    return NewJob(type="ping", host="dc01", params={}, idempotency_key="nightly-ping")


def _jobs_in_table(pipeline: Pipeline) -> list[str]:
    table = pipeline.aws.ref("JobsTable")
    items = pipeline.aws.client("dynamodb").scan(TableName=table)["Items"]
    return [item["id"]["S"] for item in items]


def _run_on_relay(pipeline: Pipeline, published: Published, job: Job) -> None:
    """The relay runs every envelope it receives once per (job, attempt) and reports it."""
    ran = {(json.loads(p)["envelope"]["job_id"], json.loads(p)["envelope"]["attempt"])
           for _, p in published()}  # fmt: skip
    assert ran == {(job.id, 1)}
    pipeline.send_events(
        "dc01",
        {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "succeeded",
         "result": {"pong": True}},
    )  # fmt: skip


def _sweep_at(pipeline: Pipeline, moment: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweeper tick at `moment`; dc01's relay kept sending heartbeats until then."""
    from hostrelay.logic import sweep

    hosts = HostRepository()
    online = hosts.get("dc01").state == "online"
    monkeypatch.setattr(sweep, "utcnow", lambda: moment)
    pipeline.sweeper({}, FakeLambdaContext(function_name="sweeper"))
    if online:  # its heartbeats carry real time, which the tick's clock has left behind
        hosts.seen("dc01", connected=True)


def test_job_write_failing_after_the_claim_leaves_the_key_free_for_the_retry(
    pipeline: Pipeline, published: Published, job_write_fails_once: list[str]
) -> None:
    # Given DynamoDB fails the write of the job
    # When a client creates a job with an idempotency key
    with pytest.raises(PynamoDBException):
        pipeline.jobs.create(_request(), ADMIN)
    assert job_write_fails_once  # the fault did happen
    # Then nothing was stored, and its retry with the same key creates the job at once
    assert _jobs_in_table(pipeline) == []
    job, created = pipeline.jobs.create(_request(), ADMIN)
    assert created
    # And a further retry returns that same job
    again, created_again = pipeline.jobs.create(_request(), ADMIN)
    assert (again.id, created_again) == (job.id, False)
    # And there is exactly one job, and it runs exactly once
    assert _jobs_in_table(pipeline) == [job.id]
    pipeline.run_dispatch()
    _run_on_relay(pipeline, published, job)
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.SUCCEEDED


def test_invoke_failing_after_the_write_queues_the_job_instead(
    pipeline: Pipeline, published: Published, invoke_fails_once: list[str]
) -> None:
    # Given Lambda refuses the API's invocation of the dispatch function
    # When a client creates a job, then retries with the same key
    job, created = pipeline.jobs.create(_request(), ADMIN)
    assert invoke_fails_once  # the fault did happen
    again, created_again = pipeline.jobs.create(_request(), ADMIN)
    # Then the first request got its job, the retry that same job, and no invocation waits
    assert created and not created_again and again.id == job.id
    assert _jobs_in_table(pipeline) == [job.id] and pipeline.invocations == []
    # And the dispatch queue carries it instead: dispatched from there, it runs exactly once
    pipeline.run_dispatch()
    _run_on_relay(pipeline, published, job)
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.SUCCEEDED


def test_invoke_and_queue_failing_after_the_write_is_recovered_by_the_sweeper(
    pipeline: Pipeline,
    published: Published,
    invoke_fails_once: list[str],
    queue_send_fails_once: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given Lambda refuses the invocation for a new job and SQS its dispatch message
    # When a client creates the job, then retries with the same key
    job, created = pipeline.jobs.create(_request(), ADMIN)
    assert invoke_fails_once and queue_send_fails_once  # the faults did happen
    assert pipeline.invocations == []
    again, created_again = pipeline.jobs.create(_request(), ADMIN)
    # Then the first request got its job (it is stored), the retry that same job
    assert created and not created_again and again.id == job.id
    assert _jobs_in_table(pipeline) == [job.id]
    assert pipeline.queue_bodies("DispatchQueue") == []  # nothing asks for its dispatch yet
    # When the sweeper ticks after REQUEUE_AFTER
    _sweep_at(pipeline, job.created_at + REQUEUE_AFTER, monkeypatch)
    pipeline.run_dispatch()
    # Then the job is published, runs exactly once and succeeds
    _run_on_relay(pipeline, published, job)
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.SUCCEEDED
    # And later ticks send nothing more
    _sweep_at(pipeline, job.created_at + 3 * REQUEUE_AFTER, monkeypatch)
    assert pipeline.queue_bodies("DispatchQueue") == []


def test_queued_job_of_an_offline_host_is_left_to_its_hello(
    pipeline: Pipeline, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job waiting for an offline host
    HostRepository().mark_offline("dc01")
    job, _ = pipeline.jobs.create(_request(), ADMIN)
    pipeline.run_dispatch()
    # When the sweeper ticks after REQUEUE_AFTER
    _sweep_at(pipeline, job.created_at + REQUEUE_AFTER, monkeypatch)
    # Then it asks for no dispatch (the host's hello will) and the job keeps waiting
    assert pipeline.queue_bodies("DispatchQueue") == []
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.QUEUED
    # And the hello does deliver it
    pipeline.send_events("dc01", {"kind": "hello", "relay_version": "0.1.0", "jobs": []})
    pipeline.run_dispatch()
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.DISPATCHED


def test_an_invocation_lambda_gave_up_on_is_dispatched_from_the_queue(
    pipeline: Pipeline, published: Published
) -> None:
    # Given a job whose dispatch invocation failed on every try (IoT refusing, say), so
    # Lambda sent its record to the function's on-failure destination, the dispatch queue
    job = pipeline.create()
    [event] = pipeline.invocations
    pipeline.invocations.clear()
    record = {
        "version": "1.0",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted",
                           "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "injected", "errorType": "ClientError"},
    }  # fmt: skip
    pipeline.aws.client("sqs").send_message(
        QueueUrl=pipeline.aws.ref("DispatchQueue"), MessageBody=json.dumps(record)
    )
    # When the dispatch function takes it from the queue
    response = pipeline.run_dispatch()
    # Then the job is published once, and runs exactly once
    assert response == {"batchItemFailures": []}
    _run_on_relay(pipeline, published, job)
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.SUCCEEDED
