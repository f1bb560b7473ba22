"""Models of the tokens routes: a token to create, and a token's metadata (never its secret)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, StrictInt

from hostrelay.api.models.base import FromDomain, JobTypeName, RequestModel, ResponseModel
from hostrelay.domain.principal import Scope
from hostrelay_contract.names import HostName
from hostrelay_contract.text_patterns import TextPattern

TOKEN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # noqa: S105 - not a secret
TOKEN_ID = TextPattern(TOKEN_ID_PATTERN, "1-64 letters, digits, '_' or '-'")


class TokenCreateRequest(RequestModel):
    """A new API token; its secret is returned once and never stored."""

    name: str = Field(min_length=1, max_length=64, description="What the token is for")
    scopes: list[Scope] = Field(min_length=1, max_length=4)
    expires_in_s: StrictInt | None = Field(
        default=None, ge=60, le=10 * 366 * 86400, description="Lifetime; no expiry if unset"
    )
    job_types: list[JobTypeName] | None = Field(
        default=None,
        max_length=32,
        description='Service tokens (required): the job types they may create, or `["*"]`',
    )
    hosts: list[HostName | Literal["*"]] | None = Field(
        default=None,
        max_length=1000,
        description='Service tokens (required): the hosts they may target, or `["*"]`',
    )


class TokenCreated(ResponseModel):
    id: str
    token: str = Field(description="The secret: shown this once, store it now")
    name: str
    scopes: list[Scope]
    expires_at: datetime | None


class TokenOut(FromDomain):
    """A token's metadata; never its secret or hash."""

    id: str = Field(validation_alias="token_id")
    name: str
    scopes: list[str]
    job_types: list[str] | None
    hosts: list[str] | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenList(ResponseModel):
    tokens: list[TokenOut]
