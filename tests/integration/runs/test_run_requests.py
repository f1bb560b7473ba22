"""A run's AWS requests: targets started in batches, no job read back, the run item updated,
never rewritten, and one write of the run per end of a target."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from hostrelay.clock import utcnow
from hostrelay.dal.aws_clients import client
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.domain.jobs import REQUEUE_AFTER
from tests.integration.control_plane.test_requests_per_job import aws_calls
from tests.integration.runs.conftest import Fleet

pytestmark = pytest.mark.integration


def test_a_sliding_window_costs_one_run_write_per_end_and_reads_no_job(fleet: Fleet) -> None:
    # Given 12 hosts
    hosts = fleet.enroll(f"agent{n:02d}" for n in range(12))
    with aws_calls() as calls:
        # When a run over them starts with a window of 5
        run = fleet.start(targets={"hosts": hosts}, max_concurrency=5)
        started = Counter(calls)
        # And the relays answer one job at a time until it ends
        fleet.drive(run["id"], lambda host: "succeeded")
    assert fleet.run(run["id"])["state"] == "SUCCEEDED"
    # Then the named hosts were read in one batch, and the first window started in one
    # transaction (5 targets, their 5 jobs and the run item), read in one batch too; its 5
    # jobs went to the dispatch queue in one batch
    assert started[("dynamodb", "BatchGetItem", "")] == 2
    assert started[("dynamodb", "GetItem", "HostsTable")] == 0
    assert started[("dynamodb", "TransactWriteItems", "")] == 1
    assert started[("dynamodb", "GetItem", "RunsTable")] == 0
    assert started[("sqs", "SendMessageBatch", "")] == 1
    # And each of the 12 ends was one transaction (the 7 ends that made room started the
    # next target in it: 7 more batches of one message), after one read of the run
    ended = calls - started
    assert ended[("dynamodb", "TransactWriteItems", "")] == 12
    assert ended[("dynamodb", "GetItem", "RunsTable")] == 12
    assert ended[("sqs", "SendMessageBatch", "")] == 7
    assert ended[("dynamodb", "BatchGetItem", "")] == 7
    # And no job or target was read back, no single message sent, and the run item was
    # written whole once, when it was created
    assert calls[("dynamodb", "GetItem", "JobsTable")] == 0
    assert calls[("sqs", "SendMessage", "")] == 0
    assert calls[("dynamodb", "PutItem", "RunsTable")] == 1
    # Except the run's end, an update of the run item
    assert ended[("dynamodb", "UpdateItem", "RunsTable")] == 1


def test_a_refused_message_batch_leaves_its_jobs_to_the_sweepers_requeue(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 3 hosts, and SQS refusing the next batch of messages
    hosts = fleet.enroll(["web01", "web02", "web03"])
    refused: list[str] = []

    def refuse(**_: Any) -> None:
        if not refused:
            refused.append("SendMessageBatch")
            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "injected"}},
                "SendMessageBatch",
            )

    events = client("sqs").meta.events
    events.register("before-call.sqs.SendMessageBatch", refuse)
    try:
        # When a run over them starts
        run = fleet.start(targets={"hosts": hosts}, max_concurrency=3)
    finally:
        events.unregister("before-call.sqs.SendMessageBatch", refuse)
    # Then it started (its 3 targets in flight, their jobs written), but nothing was published
    assert refused
    assert fleet.run(run["id"])["in_flight"] == 3
    assert fleet.dispatch() == []
    # When the sweeper ticks after REQUEUE_AFTER (the relays kept their heartbeats meanwhile)
    from hostrelay.logic import sweep

    moment = utcnow() + REQUEUE_AFTER + timedelta(seconds=1)
    monkeypatch.setattr(sweep, "utcnow", lambda: moment)
    fleet.sweep()
    for host in hosts:
        HostRepository().seen(host, connected=True)
    # Then the jobs are dispatched, and the run ends SUCCEEDED
    fleet.drive(run["id"], lambda host: "succeeded")
    assert fleet.run(run["id"])["state"] == "SUCCEEDED"
