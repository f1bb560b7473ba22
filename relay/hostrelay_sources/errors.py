"""Why a source could not be read or changed: each error has a stable code for the run."""

from __future__ import annotations

from typing import Any


class SourceError(Exception):
    """A source failed in a way the run reports (never a crash); `code` names the kind."""

    code = "source_error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class BadCredentials(SourceError):
    code = "bad_credentials"


class PermissionDenied(SourceError):
    code = "permission_denied"


class Unreachable(SourceError):
    code = "source_unreachable"


class Throttled(SourceError):
    code = "source_throttled"


class CredentialUnavailable(SourceError):
    code = "credential_unavailable"


class Rejected(SourceError):
    """Another 4xx/5xx answer: a bad request, a missing object."""

    code = "source_error"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, details=[{"status": status}])
        self.status = status
