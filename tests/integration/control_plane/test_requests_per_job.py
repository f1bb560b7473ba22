"""A ping job costs few AWS requests: no job is read back on the way, and nothing is lost by it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import botocore.client
import pytest

from hostrelay.clock import utcnow
from hostrelay.dal.audit_repo import AuditRepository
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.domain.errors import InvalidRequest, NotFound
from hostrelay.domain.jobs import Job, JobState
from tests.integration.control_plane.conftest import ADMIN, Pipeline

pytestmark = pytest.mark.integration


@contextmanager
def aws_calls() -> Iterator[Counter[tuple[str, str, str]]]:
    """(service, operation, table or "") of every AWS call made meanwhile, counted."""
    calls: Counter[tuple[str, str, str]] = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(client: Any, operation: str, params: dict[str, Any]) -> Any:
        table = str(params.get("TableName", "")).rsplit("-", 1)[-1]
        calls[(client.meta.service_model.service_name, operation, table)] += 1
        return original(client, operation, params)

    botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


def job_creations() -> list[Any]:
    now = utcnow()
    return AuditRepository().read(now - timedelta(hours=1), now, 100, action="job.create")


def result(job_id: str, outcome: str = "succeeded", **fields: Any) -> dict[str, Any]:
    return {"kind": "result", "job_id": job_id, "attempt": 1, "outcome": outcome, **fields}


def test_a_ping_is_written_three_times_and_neither_it_nor_its_host_is_read(
    pipeline: Pipeline, published
) -> None:
    # Given a warm pipeline (signing key loaded, token and clients made)
    first = pipeline.create()
    pipeline.run_dispatch()
    pipeline.send_events("dc01", result(first.id))
    published_before = len(published())
    # When a ping is created, dispatched and its result arrives
    with aws_calls() as calls:
        job = pipeline.create()
        pipeline.run_dispatch()
        pipeline.send_events("dc01", result(job.id))
    # Then it ended SUCCEEDED after one publish
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.SUCCEEDED
    assert len(published()) == published_before + 1
    # And DynamoDB saw one transaction (the check that the host is online, job, audit line),
    # one write to dispatch it and one to finish it: neither the job nor its host is read
    dynamodb = {
        (op, table): n for (service, op, table), n in calls.items() if service == "dynamodb"
    }
    # (the results container refreshes the host's presence at most once in
    # PRESENCE_REFRESH_S: on a loaded machine that window can pass between the two results)
    assert dynamodb.pop(("UpdateItem", "HostsTable"), 0) <= 1
    assert dynamodb == {
        ("TransactWriteItems", ""): 1,
        ("PutItem", "JobsTable"): 1,
        ("UpdateItem", "JobsTable"): 1,
    }
    # And the other services: one asynchronous invocation of the dispatch function (no
    # dispatch queue: no SendMessage, nor the event source's ReceiveMessage and
    # DeleteMessageBatch), one publish, one state-change event
    others = {
        (service, op): n
        for (service, op, _), n in calls.items()
        if service != "dynamodb" and op not in ("ReceiveMessage", "DeleteMessage")
    }
    assert others == {
        ("lambda", "Invoke"): 1,
        ("iot-data", "Publish"): 1,
        ("events", "PutEvents"): 1,
    }


def test_a_dispatcher_that_never_saw_the_host_trusts_the_jobs_write(
    pipeline: Pipeline, published
) -> None:
    # Given a dispatch container that never found dc01 online
    pipeline.dispatch = pipeline.aws.handler("DispatchFunction")
    job = pipeline.create()
    # When it dispatches a job whose write found dc01 online
    with aws_calls() as calls:
        pipeline.run_dispatch()
    # Then the job is published without a read of the host
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.DISPATCHED
    assert len(published()) == 1
    assert not [c for c in calls if c[0] == "dynamodb" and c[1] == "GetItem"]


def test_a_job_for_an_offline_host_is_written_and_its_dispatcher_reads_the_host(
    pipeline: Pipeline, published
) -> None:
    # Given dc01 is offline
    HostRepository().mark_offline("dc01")
    # When a job is created for it and dispatched
    with aws_calls() as created:
        job = pipeline.create()
    with aws_calls() as dispatched:
        pipeline.run_dispatch()
    # Then the write that asked for the host online failed, the host was read, the job
    # written; the dispatcher read the host and left the job QUEUED for its hello
    assert created[("dynamodb", "TransactWriteItems", "")] == 2
    assert created[("dynamodb", "GetItem", "HostsTable")] == 1
    assert dispatched[("dynamodb", "GetItem", "HostsTable")] == 1
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.QUEUED
    assert published() == []


def test_unknown_and_revoked_hosts_are_refused_and_nothing_is_written(
    pipeline: Pipeline,
) -> None:
    # Given a revoked host
    HostRepository().register("dc02")
    HostRepository().revoke("dc02")
    audit_before = len(job_creations())
    # When jobs are asked for it and for a host never enrolled (with an idempotency key too)
    for host, reason in (("dc02", "is revoked"), ("nohost", "unknown host")):
        for key in (None, f"k-{host}"):
            with pytest.raises(InvalidRequest, match=reason):
                pipeline.create(host=host, idempotency_key=key)
    # Then no job, no claim, no audit line and no dispatch message exists
    assert JobRepository().list(limit=10)[0] == []
    assert len(job_creations()) == audit_before
    assert pipeline.queue_bodies("DispatchQueue") == []
    # And once the host is enrolled, the same key creates the job (no claim held it back)
    HostRepository().register("nohost")
    job = pipeline.create(host="nohost", idempotency_key="k-nohost")
    assert job.state is JobState.QUEUED


def test_a_job_canceled_while_its_message_waits_is_never_published(
    pipeline: Pipeline, published
) -> None:
    # Given a queued job whose dispatch message carries it as it was written
    job = pipeline.create()
    # When it is canceled before the dispatcher takes the message
    pipeline.jobs.cancel(job.id, ADMIN)
    response = pipeline.run_dispatch()
    # Then nothing was published and the job stays CANCELED
    assert response == {"batchItemFailures": []}
    assert published() == []
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.CANCELED


def test_a_result_for_a_job_its_id_does_not_date_is_applied_after_a_read(
    pipeline: Pipeline,
) -> None:
    # Given a job written before ids dated their jobs (created_at to the microsecond)
    now = utcnow().replace(microsecond=123456)
    old = JobRepository().create(
        Job(id="01HZZZZZZZZZZZZZZZZZZZZZZZ", type="ping", host="dc01", params={},
            state=JobState.DISPATCHED, timeout_s=60, created_by="test", created_at=now,
            updated_at=now)
    )  # fmt: skip
    # When its result arrives, then a duplicate of it
    pipeline.send_events("dc01", result(old.id, "failed", error={"code": "x", "message": "m"}))
    pipeline.send_events("dc01", result(old.id))
    # Then the first one ended it, with its index key and version right
    final = JobRepository().get(old.id)
    assert final.state is JobState.FAILED and final.error is not None
    assert final.version == old.version + 1
    [listed] = JobRepository().list(host="dc01", state=JobState.FAILED)[0]
    assert listed.id == old.id


def test_a_result_written_unread_keeps_index_event_and_start_right(pipeline: Pipeline) -> None:
    # Given an accepted job (its start time is set)
    job = pipeline.create()
    pipeline.run_dispatch()
    pipeline.send_events("dc01", {"kind": "accepted", "job_id": job.id, "attempt": 1})
    started = JobRepository().get(job.id).started_at
    # When another results container, which never saw it, gets its result
    pipeline.results = pipeline.aws.handler("ResultsFunction")
    pipeline.send_events("dc01", result(job.id, started_at=1.0))
    # Then the job is SUCCEEDED, found under its new state (and no longer due), with the
    # start time it had
    final = JobRepository().get(job.id)
    assert final.state is JobState.SUCCEEDED and final.started_at == started
    assert [j.id for j in JobRepository().list(host="dc01", state=JobState.SUCCEEDED)[0]] == [
        job.id
    ]
    assert list(JobRepository().due(utcnow().replace(year=2100))) == []


def test_a_result_for_a_job_that_does_not_exist_creates_nothing(pipeline: Pipeline) -> None:
    # Given no job with this (well-formed) id
    ghost = "01M94BD6PWHC7QYHWV51N3SZTN"
    # When a relay sends a result for it
    response = pipeline.send_events("dc01", result(ghost))
    # Then it is dropped: the conditional write made no item of it
    assert response == {"batchItemFailures": []}
    with pytest.raises(NotFound):
        JobRepository().get(ghost)
