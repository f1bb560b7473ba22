"""`Job State Change` events on the EventBridge bus: one per job that ends, never more."""

from __future__ import annotations

import logging
from datetime import timedelta

import boto3
import pytest

from hostrelay.clock import utcnow
from hostrelay.dal import state_change_events
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.state_change_events import StateChangePublisher
from hostrelay.domain.jobs import JobState
from hostrelay.domain.state_changes import RunStateChange
from hostrelay_local.event_recorder import EventRecorder, attach_recorder
from hostrelay_local.lambda_runtime import FakeLambdaContext
from tests.integration.control_plane.conftest import ADMIN, Pipeline

# The detail every Job State Change carries (docs/events.md).
JOB_DETAIL_FIELDS = {
    "version", "job_id", "type", "host", "state", "previous_state", "attempt", "created_by",
    "created_at", "started_at", "finished_at", "duration_s", "error", "connector_id",
}  # fmt: skip


@pytest.fixture
def recorder(pipeline: Pipeline) -> EventRecorder:
    """Given a rule on the state-change bus copying hostrelay events to a queue."""
    session = boto3.session.Session(region_name="us-east-1")
    url = attach_recorder(session, pipeline.aws.ref("StateChangeBus"))
    return EventRecorder(pipeline.aws.client("sqs"), url)


def result_event(job_id: str, outcome: str = "succeeded") -> dict[str, object]:
    error = None if outcome == "succeeded" else {"code": "exit_status", "message": "exited 3"}
    return {
        "kind": "result", "job_id": job_id, "attempt": 1, "outcome": outcome,
        "result": {"pong": True}, "error": error, "output": None,
    }  # fmt: skip


def test_a_job_that_ends_puts_exactly_one_event_with_the_documented_detail(
    pipeline: Pipeline, recorder: EventRecorder
) -> None:
    # Given a ping job dispatched and accepted: no event for these non-terminal changes
    job = pipeline.create()
    pipeline.run_dispatch()
    pipeline.send_events("dc01", {"kind": "accepted", "job_id": job.id, "attempt": 1})
    assert recorder.poll() == []
    # When its result arrives, and arrives again (a redelivery), with a contradicting late one
    pipeline.send_events("dc01", result_event(job.id))
    pipeline.send_events("dc01", result_event(job.id), result_event(job.id, "failed"))
    # Then the bus got one Job State Change, from hostrelay, describing the end
    [event] = recorder.poll()
    assert event["source"] == "hostrelay"
    assert event["detail-type"] == "Job State Change"
    detail = event["detail"]
    assert set(detail) == JOB_DETAIL_FIELDS
    done = pipeline.jobs.get(job.id, ADMIN)
    assert detail["version"] == "1"
    assert (detail["job_id"], detail["type"], detail["host"]) == (job.id, "ping", "dc01")
    assert (detail["state"], detail["previous_state"]) == ("SUCCEEDED", "IN_PROGRESS")
    assert detail["error"] is None and detail["attempt"] == 1
    assert detail["created_by"] == job.created_by
    assert detail["finished_at"] == done.finished_at.isoformat().replace("+00:00", "Z")
    assert detail["duration_s"] == pytest.approx(
        (done.finished_at - done.created_at).total_seconds(), abs=0.001
    )


def test_failed_canceled_expired_and_timed_out_jobs_each_put_one(
    pipeline: Pipeline, recorder: EventRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job that fails, one canceled while queued, one never delivered, one overdue
    failing = pipeline.create()
    pipeline.run_dispatch()
    pipeline.send_events("dc01", result_event(failing.id, "failed"))
    canceled = pipeline.create()
    pipeline.jobs.cancel(canceled.id, ADMIN)
    HostRepository().register("dc02")
    expiring = pipeline.create(host="dc02", deliver_by=utcnow() + timedelta(seconds=1))
    running = pipeline.create(timeout_s=1)
    pipeline.run_dispatch()
    pipeline.send_events("dc01", {"kind": "accepted", "job_id": running.id, "attempt": 1})
    # When the sweeper ticks a minute later
    from hostrelay.logic import sweep

    a_minute_later = utcnow() + timedelta(minutes=1)
    monkeypatch.setattr(sweep, "utcnow", lambda: a_minute_later)
    pipeline.sweeper({}, FakeLambdaContext(function_name="sweeper"))
    pipeline.sweeper({}, FakeLambdaContext(function_name="sweeper"))  # a second tick: no more
    # Then each job put one event with its terminal state and error
    ended = {e["detail"]["job_id"]: e["detail"] for e in recorder.poll()}
    assert len(recorder.events) == 4
    assert {job_id: detail["state"] for job_id, detail in ended.items()} == {
        failing.id: "FAILED",
        canceled.id: "CANCELED",
        expiring.id: "EXPIRED",
        running.id: "TIMED_OUT",
    }
    assert ended[failing.id]["error"] == {"code": "exit_status", "message": "exited 3"}
    assert ended[canceled.id]["previous_state"] == "QUEUED"
    assert ended[expiring.id]["error"]["code"]


def test_a_failed_put_is_logged_and_counted_and_the_job_still_ends(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the bus is gone (deleted, or the function may not put to it)
    pipeline.aws.client("events").delete_event_bus(Name=pipeline.aws.ref("StateChangeBus"))
    counted: list[str] = []
    monkeypatch.setattr(
        state_change_events.metrics,
        "add_metric",
        lambda name, unit, value: counted.append(name),
    )
    job = pipeline.create()
    pipeline.run_dispatch()
    # When its result arrives
    with caplog.at_level(logging.WARNING):
        response = pipeline.send_events("dc01", result_event(job.id))
    # Then the job ended all the same and the batch did not fail
    assert response == {"batchItemFailures": []}
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.SUCCEEDED
    # And the failure was logged (fixed message, no event body) and counted
    assert counted.count("state_change_events_not_put") == 1
    assert any(r.getMessage() == "state change event not put" for r in caplog.records)


def test_run_finished_puts_a_run_state_change(pipeline: Pipeline, recorder: EventRecorder) -> None:
    # When a run ends (the runs orchestration calls this)
    now = utcnow()
    publisher = StateChangePublisher(pipeline.aws.ref("StateChangeBus"))
    assert publisher.run_finished(
        RunStateChange(
            run_id="01JRUN",
            type="ping",
            state="ABORTED",
            reason="3 targets failed; max_errors is 2",
            counts={"SUCCEEDED": 4, "FAILED": 3, "CANCELED": 3},
            created_by="token:t/ops",
            created_at=now,
            finished_at=now,
        )
    )
    # Then the bus got a Run State Change with its counts and reason
    [event] = recorder.poll()
    assert event["detail-type"] == "Run State Change"
    assert event["detail"]["state"] == "ABORTED"
    assert event["detail"]["counts"]["FAILED"] == 3
    assert event["detail"]["reason"].startswith("3 targets failed")
