"""One-shot enrollments: which host a token may enroll, until when, and whether it was used."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class Enrollment(BaseModel):
    """An enrollment offer (never its token); read from storage with `model_validate`."""

    model_config = ConfigDict(from_attributes=True, frozen=True, defer_build=True)

    enrollment_id: str
    host: str
    roles: list[str]
    replace: bool
    tags: dict[str, str] | None = None
    created_by: str
    created_at: datetime
    valid_until: datetime
    consumed_at: datetime | None = None

    @field_validator("roles", mode="before")
    @classmethod
    def _no_roles(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("replace", mode="before")
    @classmethod
    def _stored_flag(cls, value: Any) -> Any:
        # Stored as the strings "true" and "false".
        return value == "true" if isinstance(value, str) else value
