"""The audit trail's events: who did what to which target, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class AuditEvent(BaseModel):
    """One recorded action; read from storage with `model_validate(record)`."""

    model_config = ConfigDict(from_attributes=True, frozen=True, defer_build=True)

    event_id: str
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]

    @field_validator("details", mode="before")
    @classmethod
    def _no_details(cls, value: Any) -> Any:
        return {} if value is None else value
