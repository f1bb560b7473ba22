"""Enrolled hosts: presence, certificates and revocation, as the control plane sees them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class HostState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    REVOKED = "revoked"


class Host(BaseModel):
    """One enrolled (or enrolling) host; read from storage with `model_validate(record)`."""

    model_config = ConfigDict(from_attributes=True, frozen=True, defer_build=True)

    name: str
    state: HostState = HostState.OFFLINE
    roles: list[str] = Field(default_factory=list)
    created_at: datetime
    last_seen: datetime | None = None
    connected_at: datetime | None = None
    relay_version: str | None = None
    cert_id: str | None = None
    cert_expires_at: datetime | None = None
    # A renewed certificate issued but not yet used: {id, expires_at, key_sha256, job_id, pem}.
    pending_cert: dict[str, Any] | None = None
    renewal_granted_at: datetime | None = None
    revoked_at: datetime | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    # How many times the tags changed: a change is conditional on the count it read.
    tags_version: int = 0

    @field_validator("roles", "tags", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return {} if info.field_name == "tags" else []
        return value

    @field_validator("tags_version", mode="before")
    @classmethod
    def _never_tagged(cls, value: Any) -> Any:
        return 0 if value is None else int(value)

    @property
    def certificate_ids(self) -> list[str]:
        """Every certificate the host may connect with: the current one and a pending renewal."""
        ids = [self.cert_id] if self.cert_id else []
        pending = self.pending_cert or {}
        if pending.get("id") and pending["id"] not in ids:
            ids.append(str(pending["id"]))
        return ids
