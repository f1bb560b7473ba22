"""Domain errors of machine-account capture and repair; each carries the code a job reports."""

from __future__ import annotations

from typing import Any, ClassVar


class MacctError(Exception):
    """Base: `code` is machine-readable, `message` safe to show (never holds a secret)."""

    code: ClassVar[str] = "macct_error"

    def __init__(self, message: str, *, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.result = result


class StepTimedOut(MacctError):
    """A step ran past the job's deadline; any tool it started was killed."""

    code = "timeout"


class StepCanceled(MacctError):
    """The job was canceled; any tool the step started was killed."""

    code = "canceled"


class SamDbError(MacctError):
    """An ldb tool failed on sam.ldb."""

    code = "samdb_error"


class SearchBaseMissing(SamDbError):
    """The search base DN does not exist in the directory."""

    code = "search_base_missing"


class SchoolNotFound(MacctError):
    """The school's device OU (OU=Devices,OU=<school>,OU=SCHOOLS,...) does not exist."""

    code = "school_not_found"


class ComputerNotFound(MacctError):
    """No account with the computer's sAMAccountName exists."""

    code = "computer_not_found"


class AccountRefused(MacctError):
    """The account exists but is not a workstation computer (a user, a DC, ...)."""

    code = "account_refused"


class AccountHasNoSecrets(MacctError):
    """The computer account has no password set, so there is nothing to capture."""

    code = "no_secrets"


class CaptureMissing(MacctError):
    """No capture is stored on this DC for the image."""

    code = "capture_not_found"


class CaptureUntrusted(MacctError):
    """The stored capture (or its key) has wrong ownership/permissions or fails its HMAC."""

    code = "capture_untrusted"


class RepairFailed(MacctError):
    """At least one computer could not be repaired; `result` lists every computer's outcome."""

    code = "repair_failed"
