"""API tokens: who a bearer secret is (Authenticator), and issuing, listing and revoking them
(TokenAdmin: admins only; secrets are shown once)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ulid import ULID

from hostrelay.clock import utcnow
from hostrelay.dal.audit_repo import AuditRepository
from hostrelay.dal.tokens_repo import TokenRepository
from hostrelay.domain.errors import InvalidRequest, NotFound, Unauthorized
from hostrelay.domain.principal import ANY, Principal, Scope
from hostrelay.domain.tokens import ApiToken, hash_token

BOOTSTRAP_TOKEN_ID = "bootstrap"  # noqa: S105 - an id, not a secret


class Authenticator:
    """Turns a bearer token's secret into the Principal it stands for, or raises Unauthorized."""

    def __init__(
        self,
        tokens: TokenRepository,
        bootstrap_token_hash: str = "",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._tokens = tokens
        self._bootstrap_hash = bootstrap_token_hash.lower()
        self._clock = clock

    def authenticate(self, secret: str) -> Principal:
        if self._bootstrap_hash and hmac.compare_digest(hash_token(secret), self._bootstrap_hash):
            return Principal(token_id=BOOTSTRAP_TOKEN_ID, name="bootstrap", scopes=[Scope.ADMIN])
        token = self._tokens.find_by_secret(secret)
        if token is None:
            raise Unauthorized("invalid token")
        now = self._clock()
        refused = token.usable_at(now)
        if refused is not None:
            raise Unauthorized(refused)
        self._tokens.touch(secret, token, now)
        return token.principal()


@dataclass(frozen=True)
class NewToken:
    name: str
    scopes: list[Scope]
    expires_in_s: int | None = None
    job_types: list[str] | None = None
    hosts: list[str] | None = None


def _check_restrictions(request: NewToken) -> None:
    """A service token names the job types and hosts it may use: nothing open by default.

    `*` (alone in its list) is how an admin allows every type or every host on purpose.
    """
    restricted = request.job_types is not None or request.hosts is not None
    if restricted and Scope.SERVICE not in request.scopes:
        raise InvalidRequest(
            "job_types and hosts restrict service tokens only",
            details=[{"field": "scopes", "message": "add the service scope"}],
        )
    if Scope.SERVICE in request.scopes:
        missing = [
            {"field": field, "message": f"name them, or [{ANY!r}] for all on purpose"}
            for field, values in (("job_types", request.job_types), ("hosts", request.hosts))
            if not values
        ]
        if missing:
            raise InvalidRequest(
                "a service token must name the job types and hosts it may use", details=missing
            )
    for field, values in (("job_types", request.job_types), ("hosts", request.hosts)):
        if values and ANY in values and len(values) > 1:
            raise InvalidRequest(
                f"{field}: {ANY!r} allows all and must be the only entry",
                details=[{"field": field, "message": f"either [{ANY!r}] or a list of names"}],
            )
    # Here, not at import: authenticating a request needs none of the job types' models.
    from hostrelay_contract.job_types import JOB_TYPES

    unknown = sorted(set(request.job_types or []) - set(JOB_TYPES) - {ANY})
    if unknown:
        raise InvalidRequest(
            f"unknown job types: {', '.join(unknown)}",
            details=[{"field": "job_types", "allowed": sorted(JOB_TYPES)}],
        )


def _unrestricted(request: NewToken) -> list[str]:
    """Which of a service token's limits the admin opened with `*` (named in the audit)."""
    return [
        field
        for field, values in (("job_types", request.job_types), ("hosts", request.hosts))
        if values and ANY in values
    ]


class TokenAdmin:
    def __init__(
        self,
        tokens: TokenRepository,
        clock: Callable[[], datetime] = utcnow,
        audit: AuditRepository | None = None,
    ) -> None:
        self._tokens = tokens
        self._clock = clock
        self._audit = audit or AuditRepository(enabled=False)

    def issue(self, request: NewToken, principal: Principal) -> tuple[str, ApiToken]:
        """Create a token; returns (secret, token). The secret is not stored anywhere."""
        principal.require(Scope.ADMIN)
        _check_restrictions(request)
        expires_at = (
            self._clock() + timedelta(seconds=request.expires_in_s)
            if request.expires_in_s is not None
            else None
        )
        secret, token = self._tokens.create(
            token_id=str(ULID()),
            name=request.name,
            scopes=sorted({scope.value for scope in request.scopes}),
            created_by=principal.label,
            expires_at=expires_at,
            job_types=request.job_types,
            hosts=request.hosts,
        )
        # The secret and its hash stay out of the trail: the id names the token.
        self._audit.append(
            principal.label, "token.create", f"token:{token.token_id}",
            {"name": token.name, "scopes": list(token.scopes),
             "job_types": request.job_types, "hosts": request.hosts,
             "unrestricted": _unrestricted(request),
             "expires_at": expires_at.isoformat() if expires_at else None},
        )  # fmt: skip
        return secret, token

    def list(self, principal: Principal) -> list[ApiToken]:
        principal.require(Scope.ADMIN)
        return sorted(self._tokens.all(), key=lambda token: token.created_at)

    def revoke(self, token_id: str, principal: Principal) -> ApiToken:
        principal.require(Scope.ADMIN)
        token = self._tokens.revoke(token_id)
        if token is None:
            raise NotFound(f"token {token_id} not found")
        self._audit.append(
            principal.label, "token.revoke", f"token:{token_id}", {"name": token.name}
        )
        return token
