"""The one error type directory code raises: a stable code plus a message fit for an operator."""

from __future__ import annotations


class DirectoryError(Exception):
    """A directory operation failed; `code` is reported as the job's error code."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
