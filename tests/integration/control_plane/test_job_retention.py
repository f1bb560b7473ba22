"""JobRetentionDays: a finished job's record expires (DynamoDB TTL) that many days later."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from hostrelay.dal.tables import JobRecord
from hostrelay.domain.jobs import JobState
from tests.integration.control_plane.conftest import ADMIN, Pipeline

pytestmark = pytest.mark.integration


def test_finished_job_expires_after_the_templates_retention(pipeline: Pipeline) -> None:
    # Given the template's default retention (JobRetentionDays → JOB_RETENTION_DAYS)
    assert pipeline.aws.environments["ResultsFunction"]["JOB_RETENTION_DAYS"] == "90"
    # And a deployment that keeps jobs 3 days instead
    pipeline.aws.environments["ResultsFunction"]["JOB_RETENTION_DAYS"] = "3"
    pipeline = dataclasses.replace(pipeline, results=pipeline.aws.handler("ResultsFunction"))
    job = pipeline.create()
    pipeline.run_dispatch()
    # When the job ends
    pipeline.send_events(
        "dc01",
        {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "succeeded", "result": {}},
    )
    finished = pipeline.jobs.get(job.id, ADMIN)
    assert finished.state is JobState.SUCCEEDED
    # Then its record is deleted by TTL 3 days after it finished, not 90 (TTL counts seconds)
    expected = finished.updated_at + timedelta(days=3)
    assert JobRecord.get(job.id).purge_at == expected.replace(microsecond=0)


def test_a_job_still_running_never_expires(pipeline: Pipeline) -> None:
    # Given a job its host has not finished
    job = pipeline.create()
    pipeline.run_dispatch()
    # Then its record has no expiry yet
    assert JobRecord.get(job.id).purge_at is None
