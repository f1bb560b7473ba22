"""Bearer-token authentication and the per-route scope checks built on it (Depends)."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from datetime import datetime

from aws_lambda_powertools.event_handler import Request

from hostrelay.clock import utcnow
from hostrelay.dal.tables import TokenRecord
from hostrelay.dal.tokens_repo import TokenRepository, hash_token
from hostrelay.domain.errors import Unauthorized
from hostrelay.domain.principal import Principal, Scope

BOOTSTRAP_TOKEN_ID = "bootstrap"  # noqa: S105 - an id, not a secret
# RFC 6750 b64token, bounded so a huge header costs nothing to reject.
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]{1,512}=*) *$", re.IGNORECASE)

PrincipalDependency = Callable[[Request], Principal]


def bearer_secret(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; Unauthorized otherwise."""
    if not authorization:
        raise Unauthorized("missing Authorization: Bearer <token> header")
    match = _BEARER.match(authorization)
    if match is None:
        raise Unauthorized("malformed Authorization header; expected Bearer <token>")
    return match.group(1)


def principal_of(record: TokenRecord) -> Principal:
    """Scopes this code does not know (from a newer version) grant nothing."""
    known = {scope.value for scope in Scope}
    return Principal(
        token_id=record.token_id,
        name=record.name,
        scopes=[Scope(str(s)) for s in record.scopes or [] if str(s) in known],
        job_types=[str(t) for t in record.job_types] if record.job_types is not None else None,
        hosts=[str(h) for h in record.hosts] if record.hosts is not None else None,
    )


class Authenticator:
    """Turns a bearer token into the Principal it stands for, or raises Unauthorized."""

    def __init__(
        self,
        tokens: TokenRepository,
        bootstrap_token_hash: str = "",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._tokens = tokens
        self._bootstrap_hash = bootstrap_token_hash.lower()
        self._clock = clock

    def authenticate(self, authorization: str | None) -> Principal:
        secret = bearer_secret(authorization)
        if self._bootstrap_hash and hmac.compare_digest(hash_token(secret), self._bootstrap_hash):
            return Principal(token_id=BOOTSTRAP_TOKEN_ID, name="bootstrap", scopes=[Scope.ADMIN])
        record = self._tokens.find_by_secret(secret)
        if record is None:
            raise Unauthorized("invalid token")
        now = self._clock()
        if record.revoked_at is not None:
            raise Unauthorized("token revoked")
        if record.expires_at is not None and record.expires_at <= now:
            raise Unauthorized("token expired")
        self._tokens.touch(record, now)
        return principal_of(record)


class AccessControl:
    """Route dependencies: `Annotated[Principal, Depends(access.reader)]` and friends."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator
        self.authenticated: PrincipalDependency = self._requiring(None)
        self.reader: PrincipalDependency = self._requiring(Scope.READER)
        self.operator: PrincipalDependency = self._requiring(Scope.OPERATOR)
        self.admin: PrincipalDependency = self._requiring(Scope.ADMIN)

    def _requiring(self, scope: Scope | None) -> PrincipalDependency:
        authenticator = self._authenticator

        def dependency(request: Request) -> Principal:
            principal = authenticator.authenticate(request.headers.get("authorization"))
            if scope is not None:
                principal.require(scope)
            return principal

        dependency.__name__ = f"require_{scope.value if scope else 'token'}"
        return dependency
