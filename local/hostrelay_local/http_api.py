"""Stands in for API Gateway (HTTP API, payload format 2.0) in front of the api function."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from hostrelay_local.functions import FunctionRuntime
from hostrelay_local.local_http import BackgroundServer, LocalHttpServer, LocalRequestHandler

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # HTTP API's payload quota
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")
_TEXT_SUFFIXES = ("+json", "+xml", "javascript")
_INTERNAL_ERROR = {"message": "Internal Server Error"}
_NOT_FOUND = {"message": "Not Found"}


def _is_text(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith(_TEXT_TYPES) or media.endswith(_TEXT_SUFFIXES)


def build_event(
    *,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    route_key: str = "ANY /{proxy+}",
    api_id: str = "local",
    domain_name: str = "127.0.0.1",
) -> dict[str, Any]:
    """The event API Gateway's HTTP API gives a Lambda proxy integration (format 2.0)."""
    url = urlsplit(target)
    raw_path = url.path or "/"
    lowered: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    now = time.time()
    request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": url.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": api_id,
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".", 1)[0],
            "http": {
                "method": method.upper(),
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if url.query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(url.query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if route_key.endswith("/{proxy+}"):
        event["pathParameters"] = {"proxy": unquote(raw_path.lstrip("/"))}
    if body:
        if _is_text(lowered.get("content-type", "")):
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode("ascii")
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def response_parts(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) from a Lambda result, the way HTTP API format 2.0 reads it.

    A dict with `statusCode` is a full response; anything else is JSON-encoded as a 200.
    """
    if not isinstance(result, dict) or "statusCode" not in result:
        body = json.dumps(result).encode()
        return 200, [("Content-Type", "application/json")], body
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    raw = result.get("body")
    if raw is None:
        data = b""
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(raw)
    else:
        data = str(raw).encode()
    return int(result["statusCode"]), headers, data


class MalformedHttpRequest(Exception):
    """A request this gateway cannot read as HTTP/1.1: answered, then the connection closed."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_DIGITS = re.compile(rb"^[0-9]+$")
_HEX = re.compile(rb"^[0-9A-Fa-f]{1,16}$")
MAX_LINE_BYTES = 8 * 1024  # a chunk-size or trailer line
MAX_TRAILER_LINES = 100
# The codes the API itself uses for these; other statuses are named after their phrase.
_ERROR_CODES = {
    HTTPStatus.BAD_REQUEST: "malformed_request",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
}


def content_length(values: list[str]) -> int:
    """The body's length from its Content-Length headers (RFC 9110 8.6): digits only, and
    repeated headers must agree; anything else could frame the request two ways."""
    lengths = {value.strip() for value in values}
    if len(lengths) != 1:
        raise MalformedHttpRequest(HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers")
    (text,) = lengths
    if not _DIGITS.match(text.encode("latin-1")):
        raise MalformedHttpRequest(HTTPStatus.BAD_REQUEST, "Content-Length must be digits")
    if len(text.lstrip("0")) > len(str(MAX_REQUEST_BYTES)):
        raise _too_large()  # before int(): a header may hold more digits than int() takes
    return int(text)


def _too_large() -> MalformedHttpRequest:
    return MalformedHttpRequest(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the request body exceeds {MAX_REQUEST_BYTES} bytes"
    )


def read_chunked(rfile: io.BufferedIOBase, max_bytes: int = MAX_REQUEST_BYTES) -> bytes:
    """A `Transfer-Encoding: chunked` body (RFC 9112 7.1), refusing what does not frame."""
    chunks: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(MAX_LINE_BYTES + 1)
        size_text = line.split(b";", 1)[0].strip()
        if not line.endswith(b"\n") or not _HEX.match(size_text):
            raise MalformedHttpRequest(HTTPStatus.BAD_REQUEST, "malformed chunk size line")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > max_bytes:
            raise _too_large()
        data = rfile.read(size)
        if len(data) != size or rfile.readline(3) not in (b"\r\n", b"\n"):
            raise MalformedHttpRequest(HTTPStatus.BAD_REQUEST, "truncated or unterminated chunk")
        chunks.append(data)
    for _ in range(MAX_TRAILER_LINES):
        line = rfile.readline(MAX_LINE_BYTES + 1)
        if line in (b"\r\n", b"\n"):
            return b"".join(chunks)
        if not line.endswith(b"\n"):
            raise MalformedHttpRequest(HTTPStatus.BAD_REQUEST, "truncated chunked trailer")
    raise MalformedHttpRequest(HTTPStatus.BAD_REQUEST, "too many chunked trailer lines")


def error_body(status: HTTPStatus, message: str) -> bytes:
    """The API's error shape, for the requests the gateway answers itself."""
    code = _ERROR_CODES.get(status) or status.phrase.lower().replace(" ", "_").replace("-", "_")
    return json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()


class _ApiRequestHandler(LocalRequestHandler):
    server: _ApiHttpServer

    def _handle(self) -> None:
        try:
            body = self._read_body()
            event = self._event(body)
        except MalformedHttpRequest as error:
            self.close_connection = True  # the stream cannot be trusted to frame another one
            self._send_error_body(error.status, error.message)
            return
        if urlsplit(self.path).path in ("", "/"):
            # `/{proxy+}` needs at least one path segment: API Gateway answers this itself.
            self._send(404, [("Content-Type", "application/json")], json.dumps(_NOT_FOUND).encode())
            return
        started = time.perf_counter()
        try:
            result = self.server.function.invoke(event)
            status, headers, data = response_parts(result)
        except Exception:
            # API Gateway shows the client a bare 500; the traceback stays in our log.
            logger.exception("api function failed", extra={"path": event["rawPath"]})
            status = 500
            headers = [("Content-Type", "application/json")]
            data = json.dumps(_INTERNAL_ERROR).encode()
        headers.append(("apigw-requestid", event["requestContext"]["requestId"]))
        self._send(status, headers, b"" if self.command == "HEAD" else data, len(data))
        logger.debug(
            "api request",
            extra={
                "method": self.command,
                "path": event["rawPath"],
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle

    def _event(self, body: bytes) -> dict[str, Any]:
        try:
            event = build_event(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                domain_name=self.headers.get("Host", "127.0.0.1").split(":", 1)[0],
            )
        except ValueError:  # urlsplit: e.g. an unclosed IPv6 literal in an absolute target
            raise MalformedHttpRequest(HTTPStatus.BAD_REQUEST, "malformed request target") from None
        event["headers"].setdefault("x-forwarded-for", self.client_address[0])
        event["headers"].setdefault("x-forwarded-proto", "http")
        event["headers"].setdefault("x-forwarded-port", str(self.server.server_address[1]))
        return event

    def _read_body(self) -> bytes:
        codings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if codings:
            if lengths:
                # RFC 9112 6.1: both framings at once is how requests are smuggled.
                raise MalformedHttpRequest(
                    HTTPStatus.BAD_REQUEST, "both Transfer-Encoding and Content-Length"
                )
            if [c.strip().lower() for c in ",".join(codings).split(",")] != ["chunked"]:
                raise MalformedHttpRequest(
                    HTTPStatus.NOT_IMPLEMENTED, "only Transfer-Encoding: chunked is supported"
                )
            return read_chunked(self.rfile)
        if not lengths:
            return b""
        length = content_length(lengths)
        if length > MAX_REQUEST_BYTES:
            raise _too_large()
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise MalformedHttpRequest(HTTPStatus.BAD_REQUEST, "the body is shorter than declared")
        return body

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server answers itself (a bad request line or header, an unknown method
        such as TRACE) in the API's JSON error shape instead of an HTML page."""
        self.close_connection = True
        status = HTTPStatus(code)
        self._send_error_body(status, message or status.phrase)

    def _send_error_body(self, status: HTTPStatus, message: str) -> None:
        self._send(
            status.value, [("Content-Type", "application/json")], error_body(status, message)
        )

    def _send(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        length: int | None = None,
    ) -> None:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        headers = [("Date", self.date_time_string()), *headers]
        self.write_reply(f"{status} {phrase}", headers, body, length=length)


class _ApiHttpServer(LocalHttpServer):
    def __init__(self, address: tuple[str, int], function: FunctionRuntime) -> None:
        super().__init__(address, _ApiRequestHandler)
        self.function = function


class HttpApiGateway:
    """The HTTP API: `ANY /{proxy+}` → the api function, on one local port."""

    def __init__(self, function: FunctionRuntime, host: str = "127.0.0.1", port: int = 3000):
        self._function = function
        self._address = (host, port)
        self._serving = BackgroundServer("http-api")

    @property
    def url(self) -> str:
        return self._serving.url

    def start(self) -> None:
        self._serving.start(_ApiHttpServer(self._address, self._function))

    def stop(self) -> None:
        self._serving.stop()
