"""Models of the hosts routes: a host as the API shows it, and a patch of its tags."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from hostrelay.api.models.base import FromDomain, RequestModel, ResponseModel
from hostrelay.domain.tags import MAX_TAGS, TagKey, TagValue


class HostOut(FromDomain):
    name: str
    state: str = Field(description="`online`, `offline` or `revoked`")
    roles: list[str]
    last_seen: datetime | None
    connected_at: datetime | None
    relay_version: str | None
    cert_expires_at: datetime | None
    revoked_at: datetime | None
    tags: dict[str, str] = Field(description="The host's tags, `{key: value}`")


class HostList(ResponseModel):
    hosts: list[HostOut]


class HostPatchRequest(RequestModel):
    """A JSON merge patch (RFC 7396) of a host's tags: a value sets a tag, null removes it."""

    tags: dict[TagKey, TagValue | None] = Field(
        max_length=2 * MAX_TAGS,
        description=f"Tags to set (`key: value`) or remove (`key: null`); at most {MAX_TAGS} "
        "tags remain on the host",
    )
