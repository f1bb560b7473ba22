"""Fleet runs: one job type for many hosts, with a sliding window and an error limit."""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hostrelay.domain.errors import InvalidRequest
from hostrelay.domain.jobs import JobErrorInfo, JobState

MAX_TARGETS = 5000
DEFAULT_MAX_CONCURRENCY: int | str = 10
DEFAULT_MAX_ERRORS: int | str = 0
_PERCENT = re.compile(r"^(100|[1-9]?[0-9])%$")


class RunState(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    CANCELED = "CANCELED"

    @property
    def terminal(self) -> bool:
        return self is not RunState.IN_PROGRESS


class TargetState(StrEnum):
    """A target's own state: PENDING until its job starts, IN_FLIGHT while the job is not
    terminal (the job's live state says QUEUED, DISPATCHED or IN_PROGRESS), then the job's
    terminal state; SKIPPED when the run stopped (aborted) before it started."""

    PENDING = "PENDING"
    IN_FLIGHT = "IN_FLIGHT"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"

    @property
    def terminal(self) -> bool:
        return self not in (TargetState.PENDING, TargetState.IN_FLIGHT)


# The job states a target ends in when its job ends.
TARGET_STATE_OF_JOB: dict[JobState, TargetState] = {
    JobState.SUCCEEDED: TargetState.SUCCEEDED,
    JobState.FAILED: TargetState.FAILED,
    JobState.TIMED_OUT: TargetState.TIMED_OUT,
    JobState.REJECTED: TargetState.REJECTED,
    JobState.EXPIRED: TargetState.EXPIRED,
    JobState.CANCELED: TargetState.CANCELED,
}
FAILURE_STATES = frozenset({TargetState.FAILED, TargetState.TIMED_OUT, TargetState.REJECTED})


def parse_limit(value: int | str, field: str) -> int | str:
    """A limit as the API takes it: a non-negative integer, or a percentage `"0%"`..`"100%"`."""
    if isinstance(value, bool):
        raise InvalidRequest(f"{field} must be a number or a percentage like '10%'")
    if isinstance(value, int):
        if value < 0 or value > MAX_TARGETS:
            raise InvalidRequest(f"{field} must be between 0 and {MAX_TARGETS}")
        return value
    if not _PERCENT.match(value):
        raise InvalidRequest(f"{field} must be a number or a percentage like '10%'")
    return value


def concurrency_of(spec: int | str, total: int) -> int:
    """How many jobs may be in flight: a percentage of the targets rounds up, and at least
    one job always runs (`"10%"` of 5 targets is 1, of 11 targets 2)."""
    if isinstance(spec, int):
        return max(1, spec)
    return max(1, math.ceil(int(spec[:-1]) * total / 100))


def error_limit_of(spec: int | str, total: int) -> int:
    """How many failed targets a run tolerates: a percentage rounds down (`"10%"` of 15 targets
    is 1: the second failure aborts the run)."""
    if isinstance(spec, int):
        return spec
    return math.floor(int(spec[:-1]) * total / 100)


class TargetSelector(BaseModel):
    model_config = ConfigDict(defer_build=True)

    hosts: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)


class Run(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: str
    type: str
    params: dict[str, Any]
    targets: TargetSelector
    max_concurrency: int | str
    max_errors: int | str
    timeout_s: int
    deliver_by: datetime | None = None
    continuous: bool = False
    expired_counts_as_error: bool = True
    idempotency_key: str | None = None
    created_by: str
    # The hosts the creating token may use (None: all): what a continuous run may add.
    allowed_hosts: list[str] | None = None
    state: RunState = RunState.IN_PROGRESS
    # Set when the run stops starting targets (ABORTED or CANCELED); it ends once none is
    # in flight.
    stopping: RunState | None = None
    reason: str | None = None
    total: int = 0
    next_seq: int = 0
    counts: dict[TargetState, int] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    version: int = 0

    def count(self, state: TargetState) -> int:
        return self.counts.get(state, 0)

    @property
    def in_flight(self) -> int:
        return self.count(TargetState.IN_FLIGHT)

    @property
    def pending(self) -> int:
        return self.count(TargetState.PENDING)

    @property
    def error_states(self) -> frozenset[TargetState]:
        if self.expired_counts_as_error:
            return FAILURE_STATES | {TargetState.EXPIRED}
        return FAILURE_STATES

    @property
    def errors(self) -> int:
        return sum(self.count(state) for state in self.error_states)

    @property
    def window(self) -> int:
        return concurrency_of(self.max_concurrency, self.total)

    @property
    def error_limit(self) -> int:
        return error_limit_of(self.max_errors, self.total)

    def final_state(self) -> RunState:
        """The terminal state of a run with nothing pending or in flight."""
        if self.stopping is not None:
            return self.stopping
        if self.count(TargetState.SUCCEEDED) == self.total:
            return RunState.SUCCEEDED
        return RunState.FAILED


class RunTarget(BaseModel):
    model_config = ConfigDict(defer_build=True)

    run_id: str
    seq: int
    host: str
    state: TargetState = TargetState.PENDING
    job_id: str | None = None
    error: JobErrorInfo | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
