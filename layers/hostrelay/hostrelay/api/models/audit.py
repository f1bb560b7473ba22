"""Models of the audit route: the trail's events, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from hostrelay.api.models.base import FromDomain, ResponseModel


class AuditEventOut(FromDomain):
    id: str = Field(validation_alias="event_id")
    at: datetime
    actor: str = Field(description="`token:<id>/<name>`, `enrollment:<id>` or `system:...`")
    action: str = Field(description="e.g. `token.create`, `host.revoke`, `job.cancel`")
    target: str
    details: dict[str, Any]


class AuditPage(ResponseModel):
    events: list[AuditEventOut] = Field(description="Newest first")
