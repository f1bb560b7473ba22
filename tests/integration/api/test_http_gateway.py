"""The local HTTP gateway answers every malformed request with a JSON error, over a raw socket."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.api.conftest import ServedApi

pytestmark = pytest.mark.integration

READ_DEADLINE_S = 10.0


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(api: ServedApi, request: bytes, *, half_close: bool = False) -> RawResponse:
    """Send raw bytes; read one response (by Content-Length) or fail at the deadline."""
    with socket.create_connection(api.address, timeout=READ_DEADLINE_S) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)  # the client has nothing more to send
        stream = sock.makefile("rb")
        status_line = stream.readline()
        assert status_line.startswith(b"HTTP/1.1 "), f"no HTTP response: {status_line!r}"
        headers: dict[str, str] = {}
        while (line := stream.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = stream.read(int(headers["content-length"]))
        return RawResponse(int(status_line.split()[1]), headers, body)


def assert_json_error(response: RawResponse, status: int) -> dict[str, Any]:
    assert response.status == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["code"], str) and error["message"]
    return dict(error)


def post(path: str, headers: str, body: bytes = b"") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: api\r\n{headers}\r\n".encode() + body


@pytest.mark.parametrize(
    "length_headers",
    [
        "Content-Length: -1\r\n",
        "Content-Length: abc\r\n",
        "Content-Length: 1e3\r\n",
        "Content-Length: +2\r\n",
        "Content-Length: 2\r\nContent-Length: 3\r\n",
        "Content-Length: 99999999999999999999999\r\n",
    ],
    ids=["negative", "not-a-number", "exponent", "signed", "conflicting", "huge"],
)
def test_a_bad_content_length_is_a_json_400(served_api: ServedApi, length_headers: str) -> None:
    # Given a request whose body length cannot be read (or not trusted)
    response = exchange(served_api, post("/v1/jobs", length_headers, b"{}"))
    # Then the gateway answers at once with a JSON 400 (or 413 past the quota) and closes
    error = assert_json_error(response, 413 if "9999" in length_headers else 400)
    assert response.headers["connection"] == "close"
    assert error["code"] in ("malformed_request", "payload_too_large")


def test_a_body_shorter_than_its_length_is_a_json_400(served_api: ServedApi) -> None:
    # Given a client that declares 100 bytes, sends 2 and stops sending
    request = post("/v1/jobs", "Content-Length: 100\r\n", b"{}")
    response = exchange(served_api, request, half_close=True)
    assert_json_error(response, 400)


@pytest.mark.parametrize(
    "chunked_body",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # not hex
        b"-2\r\n{}\r\n0\r\n\r\n",  # signed
        b"2\r\n{}XX0\r\n\r\n",  # no CRLF after the chunk
        b"10\r\n{}",  # truncated chunk
        b"2\r\n{}\r\n",  # no last chunk
        b"2\r\n{}\r\n0\r\n",  # no end of trailers
    ],
    ids=["not-hex", "signed", "no-crlf", "truncated", "no-last-chunk", "no-trailer-end"],
)
def test_a_bad_chunked_body_is_a_json_400(served_api: ServedApi, chunked_body: bytes) -> None:
    # Given a chunked body that does not frame, from a client that then stops sending
    request = post("/v1/jobs", "Transfer-Encoding: chunked\r\n", chunked_body)
    response = exchange(served_api, request, half_close=True)
    # Then it gets an answer (not a dropped connection): a JSON 400
    assert_json_error(response, 400)


def test_both_framings_at_once_are_a_json_400(served_api: ServedApi) -> None:
    request = post("/v1/jobs", "Transfer-Encoding: chunked\r\nContent-Length: 7\r\n", b"0\r\n\r\n")
    assert_json_error(exchange(served_api, request), 400)


def test_an_unsupported_transfer_coding_is_a_json_501(served_api: ServedApi) -> None:
    request = post("/v1/jobs", "Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n")
    assert_json_error(exchange(served_api, request), 501)


def test_a_well_formed_chunked_body_still_reaches_the_api(served_api: ServedApi) -> None:
    # Given an admin posts a token request as two chunks, with an extension and a trailer
    body = json.dumps({"name": "ci", "scopes": ["reader"]}).encode()
    first, second = body[:10], body[10:]
    chunked = (
        f"{len(first):x};ext=1\r\n".encode()
        + first
        + f"\r\n{len(second):X}\r\n".encode()
        + second
        + b"\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    headers = (
        f"Authorization: Bearer {served_api.admin_token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    )
    response = exchange(served_api, post("/v1/tokens", headers, chunked))
    # Then the token is created
    assert response.status == 201
    assert response.json()["name"] == "ci"


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "BREW"])
def test_an_unknown_method_is_a_json_501(served_api: ServedApi, method: str) -> None:
    response = exchange(served_api, f"{method} /v1/health HTTP/1.1\r\nHost: api\r\n\r\n".encode())
    error = assert_json_error(response, 501)
    assert error["code"] == "not_implemented"
    assert b"<html" not in response.body.lower()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /v1/health HTTP/1.x\r\n\r\n",
        b"GET /v1/health HTTP/1.1 extra\r\n\r\n",
        b"GET http://[::1/v1/health HTTP/1.1\r\nHost: api\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",
    ],
    ids=["no-version", "bad-version", "extra-word", "bad-target", "header-too-long"],
)
def test_a_malformed_request_head_is_a_json_4xx(
    served_api: ServedApi, request_bytes: bytes
) -> None:
    response = exchange(served_api, request_bytes)
    assert 400 <= response.status < 500
    assert_json_error(response, response.status)
    assert b"<html" not in response.body.lower()


def test_the_connection_survives_a_good_request(served_api: ServedApi) -> None:
    # Given a health check: the gateway still serves well-formed requests as before
    response = exchange(served_api, b"GET /v1/health HTTP/1.1\r\nHost: api\r\n\r\n")
    assert response.status == 200
    assert response.json()["status"] == "ok"
