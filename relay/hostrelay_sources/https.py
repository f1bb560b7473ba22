"""JSON over HTTPS with the standard library: verified TLS, one origin, throttling retried.

The standard library rather than requests/urllib3: the relay installs from wheels onto hosts
with Python 3.10+, and the same module runs in the discovery function, so it adds no
dependency to either and no import cost to the Lambda's cold start.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import urlencode, urlsplit

from hostrelay_sources.errors import (
    BadCredentials,
    PermissionDenied,
    Rejected,
    Throttled,
    Unreachable,
)
from hostrelay_sources.retry import THROTTLED, RetryPolicy, WaitTooLong, retry_after_s

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JsonResponse:
    status: int
    headers: Message
    body: Any


@dataclass
class JsonClient:
    """One HTTPS origin, reached over one kept-alive connection.

    Every URL asked for, paging links included, must be on that origin: the credential in
    `headers` is never sent anywhere else. Redirects are not followed.
    """

    base_url: str
    headers: Mapping[str, str]
    ca_file: str | None = None
    timeout_s: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    calls: int = 0
    retries: int = 0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme != "https" or not parts.hostname or parts.username:
            raise ValueError("a source URL must be https://host[:port] without credentials")
        self._host = parts.hostname
        self._port = parts.port or 443
        self._origin = f"https://{parts.netloc}"
        self._prefix = parts.path.rstrip("/")
        self._context = ssl.create_default_context(cafile=self.ca_file)  # verified, always
        self._connection: http.client.HTTPSConnection | None = None

    def target(self, path_or_url: str, query: Mapping[str, Any] | None = None) -> str:
        """The request target (path and query) on this origin; another origin is refused."""
        if "://" in path_or_url:
            parts = urlsplit(path_or_url)
            if f"{parts.scheme}://{parts.netloc}" != self._origin or parts.username:
                raise Rejected("the source linked to another origin; not followed", status=0)
            path, existing = parts.path, parts.query
        else:
            path, _, existing = (self._prefix + path_or_url).partition("?")
        extra = urlencode(query or {}, doseq=True)
        joined = "&".join(part for part in (existing, extra) if part)
        return f"{path}?{joined}" if joined else path

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> JsonResponse:
        what, status, response_headers, data = self._exchange(method, path_or_url, query, body)
        return _checked(what, status, response_headers, data)

    def events(self, path_or_url: str, *, query: Mapping[str, Any]) -> list[Any]:
        """The JSON objects of a newline-delimited stream the source ends itself (a
        Kubernetes watch with timeoutSeconds), read to its end."""
        what, status, response_headers, data = self._exchange("GET", path_or_url, query, None)
        if status >= 300:
            _checked(what, status, response_headers, data)  # raises the source's error
        try:
            return [json.loads(line) for line in data.splitlines() if line.strip()]
        except ValueError:
            raise Rejected(f"{what}: the answer is not JSON lines", status=status) from None

    def _exchange(
        self,
        method: str,
        path_or_url: str,
        query: Mapping[str, Any] | None,
        body: Any,
    ) -> tuple[str, int, Message, bytes]:
        target = self.target(path_or_url, query)
        what = f"{method} {target.partition('?')[0]}"
        headers = {"Accept": "application/json", **self.headers}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        policy = self.retry
        for attempt in range(1, policy.max_attempts + 1):
            self.calls += 1
            try:
                status, response_headers, data = self._send(method, target, payload, headers)
            except ssl.SSLCertVerificationError:
                raise Unreachable(f"{what}: TLS verification failed") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                wait = policy.unreachable_wait(attempt)
                if wait is None:
                    raise Unreachable(f"{what}: {type(exc).__name__}") from None
                self._wait(wait, what, attempt, 0)
                continue
            if status in THROTTLED:
                asked = retry_after_s(response_headers.get("Retry-After"), policy.clock())
                try:
                    wait = policy.throttled_wait(attempt, asked)
                except WaitTooLong as exc:
                    raise Throttled(f"{what}: {exc}") from None
                if wait is not None:
                    self._wait(wait, what, attempt, status)
                    continue
            return what, status, response_headers, data
        raise Throttled(f"{what}: still throttled after {policy.max_attempts} attempts")

    def _send(
        self, method: str, target: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, Message, bytes]:
        if self._connection is None:
            self._connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout_s, context=self._context
            )
        connection = self._connection
        connection.request(method, target, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if response.will_close:
            self.close()
        return response.status, response.msg, data

    def _wait(self, wait_s: float, what: str, attempt: int, status: int) -> None:
        self.retries += 1
        log.info(
            "source request retried",
            extra={"request": what, "attempt": attempt, "status": status, "wait_s": wait_s},
        )
        self.retry.sleep(wait_s)


def _vendor_reason(body: Any) -> str | None:
    """A short reason from an error body (Kubernetes Status.reason, Authentik detail)."""
    if not isinstance(body, dict):
        return None
    for key in ("reason", "code", "detail"):
        value = body.get(key)
        if isinstance(value, str | int) and 0 < len(str(value)) <= 64:
            return str(value)
    return None


def _checked(what: str, status: int, headers: Message, data: bytes) -> JsonResponse:
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = None
    if status < 300:
        if data and parsed is None:
            raise Rejected(f"{what}: the answer is not JSON", status=status)
        return JsonResponse(status, headers, parsed)
    reason = _vendor_reason(parsed)
    suffix = f" ({reason})" if reason else ""
    if status == 401:
        raise BadCredentials(f"{what}: the credential was refused (HTTP 401){suffix}")
    if status == 403:
        raise PermissionDenied(f"{what}: permission denied (HTTP 403){suffix}")
    if status in THROTTLED:
        raise Throttled(f"{what}: throttled (HTTP {status}){suffix}")
    raise Rejected(f"{what}: HTTP {status}{suffix}", status=status)
