"""Domain errors; the API maps each to one HTTP status in exactly one place (api/errors.py)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: `code` is stable and machine-readable, the message is for people."""

    code = "error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class InvalidRequest(DomainError):
    code = "invalid_request"


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class RateLimited(DomainError):
    code = "rate_limited"


class StaleWrite(DomainError):
    """A conditional write lost against a concurrent change; callers re-read or give up."""

    code = "stale_write"
