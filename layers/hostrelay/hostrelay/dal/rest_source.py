"""HTTPS JSON calls of SaaS connectors: verified TLS, throttling retried, failures named.

urllib3 rather than a vendor SDK: the layer already ships it (botocore's transport), it costs
no cold-start import of its own, and each connector calls a handful of list endpoints. What is
retried and how long to wait is hostrelay_sources.retry, the rule the relay's client follows
too; here the SaaS vendors add to it: Okta's X-Rate-Limit-Reset as the wait asked for, Google's
quota 403s as throttling, and one renewal of a refreshing token on a 401.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, SSLError

from hostrelay.dal.bearer_token import RefreshingToken
from hostrelay.domain.inventory import SourceReadError
from hostrelay.observability import logger
from hostrelay_sources.retry import THROTTLED, RetryPolicy, WaitTooLong, retry_after_s

# Google answers some quota errors with 403 and one of these reasons (a 429 for most).
QUOTA_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})


class SourceAuthFailed(SourceReadError):
    code = "bad_credentials"


class SourcePermissionDenied(SourceReadError):
    code = "permission_denied"


class SourceUnreachable(SourceReadError):
    code = "source_unreachable"


class SourceThrottled(SourceReadError):
    code = "source_throttled"


class SourceRejected(SourceReadError):
    """The source answered with another 4xx/5xx (a bad request, a missing object)."""

    code = "source_error"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, details=[{"status": status}])
        self.status = status


@dataclass(frozen=True)
class RestResponse:
    status: int
    headers: Mapping[str, str]
    body: Any


def _retry_after_s(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the source asks us to wait: Retry-After (seconds or a date), or Okta's
    X-Rate-Limit-Reset (epoch seconds when the window resets)."""
    value = headers.get("Retry-After")
    if value:
        return retry_after_s(value, now)
    reset = headers.get("X-Rate-Limit-Reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - now)
    return None


def _vendor_code(body: Any) -> str | None:
    """A short machine code from the error body (Okta errorCode, Google/Azure error.code)."""
    if not isinstance(body, dict):
        return None
    for key in ("errorCode", "code", "error"):
        value = body.get(key)
        if isinstance(value, dict):  # Google: {code: 403, status: "PERMISSION_DENIED"}
            words = [v for v in (value.get("code"), value.get("status")) if isinstance(v, str)]
            value = words[0] if words else value.get("code")
        if isinstance(value, str | int) and len(str(value)) <= 64:
            return str(value)
    return None


def _quota_exceeded(status: int, data: bytes) -> bool:
    """A 403 that is Google's way of saying "slow down", not a missing permission."""
    if status != 403 or b"reason" not in data:
        return False
    try:
        error = json.loads(data).get("error") or {}
        reasons = {item.get("reason") for item in error.get("errors") or []}
    except (ValueError, AttributeError):
        return False
    return bool(reasons & QUOTA_REASONS)


class RestSource:
    """One SaaS origin. Every URL asked for, including paging links, must be on that origin,
    so the credential in `headers` (or `token`'s) is never sent anywhere else. A `token` is
    asked for its header on every request (it renews itself before it expires) and renewed
    once when the source answers 401 anyway."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        ca_bundle: str | None = None,
        timeout_s: float = 30.0,
        max_attempts: int = 5,
        max_wait_s: float = 60.0,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        token: RefreshingToken | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base = base_url.rstrip("/")
        self._headers = {"Accept": "application/json", **headers}
        context = ssl.create_default_context(cafile=ca_bundle)  # verified, always
        self._pool = urllib3.PoolManager(
            ssl_context=context,
            timeout=urllib3.Timeout(total=timeout_s),
            retries=False,
        )
        self._retry = RetryPolicy(
            max_attempts=max_attempts,
            max_wait_s=max_wait_s,
            backoff_s=backoff_s,
            sleep=sleep,
            clock=clock,
        )
        self._token = token
        self.calls = 0
        self.retries = 0

    def url(self, path_or_url: str, query: Mapping[str, Any] | None = None) -> str:
        url = path_or_url if "://" in path_or_url else self._base + path_or_url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self._origin or parts.username:
            raise SourceRejected("the source linked to another origin; not followed", status=0)
        if query:
            url += ("&" if parts.query else "?") + urlencode(query)
        return url

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        form: Mapping[str, str] | None = None,
    ) -> RestResponse:
        """`body` is sent as JSON, `form` as application/x-www-form-urlencoded."""
        url = self.url(path_or_url, query)
        what = f"{method} {urlsplit(url).path}"
        headers = dict(self._headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            payload = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        policy = self._retry
        renewed = False
        attempt = 0
        while attempt < policy.max_attempts:
            attempt += 1
            self.calls += 1
            if self._token is not None:
                headers["Authorization"] = self._token.header()
            try:
                response = self._pool.request(
                    method, url, body=payload, headers=headers, redirect=False
                )
            except SSLError:
                raise SourceUnreachable(f"{what}: TLS verification failed") from None
            except HTTPError as exc:
                wait = policy.unreachable_wait(attempt)
                if wait is None:
                    raise SourceUnreachable(f"{what}: {type(exc).__name__}") from None
                self._wait(wait, what, attempt, 0)
                continue
            status = response.status
            if status == 401 and self._token is not None and not renewed:
                renewed = True  # revoked or expired early: one new token, then it counts
                self._token.renew()
                attempt -= 1
                continue
            throttled = status in THROTTLED or _quota_exceeded(status, response.data)
            if throttled:
                asked = _retry_after_s(response.headers, policy.clock())
                try:
                    wait = policy.throttled_wait(attempt, asked)
                except WaitTooLong as exc:
                    raise SourceThrottled(f"{what}: {exc}") from None
                if wait is not None:
                    self._wait(wait, what, attempt, status)
                    continue
            return self._checked(what, status, response, throttled)
        raise SourceThrottled(f"{what}: still throttled after {policy.max_attempts} attempts")

    def _wait(self, wait_s: float, what: str, attempt: int, status: int) -> None:
        self.retries += 1
        logger.info(
            "source request retried",
            extra={"request": what, "attempt": attempt, "status": status, "wait_s": wait_s},
        )
        self._retry.sleep(wait_s)

    def _checked(self, what: str, status: int, response: Any, throttled: bool) -> RestResponse:
        data = response.data
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        headers = response.headers  # case-insensitive; repeated headers joined by ", "
        if status < 300:
            if data and parsed is None:
                raise SourceRejected(f"{what}: the answer is not JSON", status=status)
            return RestResponse(status, headers, parsed)
        code = _vendor_code(parsed)
        suffix = f" ({code})" if code else ""
        if throttled:
            raise SourceThrottled(f"{what}: throttled (HTTP {status}){suffix}")
        if status == 401:
            raise SourceAuthFailed(f"{what}: the credential was refused (HTTP 401){suffix}")
        if status == 403:
            raise SourcePermissionDenied(f"{what}: permission denied (HTTP 403){suffix}")
        raise SourceRejected(f"{what}: HTTP {status}{suffix}", status=status)


def next_link(headers: Mapping[str, str]) -> str | None:
    """The rel="next" target of an RFC 8288 Link header (Okta's paging)."""
    value = headers.get("Link") or ""
    for part in value.split(","):
        target, _, params = part.strip().partition(";")
        rels = [p.strip() for p in params.split(";")]
        if 'rel="next"' in rels or "rel=next" in rels:
            return target.strip().strip("<>")
    return None
