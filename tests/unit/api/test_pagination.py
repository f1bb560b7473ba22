"""next_token: opaque to callers, checked strictly on the way back in."""

from __future__ import annotations

import base64
import json

import pytest

from hostrelay.api.errors import MalformedRequest
from hostrelay.api.pagination import decode_next_token, encode_next_token

BY_HOST = frozenset({"id", "host", "state_key"})
LAST_KEY = {
    "id": {"S": "01ARZ3NDEKTSV4RRFFQ69G5FAV"},
    "host": {"S": "dc01"},
    "state_key": {"S": "QUEUED#2030-01-01T00:00:00.000000Z#01ARZ3NDEKTSV4RRFFQ69G5FAV"},
}


def b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_round_trip() -> None:
    token = encode_next_token(LAST_KEY)
    assert token is not None
    assert "=" not in token and "+" not in token and "/" not in token
    assert decode_next_token(token, keys=BY_HOST, fixed={"host": "dc01"}) == LAST_KEY


def test_no_last_key_means_no_token() -> None:
    assert encode_next_token(None) is None
    assert encode_next_token({}) is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "x" * 3000,
        b64([1, 2]),
        b64("id"),
        b64({"id": {"S": "x"}}),  # a scan key where a by-host key is expected
        b64({**LAST_KEY, "extra": {"S": "x"}}),
        b64({**LAST_KEY, "id": "plain"}),
        b64({**LAST_KEY, "id": {"B": "eA=="}}),
        b64({**LAST_KEY, "id": {"S": ""}}),
        b64({**LAST_KEY, "id": {"S": "a", "N": "1"}}),
        b64({**LAST_KEY, "host": {"S": "dc02"}}),  # another host's listing
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_invalid_tokens_are_malformed_requests(token: str) -> None:
    with pytest.raises(MalformedRequest):
        decode_next_token(token, keys=BY_HOST, fixed={"host": "dc01"})
