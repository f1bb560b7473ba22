"""Models of the jobs routes: a job to create, a job and its output as the API shows them."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from pydantic import Field, StrictInt

from hostrelay.api.models.base import (
    FromDomain,
    JobTypeName,
    RequestModel,
    ResponseModel,
    Timestamp,
)
from hostrelay.domain.jobs import JobState
from hostrelay_contract.names import HostName


class JobCreateRequest(RequestModel):
    """A job to queue for one host (or `cloud` for job types the control plane runs)."""

    type: JobTypeName = Field(description="Job type, e.g. `ping`, `exec`, `macct.repair`")
    host: HostName = Field(description="Target host name, or `cloud`")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters; their shape depends on the type"
    )
    timeout_s: StrictInt | None = Field(
        default=None, ge=1, le=86400, description="Run time limit; the type's default if unset"
    )
    deliver_by: Timestamp | None = Field(
        default=None,
        description=(
            "Expire the job if the host has not received it by then; must be in the future "
            "(ISO 8601 with a UTC offset)"
        ),
    )
    max_attempts: StrictInt = Field(default=1, ge=1, le=10, description="Attempts before giving up")
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Retrying with the same key and body returns the first job",
    )


class JobErrorOut(FromDomain):
    code: str
    message: str


class JobOutputOut(FromDomain):
    tail: str = Field(description="The last few KiB of output, as text")
    size: int = Field(description="Total output size in bytes")
    sha256: str | None = None
    location: str | None = Field(default=None, description="Where the full copy lives")
    chunks: int = 0
    missing: int = Field(
        default=0, description="Chunks the relay sent that never arrived (the log lacks them)"
    )


class JobOut(FromDomain):
    """A job as the API shows it."""

    id: str
    type: str
    host: str
    params: dict[str, Any]
    state: JobState
    attempt: int
    max_attempts: int
    timeout_s: int
    deliver_by: datetime | None
    idempotency_key: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: JobErrorOut | None
    output: JobOutputOut | None


class JobPage(ResponseModel):
    jobs: list[JobOut]
    next_token: str | None = Field(
        default=None, description="Pass as `next_token` for the next page; absent on the last"
    )


class OutputChunkOut(ResponseModel):
    seq: int = Field(description="0, 1, 2… within one attempt")
    stream: str = Field(description="`stdout` or `stderr`")
    data: str = Field(description="The chunk's bytes, base64")

    @classmethod
    def from_bytes(cls, seq: int, stream: str, data: bytes) -> OutputChunkOut:
        return cls(seq=seq, stream=stream, data=base64.b64encode(data).decode("ascii"))


class OutputPage(ResponseModel):
    job_id: str
    attempt: int = Field(description="The attempt the chunks belong to (the job's current one)")
    chunks: list[OutputChunkOut]
    next_seq: int = Field(description="Pass as `after_seq` to read on from here")
    complete: bool = Field(description="The job has ended and every chunk has been returned")
