"""Build and sign job envelopes (Ed25519 over canonical JSON; see docs/protocol.md)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ENVELOPE_VERSION = 1
CANCEL_TYPE = "cancel"


def canonical_json(value: Any) -> bytes:
    """The exact bytes that are signed: sorted keys, no spaces, UTF-8 (same as the relay)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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
    return {
        "v": ENVELOPE_VERSION,
        "job_id": job_id,
        "attempt": attempt,
        "type": job_type,
        "host": host,
        "params": params,
        "issued_at": issued,
        "expires_at": expires,
        "nonce": secrets.token_hex(16),
        "timeout_s": timeout_s,
    }


def sign_envelope(envelope: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """The wire message: {envelope, signature} with a detached base64 signature."""
    signature = base64.b64encode(key.sign(canonical_json(envelope))).decode()
    return canonical_json({"envelope": envelope, "signature": signature})
