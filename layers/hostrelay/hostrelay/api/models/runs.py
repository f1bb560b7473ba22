"""Models of the fleet-run routes: a run to create, a run and its targets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictInt, StringConstraints

from hostrelay.api.models.base import JobTypeName, RequestModel, ResponseModel, Timestamp
from hostrelay.api.models.jobs import JobErrorOut
from hostrelay.domain.tags import MAX_TAGS, TagKey, TagValue
from hostrelay_contract.names import HostName

# A limit: a count, or a percentage of the targets ("10%"); domain/runs.parse_limit checks it.
Limit = StrictInt | Annotated[str, StringConstraints(max_length=4)]


class RunTargetsIn(RequestModel):
    hosts: list[HostName] = Field(default_factory=list, max_length=5000)
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict, max_length=MAX_TAGS, description="Hosts carrying every key=value"
    )


class RunCreateRequest(RequestModel):
    """One job type for many hosts: by name, by tag, or both."""

    type: JobTypeName = Field(description="Job type, e.g. `ping` (host job types only)")
    params: dict[str, Any] = Field(default_factory=dict, description="As for POST /v1/jobs")
    targets: RunTargetsIn
    max_concurrency: Limit = Field(
        default=10,
        description="Most jobs in flight at once: a number, or a percentage of the targets "
        "rounded up (at least 1)",
    )
    max_errors: Limit = Field(
        default=0,
        description="Failed targets tolerated; one more aborts the run. A number, or a "
        "percentage of the targets rounded down",
    )
    timeout_s: StrictInt | None = Field(default=None, ge=1, le=86400)
    deliver_by: Timestamp | None = Field(
        default=None, description="A target whose host has not taken its job by then: EXPIRED"
    )
    continuous: StrictBool = Field(
        default=False, description="Hosts that gain the tags while the run is open join it"
    )
    expired_counts_as_error: StrictBool = Field(
        default=True, description="Whether an EXPIRED target counts toward max_errors"
    )
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)


class RunOut(ResponseModel):
    id: str
    type: str
    params: dict[str, Any]
    targets: dict[str, Any]
    state: str = Field(description="IN_PROGRESS, SUCCEEDED, FAILED, ABORTED or CANCELED")
    reason: str | None = Field(description="Why the run ended (or is stopping) as it did")
    stopping: str | None = Field(description="ABORTED or CANCELED while in-flight jobs finish")
    max_concurrency: int | str
    max_errors: int | str
    window: int = Field(description="max_concurrency resolved against the targets")
    error_limit: int = Field(description="max_errors resolved against the targets")
    timeout_s: int
    deliver_by: datetime | None
    continuous: bool
    expired_counts_as_error: bool
    total: int
    counts: dict[str, int] = Field(description="Targets by state")
    in_flight: int
    errors: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class RunPage(ResponseModel):
    runs: list[RunOut] = Field(description="Newest first")
    next_token: str | None = None


class RunTargetOut(ResponseModel):
    seq: int
    host: str
    job_id: str | None
    state: str = Field(description="PENDING, a job state, or SKIPPED")
    error: JobErrorOut | None
    started_at: datetime | None
    finished_at: datetime | None


class RunTargetPage(ResponseModel):
    targets: list[RunTargetOut]
    next_token: str | None = None
