"""The relay's events (docs/protocol.md): kinds, common fields, ULID event ids, encoding."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Final, Literal

EVENT_VERSION: Final = 1
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# Kinds the relay itself emits; a handler's report_event may not impersonate them.
CORE_KINDS = frozenset(
    {"hello", "heartbeat", "accepted", "progress", "output", "result", "rejected", "bad_message"}
)
COMMON_FIELDS = frozenset({"v", "kind", "event_id", "sent_at", "job_id", "attempt"})
Outcome = Literal["succeeded", "failed", "timed_out", "canceled"]


def new_ulid(now: float | None = None) -> str:
    """A ULID: 48-bit millisecond time and 80 random bits, Crockford base32 (26 chars)."""
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 0x1F] for shift in range(125, -1, -5))


def new_event(kind: str, **fields: Any) -> dict[str, Any]:
    """An event of `kind` with a fresh event_id and sent_at, plus the kind's own fields."""
    now = time.time()
    return {"v": EVENT_VERSION, "kind": kind, "event_id": new_ulid(now), "sent_at": now, **fields}


def encode_event(event: dict[str, Any], *, strict: bool = False) -> bytes:
    """The bytes published on the events topic (compact JSON, UTF-8).

    strict: refuse NaN and infinities (ValueError) instead of writing them as non-JSON.
    """
    return json.dumps(
        event, separators=(",", ":"), ensure_ascii=False, allow_nan=not strict
    ).encode()
