"""Routes of /v1/tokens: issue, list and revoke API tokens (admin)."""

# No `from __future__ import annotations`: Powertools reads these signatures at runtime.

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path

from hostrelay.api.models.tokens import (
    TOKEN_ID,
    TokenCreated,
    TokenCreateRequest,
    TokenList,
    TokenOut,
)
from hostrelay.api.openapi import BEARER_AUTH, BODY_ERRORS, responses
from hostrelay.api.routers import new_router
from hostrelay.api.services import ApiServices
from hostrelay.domain.principal import Principal, Scope
from hostrelay.logic.tokens import NewToken

TokenId = Annotated[str, TOKEN_ID, Path(description="Token id")]


def tokens_router(services: ApiServices) -> Router:
    router = new_router()
    access, tokens = services.access, services.tokens

    @router.post(
        "/v1/tokens",
        summary="Create a token",
        description="The secret is in the response only; it is stored as a SHA-256 hash.",
        tags=["tokens"],
        security=BEARER_AUTH,
        status_code=HTTPStatus.CREATED.value,
        responses=responses({201: "The token and its secret"}, 403, *BODY_ERRORS),
    )
    def create_token(
        body: TokenCreateRequest, principal: Annotated[Principal, Depends(access.admin)]
    ) -> TokenCreated:
        request = NewToken(
            name=body.name,
            scopes=body.scopes,
            expires_in_s=body.expires_in_s,
            job_types=body.job_types,
            hosts=body.hosts,
        )
        secret, token = tokens.issue(request, principal)
        return TokenCreated(
            id=token.token_id,
            token=secret,
            name=token.name,
            scopes=[Scope(scope) for scope in token.scopes],
            expires_at=token.expires_at,
        )

    @router.get(
        "/v1/tokens",
        summary="List tokens",
        description="Metadata only: secrets and their hashes are never returned.",
        tags=["tokens"],
        security=BEARER_AUTH,
        responses=responses({200: "Every token, oldest first"}, 403),
    )
    def list_tokens(principal: Annotated[Principal, Depends(access.admin)]) -> TokenList:
        return TokenList(tokens=[TokenOut.model_validate(t) for t in tokens.list(principal)])

    @router.delete(
        "/v1/tokens/<token_id>",
        summary="Revoke a token",
        tags=["tokens"],
        security=BEARER_AUTH,
        responses=responses({200: "The revoked token"}, 403, 404),
    )
    def revoke_token(
        token_id: TokenId, principal: Annotated[Principal, Depends(access.admin)]
    ) -> TokenOut:
        return TokenOut.model_validate(tokens.revoke(token_id, principal))

    return router
