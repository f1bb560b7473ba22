"""Opaque `next_token`s: url-safe base64 of a DynamoDB last-evaluated key, checked on the way in."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from hostrelay.api.errors import MalformedRequest

MAX_TOKEN_CHARS = 2048
# DynamoDB attribute values a job key can hold: strings (S) and numbers (N).
_SCALAR_TYPES = frozenset({"S", "N"})


def encode_next_token(last_key: Mapping[str, Any] | None) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(last_key, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_next_token(
    token: str,
    *,
    keys: frozenset[str],
    fixed: Mapping[str, str] | None = None,
    prefixed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The key a token stands for; it must name exactly `keys`, agree with `fixed`, and its
    string values named in `prefixed` start with the given prefix (a key condition's range).

    A token from another listing (say, a scan when this is a query by host) would make
    DynamoDB fail the request, so it is refused here as a 400 instead.
    """
    invalid = MalformedRequest(
        "next_token is invalid; pass back the value a previous page returned",
        details=[{"field": "next_token"}],
    )
    if len(token) > MAX_TOKEN_CHARS:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid from None
    if not isinstance(key, dict) or set(key) != keys:
        raise invalid
    for value in key.values():
        if not (
            isinstance(value, dict)
            and len(value) == 1
            and set(value) <= _SCALAR_TYPES
            and all(isinstance(v, str) and v for v in value.values())
        ):
            raise invalid
    for name, expected in (fixed or {}).items():
        if key[name] != {"S": expected}:
            raise invalid
    for name, prefix in (prefixed or {}).items():
        if not key[name].get("S", "").startswith(prefix):
            raise invalid
    return key
