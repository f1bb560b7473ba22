"""Verify signed job envelopes from the control plane (Ed25519 over canonical JSON)."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from hostrelay_contract.canonical_json import canonical_json
from hostrelay_contract.envelope import MAX_ENVELOPE_BYTES, MAX_JOB_ID, JobEnvelope
from hostrelay_relay.ed25519 import Ed25519PublicKey


class EnvelopeRejected(Exception):
    """The envelope must not run; `reason` is the machine-readable code sent back."""

    def __init__(self, reason: str, message: str, job_id: str | None = None, attempt: int = 0):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.job_id = job_id
        self.attempt = attempt


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """The control plane's envelope key from its PEM; ValueError when it is not Ed25519."""
    return Ed25519PublicKey.from_pem(pem)


def _decode_wire(payload: bytes) -> tuple[dict[str, Any], bytes]:
    if len(payload) > MAX_ENVELOPE_BYTES:
        raise EnvelopeRejected("malformed", f"message of {len(payload)} bytes is too large")
    try:
        wire = json.loads(payload)
    except UnicodeDecodeError as exc:
        raise EnvelopeRejected("malformed", f"message is not UTF-8: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise EnvelopeRejected("malformed", f"message is not JSON: {exc.msg}") from None
    except RecursionError:
        raise EnvelopeRejected("malformed", "message nests too deeply") from None
    if not isinstance(wire, dict) or set(wire) != {"envelope", "signature"}:
        raise EnvelopeRejected("malformed", "message must be {envelope, signature}")
    body, signature = wire["envelope"], wire["signature"]
    if not isinstance(body, dict) or not isinstance(signature, str):
        raise EnvelopeRejected("malformed", "envelope must be an object, signature a string")
    try:
        raw_sig = base64.b64decode(signature, validate=True)
    except binascii.Error:
        raise EnvelopeRejected("bad_signature", "signature is not base64") from None
    return body, raw_sig


def _claimed_job(body: dict[str, Any]) -> tuple[str | None, int]:
    """job_id and attempt as a signature-verified body states them, to name a rejection."""
    job_id, attempt = body.get("job_id"), body.get("attempt")
    if not isinstance(job_id, str) or not 0 < len(job_id) <= MAX_JOB_ID:
        return None, 0  # no id a `rejected` event could carry
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        return job_id, 0
    return job_id, attempt


def _parse_fields(body: dict[str, Any]) -> JobEnvelope:
    try:
        return JobEnvelope.model_validate(body)
    except ValidationError as exc:
        job_id, attempt = _claimed_job(body)
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "envelope"
        raise EnvelopeRejected(
            "malformed", f"envelope field {where}: {first['msg']}", job_id, attempt
        ) from None


def verify_envelope(
    payload: bytes,
    *,
    public_key: Ed25519PublicKey,
    host: str,
    seen_nonce: Callable[[str, int], bool],
    now: Callable[[], float] = time.time,
    clock_leeway_s: int = 30,
) -> JobEnvelope:
    """Return the envelope if it may run here, else raise EnvelopeRejected with the reason.

    Order matters: the signature is checked before any field is trusted, so an attacker
    learns nothing from the other checks. `seen_nonce(nonce, expires_at)` answers whether
    the nonce was already used (a replay); the relay records a nonce once it acts on it.
    """
    body, signature = _decode_wire(payload)
    if not public_key.verify(signature, canonical_json(body)):
        # Not attributed: anyone able to publish here could name any job, and the control
        # plane would end it REJECTED. Only a verified envelope names the job it rejects.
        raise EnvelopeRejected("bad_signature", "envelope signature does not verify") from None
    envelope = _parse_fields(body)
    jid, att = envelope.job_id, envelope.attempt
    if envelope.host != host:
        raise EnvelopeRejected("wrong_host", f"envelope is for host {envelope.host!r}", jid, att)
    current = now()
    if envelope.expires_at < current - clock_leeway_s:
        raise EnvelopeRejected("expired", "envelope expired", jid, att)
    if envelope.issued_at > current + clock_leeway_s:
        raise EnvelopeRejected("clock_skew", "envelope issued in the future", jid, att)
    if seen_nonce(envelope.nonce, envelope.expires_at):
        raise EnvelopeRejected("replayed", "envelope nonce was already used", jid, att)
    return envelope
