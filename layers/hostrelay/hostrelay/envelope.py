"""Build and sign job envelopes (Ed25519 over canonical JSON; see docs/protocol.md)."""

from __future__ import annotations

import base64
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hostrelay_contract.canonical_json import canonical_json
from hostrelay_contract.envelope import new_envelope, signed_message


def build_envelope(
    *,
    job_id: str,
    attempt: int,
    job_type: str,
    host: str,
    params: dict[str, Any],
    timeout_s: int,
    ttl_s: int,
    not_after: int | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """An unsigned envelope valid for `ttl_s` from now, and never past `not_after` (the
    job's deliver_by, unix seconds): the relay refuses it as `expired` after that."""
    issued = int(now if now is not None else time.time())
    expires = issued + ttl_s if not_after is None else min(issued + ttl_s, not_after)
    return new_envelope(
        job_id=job_id,
        attempt=attempt,
        job_type=job_type,
        host=host,
        params=params,
        timeout_s=timeout_s,
        issued_at=issued,
        expires_at=expires,
    ).model_dump()


def sign_envelope(envelope: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """The wire message: {envelope, signature} with a detached base64 signature."""
    signature = base64.b64encode(key.sign(canonical_json(envelope))).decode()
    return signed_message(envelope, signature)
