"""Request and response models of the HTTP API, converted explicitly from the domain's."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from hostrelay.domain.jobs import Job, JobState
from hostrelay.domain.principal import Scope
from hostrelay.domain.tags import MAX_TAGS, TagKey, Tags, TagValue
from hostrelay_contract.jobs.macct import MacctCaptureParams, MacctRepairParams
from hostrelay_contract.names import HostName
from hostrelay_contract.text_patterns import TextPattern

# A ULID: 26 characters of Crockford base32, the first at most 7 (48-bit timestamp).
ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
ULID = TextPattern(
    ULID_PATTERN, "a ULID: 26 of 0-9 and A-Z without I, L, O and U, the first one 0-7"
)
TOKEN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # noqa: S105 - not a secret
TOKEN_ID = TextPattern(TOKEN_ID_PATTERN, "1-64 letters, digits, '_' or '-'")

# An enrollment token as `hostrelay hosts enroll` prints it: a prefix and 256 random bits.
ENROLLMENT_TOKEN_PATTERN = r"^hre_[A-Za-z0-9_-]{43}$"  # noqa: S105 - a pattern, not a secret
ENROLLMENT_TOKEN = TextPattern(
    ENROLLMENT_TOKEN_PATTERN, "an enrollment token: 'hre_' and 43 letters, digits, '_' or '-'"
)
ROLE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,31}$"
ROLE_NAME = TextPattern(
    ROLE_NAME_PATTERN,
    "1-32 lower-case letters, digits, '_', '.' or '-', starting with a letter or digit",
)
RoleName = Annotated[str, ROLE_NAME]
JobTypeName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _iso_8601_text(value: Any) -> Any:
    # Pydantic's lax mode would read 0 or 1.5e9 as a Unix time: the API takes only the text.
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time string with a UTC offset")
    return value


# Request fields take JSON's own types: no "10" or true for an integer, no 0 for a boolean
# (StrictInt, StrictBool), and date-times only as ISO 8601 text with an offset.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_8601_text)]


# Built on first use: a container serves a few routes, and each model costs ~1 ms to build.
class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class _FromDomain(_Response):
    """A response read from a domain object's attributes: `Model.model_validate(obj)`."""

    model_config = ConfigDict(from_attributes=True)


# ---------------------------------------------------------------- errors


class ErrorBody(_Response):
    code: str = Field(description="Stable, machine-readable error code")
    message: str = Field(description="What went wrong, for people")
    details: list[dict[str, Any]] = Field(default_factory=list)


class ErrorResponse(_Response):
    """The shape of every error the API returns."""

    error: ErrorBody


# ---------------------------------------------------------------- health


class Health(_Response):
    status: str = Field(description="Always `ok` when the API answers")
    version: str = Field(description="Version of the control-plane code")
    time: float = Field(description="The control plane's clock (Unix seconds): relays check theirs")


# ---------------------------------------------------------------- jobs


class JobCreateRequest(_Request):
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


class JobErrorOut(_Response):
    code: str
    message: str


class JobOutputOut(_Response):
    tail: str = Field(description="The last few KiB of output, as text")
    size: int = Field(description="Total output size in bytes")
    sha256: str | None = None
    location: str | None = Field(default=None, description="Where the full copy lives")
    chunks: int = 0
    missing: int = Field(
        default=0, description="Chunks the relay sent that never arrived (the log lacks them)"
    )


class JobOut(_Response):
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

    @classmethod
    def from_domain(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            type=job.type,
            host=job.host,
            params=job.params,
            state=job.state,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            timeout_s=job.timeout_s,
            deliver_by=job.deliver_by,
            idempotency_key=job.idempotency_key,
            created_by=job.created_by,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            cancel_requested_at=job.cancel_requested_at,
            progress=job.progress,
            result=job.result,
            error=JobErrorOut(code=job.error.code, message=job.error.message)
            if job.error
            else None,
            output=JobOutputOut(
                tail=job.output.tail,
                size=job.output.size,
                sha256=job.output.sha256,
                location=job.output.location,
                chunks=job.output.chunks,
                missing=job.output.missing,
            )
            if job.output
            else None,
        )


class JobPage(_Response):
    jobs: list[JobOut]
    next_token: str | None = Field(
        default=None, description="Pass as `next_token` for the next page; absent on the last"
    )


class OutputChunkOut(_Response):
    seq: int = Field(description="0, 1, 2… within one attempt")
    stream: str = Field(description="`stdout` or `stderr`")
    data: str = Field(description="The chunk's bytes, base64")

    @classmethod
    def from_bytes(cls, seq: int, stream: str, data: bytes) -> OutputChunkOut:
        return cls(seq=seq, stream=stream, data=base64.b64encode(data).decode("ascii"))


class OutputPage(_Response):
    job_id: str
    attempt: int = Field(description="The attempt the chunks belong to (the job's current one)")
    chunks: list[OutputChunkOut]
    next_seq: int = Field(description="Pass as `after_seq` to read on from here")
    complete: bool = Field(description="The job has ended and every chunk has been returned")


# ---------------------------------------------------------------- hosts


class HostOut(_FromDomain):
    name: str
    state: str = Field(description="`online`, `offline` or `revoked`")
    roles: list[str]
    last_seen: datetime | None
    connected_at: datetime | None
    relay_version: str | None
    cert_expires_at: datetime | None
    revoked_at: datetime | None
    tags: dict[str, str] = Field(description="The host's tags, `{key: value}`")


class HostList(_Response):
    hosts: list[HostOut]


class HostPatchRequest(_Request):
    """A JSON merge patch (RFC 7396) of a host's tags: a value sets a tag, null removes it."""

    tags: dict[TagKey, TagValue | None] = Field(
        max_length=2 * MAX_TAGS,
        description=f"Tags to set (`key: value`) or remove (`key: null`); at most {MAX_TAGS} "
        "tags remain on the host",
    )


# ---------------------------------------------------------------- tokens


class TokenCreateRequest(_Request):
    """A new API token; its secret is returned once and never stored."""

    name: str = Field(min_length=1, max_length=64, description="What the token is for")
    scopes: list[Scope] = Field(min_length=1, max_length=4)
    expires_in_s: StrictInt | None = Field(
        default=None, ge=60, le=10 * 366 * 86400, description="Lifetime; no expiry if unset"
    )
    job_types: list[JobTypeName] | None = Field(
        default=None,
        max_length=32,
        description='Service tokens (required): the job types they may create, or `["*"]`',
    )
    hosts: list[HostName | Literal["*"]] | None = Field(
        default=None,
        max_length=1000,
        description='Service tokens (required): the hosts they may target, or `["*"]`',
    )


class TokenCreated(_Response):
    id: str
    token: str = Field(description="The secret: shown this once, store it now")
    name: str
    scopes: list[Scope]
    expires_at: datetime | None


class TokenOut(_FromDomain):
    """A token's metadata; never its secret or hash."""

    id: str = Field(validation_alias="token_id")
    name: str
    scopes: list[str]
    job_types: list[str] | None
    hosts: list[str] | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenList(_Response):
    tokens: list[TokenOut]


# ---------------------------------------------------------------- enrollment


class EnrollmentCreateRequest(_Request):
    """A one-shot enrollment of a host; the response carries the command to paste on it."""

    host: HostName = Field(description="The new host's name: a lowercase DNS label")
    roles: list[RoleName] | None = Field(default=None, max_length=16)
    replace: StrictBool = Field(
        default=False,
        description="Re-enroll an existing host; its current certificate is revoked",
    )
    tags: Tags | None = Field(
        default=None,
        description="The host's tags once it enrolls; unset: a re-enrolled host keeps its own",
    )


class EnrollmentCreated(_FromDomain):
    host: str
    token: str = Field(description="One-shot enrollment token: shown this once")
    command: str = Field(description="Paste this as root on the new host")
    expires_at: datetime


class EnrollCsrRequest(_Request):
    """What `hostrelay-relay enroll` sends: the host name and a CSR for the key it made."""

    host: HostName
    csr: str = Field(min_length=1, max_length=16 * 1024, description="PEM, CN = host")


class EnrollmentBundleOut(_FromDomain):
    """Everything a relay needs to connect; returned once, for the host's own CSR."""

    host: str
    certificate_pem: str
    certificate_expires_at: datetime
    ca_pem: str = Field(description="CA bundle that signed the broker's server certificate")
    broker_host: str
    broker_port: int
    envelope_public_key_pem: str = Field(description="Ed25519 key that signs job envelopes")
    control_plane_url: str


# ---------------------------------------------------------------- audit


class AuditEventOut(_FromDomain):
    id: str = Field(validation_alias="event_id")
    at: datetime
    actor: str = Field(description="`token:<id>/<name>`, `enrollment:<id>` or `system:...`")
    action: str = Field(description="e.g. `token.create`, `host.revoke`, `job.cancel`")
    target: str
    details: dict[str, Any]


class AuditPage(_Response):
    events: list[AuditEventOut] = Field(description="Newest first")


# ---------------------------------------------------------------- macct (LINBO)


class MacctRepairRequest(MacctRepairParams):
    """The params of a macct.repair job, and the domain controller that runs it."""

    host: HostName = Field(description="The domain controller whose relay repairs the accounts")


class MacctCaptureRequest(MacctCaptureParams):
    """The params of a macct.capture job, and the domain controller that runs it."""

    host: HostName = Field(description="The domain controller whose relay captures the secrets")


class MacctRepairResponse(_Response):
    """Which job repairs each computer: a new job, or one that was already pending."""

    created: JobOut | None = Field(description="The job queued by this request, if any")
    reused: list[JobOut] = Field(description="Pending repairs that already cover computers")
    computers: dict[str, str] = Field(description="Account name (upper case) → job id")


# ---------------------------------------------------------------- runs

# A limit: a count, or a percentage of the targets ("10%"); domain/runs.parse_limit checks it.
Limit = StrictInt | Annotated[str, StringConstraints(max_length=4)]


class RunTargetsIn(_Request):
    hosts: list[HostName] = Field(default_factory=list, max_length=5000)
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict, max_length=MAX_TAGS, description="Hosts carrying every key=value"
    )


class RunCreateRequest(_Request):
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


class RunOut(_Response):
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


class RunPage(_Response):
    runs: list[RunOut] = Field(description="Newest first")
    next_token: str | None = None


class RunTargetOut(_Response):
    seq: int
    host: str
    job_id: str | None
    state: str = Field(description="PENDING, a job state, or SKIPPED")
    error: JobErrorOut | None
    started_at: datetime | None
    finished_at: datetime | None


class RunTargetPage(_Response):
    targets: list[RunTargetOut]
    next_token: str | None = None
