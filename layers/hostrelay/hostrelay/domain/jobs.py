"""Job states, the transitions between them, and the job document."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ulid import ULID


class JobState(StrEnum):
    QUEUED = "QUEUED"
    DISPATCHED = "DISPATCHED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.TIMED_OUT,
        JobState.CANCELED,
        JobState.REJECTED,
        JobState.EXPIRED,
    }
)


def is_write_back(job_type: str) -> bool:
    """A connector's membership change (okta/authentik/ldap/connector `.group_members`): audited
    with its change, and no sync run in the connector metrics."""
    return job_type.endswith(".group_members")


def new_job_identity(now: datetime) -> tuple[str, datetime]:
    """A new job's id and created_at: a ULID of the moment, which is kept to the
    millisecond, so the job's creation time (part of its index key) follows from its id
    and a result can be written without reading the job first (dal/jobs_repo.py)."""
    created_at = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return str(ULID.from_datetime(created_at)), created_at


def created_at_of(job_id: str) -> datetime | None:
    """The created_at of a job made by `new_job_identity` (None: not a ULID)."""
    try:
        return ULID.from_str(job_id).datetime
    except ValueError:
        return None


# A job without deliver_by must reach its host within this long, or it ends EXPIRED.
DEFAULT_DELIVERY_WINDOW = timedelta(days=7)

# Back-edges to QUEUED are retries (a new attempt); every other edge moves forward.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset(
        {
            JobState.DISPATCHED,
            JobState.IN_PROGRESS,
            JobState.EXPIRED,
            JobState.CANCELED,
            JobState.REJECTED,
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.TIMED_OUT,
        }
    ),
    JobState.DISPATCHED: frozenset(
        {
            JobState.IN_PROGRESS,
            JobState.EXPIRED,  # published, never accepted, and deliver_by passed
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.TIMED_OUT,
            JobState.CANCELED,
            JobState.REJECTED,
            JobState.QUEUED,
        }
    ),
    JobState.IN_PROGRESS: frozenset(
        {
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.TIMED_OUT,
            JobState.CANCELED,
            JobState.QUEUED,
        }
    ),
}


def can_transition(current: JobState, target: JobState) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


class JobErrorInfo(BaseModel):
    model_config = ConfigDict(defer_build=True)

    code: str
    message: str


class JobOutputInfo(BaseModel):
    model_config = ConfigDict(defer_build=True)

    tail: str = ""
    size: int = 0
    sha256: str | None = None
    location: str | None = Field(default=None, description="s3://bucket/key of the full copy")
    chunks: int = 0
    missing: int = Field(default=0, description="chunks the relay sent that never arrived")


class Job(BaseModel):
    """The job document as users see it (GET /v1/jobs/{id})."""

    model_config = ConfigDict(use_enum_values=False, defer_build=True)

    id: str
    type: str
    host: str
    params: dict[str, Any]
    state: JobState
    attempt: int = 1
    max_attempts: int = 1
    timeout_s: int
    deliver_by: datetime | None = None
    idempotency_key: str | None = None
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    dispatched_at: datetime | None = None
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: JobErrorInfo | None = None
    output: JobOutputInfo | None = None
    connector_id: str | None = None
    # Storage only: when the sweeper last handed a QUEUED job to the dispatcher again.
    requeued_at: datetime | None = None
    # A fleet run's job: the run and the target (its seq) it serves.
    run_id: str | None = None
    run_seq: int | None = None
    version: int = 0

    @property
    def deliver_until(self) -> datetime:
        """The last moment the job may reach its host: deliver_by, or the default window."""
        return self.deliver_by or (self.created_at + DEFAULT_DELIVERY_WINDOW)


# A QUEUED job its host could have received by now was maybe never sent to the dispatch
# queue (the send failed after the job was written): the sweeper sends it again once.
REQUEUE_AFTER = timedelta(minutes=2)
# The longest the dispatch queue holds a message back (SQS's DelaySeconds limit).
MAX_DISPATCH_DELAY = timedelta(minutes=15)
# A retry waits in the queue for its backoff first.
RETRY_DELAY_BOUND = MAX_DISPATCH_DELAY
# The relay accepts an envelope until its expires_at (at most deliver_by) plus its
# clock_leeway_s (30 s by default) by its own clock, and its `accepted` then takes a moment
# to arrive: a DISPATCHED job still unaccepted after this much past deliver_by never ran.
ACCEPT_GRACE = timedelta(seconds=60)
NOT_DELIVERED = JobErrorInfo(code="expired", message="not delivered before deliver_by")


def next_deadline(job: Job) -> datetime | None:
    """When the sweeper must next look at a non-terminal job; None for terminal ones."""
    if job.state.terminal:
        return None
    if job.state is JobState.QUEUED:
        if job.requeued_at is not None:
            return job.deliver_until
        return min(job.deliver_until, requeue_due(job))
    if job.cancel_requested_at is not None:
        return job.cancel_requested_at
    started = job.started_at or job.updated_at
    timeout = started + timedelta(seconds=job.timeout_s)
    if job.state is JobState.DISPATCHED:
        return min(timeout, job.deliver_until + ACCEPT_GRACE)
    return timeout


def requeue_due(job: Job) -> datetime:
    """When a QUEUED job that is still waiting should be handed to the dispatcher again."""
    queued_for = REQUEUE_AFTER + (RETRY_DELAY_BOUND if job.attempt > 1 else timedelta(0))
    return job.updated_at + queued_for
