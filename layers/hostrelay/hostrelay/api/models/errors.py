"""The error body every route answers with (the one place errors become HTTP uses it)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hostrelay.api.models.base import ResponseModel


class ErrorBody(ResponseModel):
    code: str = Field(description="Stable, machine-readable error code")
    message: str = Field(description="What went wrong, for people")
    details: list[dict[str, Any]] = Field(default_factory=list)


class ErrorResponse(ResponseModel):
    """The shape of every error the API returns."""

    error: ErrorBody
