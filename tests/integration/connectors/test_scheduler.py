"""The scheduler function on moto: due connectors start one run per period, however many ticks."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from hostrelay.clock import isoformat, utcnow
from hostrelay.dal.inventory_tables import ConnectorRecord
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay_local.lambda_runtime import FakeLambdaContext
from hostrelay_local.template import REPO_ROOT
from tests.integration.connectors.conftest import ConnectorStack

pytestmark = pytest.mark.integration


def make_due(connector_id: str, ago: timedelta = timedelta(seconds=30)) -> str:
    """Move a connector's next run into the past, as if its time had come."""
    due = isoformat(utcnow() - ago)
    ConnectorRecord(id=connector_id).update(
        actions=[ConnectorRecord.next_run_at.set(due)], add_version_condition=False
    )
    return due


def tick(stack: ConnectorStack) -> dict[str, Any]:
    handler = stack.handler("SchedulerFunction")
    return handler({"source": "aws.scheduler"}, FakeLambdaContext(function_name="scheduler"))  # type: ignore[no-any-return]


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def runs_of(connector_id: str) -> list[Any]:
    jobs, _ = JobRepository().list_for_connector(connector_id, limit=100)
    return jobs


def test_concurrent_ticks_start_exactly_one_run_per_period(
    stack: ConnectorStack, atomic_aws_requests: None
) -> None:
    # Given two scheduled connectors whose next run is due
    ldap = stack.create_connector(schedule="rate(5 minutes)")
    aws = stack.create_connector(
        name="aws", kind="aws", target="cloud", settings={"regions": ["us-east-1"]},
        schedule="rate(1 hour)",
    )  # fmt: skip
    due = {c["id"]: make_due(c["id"]) for c in (ldap, aws)}
    # And eight warm scheduler containers (each cold start is one Lambda container)
    handlers = [stack.handler("SchedulerFunction") for _ in range(8)]
    barrier = threading.Barrier(len(handlers))
    reports: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def invoke(handler: Any) -> None:
        try:
            barrier.wait()
            reports.append(handler({}, FakeLambdaContext(function_name="scheduler")))
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    # When all of them tick at the same moment
    threads = [threading.Thread(target=invoke, args=(h,)) for h in handlers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Then each connector got exactly one job, and one tick claimed it
    for connector in (ldap, aws):
        assert len(runs_of(connector["id"])) == 1
        assert sum(connector["id"] in r["started"] for r in reports) == 1
    assert sum(len(r["started"]) for r in reports) == 2
    # And the ldap run went to the dispatcher, the aws one to the cloud-jobs queue
    assert [b["job_id"] for b in stack.queue_bodies("DispatchQueue")] == [runs_of(ldap["id"])[0].id]
    assert [b["job_id"] for b in stack.queue_bodies("CloudJobsQueue")] == [runs_of(aws["id"])[0].id]
    # And next_run_at moved one period past the due time
    stored = stack.reader.get(f"/v1/connectors/{ldap['id']}").body
    assert stored["last_job_id"] == runs_of(ldap["id"])[0].id
    assert stored["next_run_at"] > due[ldap["id"]]
    # When the scheduler ticks again within the period
    again = tick(stack)
    # Then nothing more starts
    assert again["started"] == []
    assert len(runs_of(ldap["id"])) == 1


def test_a_tick_late_by_several_periods_starts_one_run_and_skips_ahead(
    stack: ConnectorStack,
) -> None:
    connector = stack.create_connector(schedule="rate(5 minutes)")
    make_due(connector["id"], ago=timedelta(minutes=23))
    report = tick(stack)
    assert report["started"] == [connector["id"]]
    assert len(runs_of(connector["id"])) == 1
    next_run = parse(stack.reader.get(f"/v1/connectors/{connector['id']}").body["next_run_at"])
    # Due 23 minutes ago, every 5 minutes: the next slot is about 2 minutes from now
    assert utcnow() < next_run <= utcnow() + timedelta(minutes=2)
    assert tick(stack)["started"] == []


def test_a_run_still_going_skips_the_period_instead_of_piling_up(stack: ConnectorStack) -> None:
    # Given a scheduled connector whose last run is still queued (host offline)
    connector = stack.create_connector(schedule="rate(5 minutes)")
    make_due(connector["id"], ago=timedelta(minutes=6))
    assert tick(stack)["started"] == [connector["id"]]
    # When the next period comes while that run has not finished
    make_due(connector["id"], ago=timedelta(0))
    report = tick(stack)
    # Then the period is skipped, and next_run_at still moves on
    assert report["skipped_busy"] == [connector["id"]]
    assert len(runs_of(connector["id"])) == 1
    assert tick(stack)["skipped_busy"] == []


def test_disabled_and_unscheduled_connectors_never_start(stack: ConnectorStack) -> None:
    manual = stack.create_connector(name="manual")
    disabled = stack.create_connector(name="off", schedule="rate(1 minute)", enabled=False)
    for connector in (manual, disabled):
        make_due(connector["id"])
    assert tick(stack)["started"] == []
    assert runs_of(manual["id"]) == [] and runs_of(disabled["id"]) == []


def test_a_run_that_cannot_start_is_reported_and_the_schedule_moves_on(
    stack: ConnectorStack,
) -> None:
    from hostrelay.dal.hosts_repo import HostRepository

    connector = stack.create_connector(schedule="rate(5 minutes)")
    HostRepository().revoke("dc01")
    due = make_due(connector["id"])
    report = tick(stack)
    assert report["failed"] == [connector["id"]]
    assert runs_of(connector["id"]) == []
    assert stack.reader.get(f"/v1/connectors/{connector['id']}").body["next_run_at"] > due


def test_the_sample_event_runs_a_tick(stack: ConnectorStack) -> None:
    # Given the sample EventBridge Scheduler event used by `sam local invoke`
    event = json.loads((REPO_ROOT / "events" / "scheduler_tick.json").read_text())
    connector = stack.create_connector(schedule="rate(5 minutes)")
    make_due(connector["id"])
    report = stack.handler("SchedulerFunction")(event, FakeLambdaContext("scheduler"))
    assert report["started"] == [connector["id"]]
