"""API tokens: what a bearer token grants, and how its secret is known without storing it."""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from hostrelay.domain.principal import Principal, Scope


def hash_token(secret: str) -> str:
    """SHA-256 of a token's secret: what is stored and compared, never the secret itself."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(BaseModel):
    """A token's metadata (never its secret or hash); read from storage with `model_validate`."""

    model_config = ConfigDict(from_attributes=True, frozen=True, defer_build=True)

    token_id: str
    name: str
    scopes: list[str]
    job_types: list[str] | None = None
    hosts: list[str] | None = None
    created_by: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable_at(self, now: datetime) -> str | None:
        """Why the token may not be used at `now` ("token revoked", "token expired"), or None."""
        if self.revoked_at is not None:
            return "token revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "token expired"
        return None

    def principal(self) -> Principal:
        """Scopes this code does not know (from a newer version) grant nothing."""
        known = {scope.value for scope in Scope}
        return Principal(
            token_id=self.token_id,
            name=self.name,
            scopes=[Scope(scope) for scope in self.scopes if scope in known],
            job_types=self.job_types,
            hosts=self.hosts,
        )
