"""Bearer-token headers and the per-route scope checks built on them (Depends)."""

from __future__ import annotations

import re
from collections.abc import Callable

from aws_lambda_powertools.event_handler import Request

from hostrelay.domain.errors import Unauthorized
from hostrelay.domain.principal import Principal, Scope
from hostrelay.logic.tokens import Authenticator

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
            secret = bearer_secret(request.headers.get("authorization"))
            principal = authenticator.authenticate(secret)
            if scope is not None:
                principal.require(scope)
            return principal

        dependency.__name__ = f"require_{scope.value if scope else 'token'}"
        return dependency
