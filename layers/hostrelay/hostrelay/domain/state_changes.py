"""The events put on the EventBridge bus when a job or a run ends (schema: docs/events.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hostrelay.domain.jobs import Job, JobErrorInfo

EVENT_SOURCE = "hostrelay"
JOB_STATE_CHANGE = "Job State Change"
RUN_STATE_CHANGE = "Run State Change"
# Bumped when a field changes meaning or goes away; new fields do not bump it.
SCHEMA_VERSION = "1"


class _Detail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    version: str = SCHEMA_VERSION


class JobStateChange(_Detail):
    """`detail` of a `Job State Change` event: a job reached a terminal state."""

    job_id: str
    type: str
    host: str
    state: str = Field(description="The terminal state")
    previous_state: str
    attempt: int
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None = Field(description="finished_at - created_at")
    error: JobErrorInfo | None
    connector_id: str | None = None

    @classmethod
    def of(cls, job: Job, previous_state: str) -> JobStateChange:
        finished = job.finished_at or job.updated_at
        return cls(
            job_id=job.id,
            type=job.type,
            host=job.host,
            state=job.state.value,
            previous_state=previous_state,
            attempt=job.attempt,
            created_by=job.created_by,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            duration_s=round((finished - job.created_at).total_seconds(), 3),
            error=job.error,
            connector_id=job.connector_id,
        )


class RunStateChange(_Detail):
    """`detail` of a `Run State Change` event: a fleet run reached a terminal state."""

    run_id: str
    type: str
    state: str = Field(description="SUCCEEDED, FAILED, ABORTED or CANCELED")
    reason: str | None = None
    counts: dict[str, int] = Field(description="Targets by state")
    created_by: str
    created_at: datetime
    finished_at: datetime


def event_detail(detail: _Detail) -> dict[str, Any]:
    """The JSON object EventBridge carries as `detail`."""
    return detail.model_dump(mode="json")
