"""The signed job envelope: what the control plane publishes and the relay verifies.

The wire message is `{"envelope": {...}, "signature": "<base64>"}`, the signature a
detached Ed25519 signature of `canonical_json(envelope)`. Signing (control plane) and
verifying (relay) live on each side; the fields and their types live here.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from hostrelay_contract.canonical_json import canonical_json

ENVELOPE_VERSION: Final = 1
MAX_JOB_ID: Final = 64  # a ULID has 26 characters
JobId = Annotated[str, Field(min_length=1, max_length=MAX_JOB_ID)]
CANCEL_TYPE = "cancel"
MAX_ENVELOPE_BYTES = 256 * 1024
REJECT_REASONS = (
    "malformed",
    "bad_signature",
    "wrong_host",
    "expired",
    "replayed",
    "unknown_type",
    "invalid_params",
    "disabled",
    "clock_skew",
)
# Refusals that end no job. A replay or re-delivery: the job runs, or ran, from its first
# delivery. A bad signature: the relay could not verify the envelope, so the job id it
# claimed proves nothing (anyone able to publish on a jobs topic could name any job);
# relays now send no job id for these, and the id older relays send is never acted on.
HARMLESS_REJECTIONS = frozenset({"replayed"})
UNATTRIBUTED_REJECTIONS = frozenset({"bad_signature"})


class JobEnvelope(BaseModel):
    """One attempt of a job (or a cancel request, type `cancel`) for one host."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    v: Literal[1] = Field(description="Envelope version")
    job_id: JobId
    attempt: int = Field(ge=1)
    type: str
    host: str
    params: dict[str, Any]
    issued_at: int = Field(description="Unix seconds")
    expires_at: int = Field(description="Unix seconds; the relay refuses it after that")
    nonce: str = Field(description="Random; the relay refuses a nonce it has seen")
    timeout_s: int

    @property
    def is_cancel(self) -> bool:
        return self.type == CANCEL_TYPE


def new_envelope(
    *,
    job_id: str,
    attempt: int,
    job_type: str,
    host: str,
    params: dict[str, Any],
    timeout_s: int,
    issued_at: int,
    expires_at: int,
) -> JobEnvelope:
    """An envelope with a fresh nonce (16 random bytes, hex)."""
    return JobEnvelope(
        v=ENVELOPE_VERSION,
        job_id=job_id,
        attempt=attempt,
        type=job_type,
        host=host,
        params=params,
        issued_at=issued_at,
        expires_at=expires_at,
        nonce=secrets.token_hex(16),
        timeout_s=timeout_s,
    )


def signed_message(envelope: dict[str, Any], signature_b64: str) -> bytes:
    """The bytes published on the jobs topic."""
    return canonical_json({"envelope": envelope, "signature": signature_b64})
