"""OpenAPI metadata shared by the routers: the bearer scheme and the documented responses."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

from hostrelay.api.models.errors import ErrorResponse

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.models import SecurityScheme
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

TITLE = "hostrelay API"
DESCRIPTION = (
    "Queue jobs for on-premises hosts, follow their output, and manage hosts and API tokens. "
    "Every route but /v1/health and /v1/openapi.json needs `Authorization: Bearer <token>`. "
    'Errors are always `{"error": {"code", "message", "details"}}`. A request without a '
    "valid token gets 401 before anything else about it is checked.\n\n"
    "Request bodies are JSON (`Content-Type: application/json`, else 415), UTF-8 (else 400), "
    "at most 256 KiB (`MAX_BODY_BYTES`, else 413), and within what DynamoDB can store (else "
    "422): nested at most 32 levels deep, integers of at most 38 digits, other numbers finite "
    "and between 1e-130 and 1e126 in magnitude, no NaN or Infinity, no lone surrogates in "
    "strings. Fields take JSON's own types: no string or boolean for an integer, no number "
    "for a boolean, date-times as ISO 8601 text with a UTC offset."
)
TAGS = ["meta", "jobs", "runs", "hosts", "tokens", "audit", "macct", "connectors", "inventory"]
BEARER_AUTH: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def security_schemes() -> dict[str, SecurityScheme]:
    # Imported here: Powertools' OpenAPI models take ~100 ms to import, and only the
    # /v1/openapi.json route needs them.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return {"bearerAuth": HTTPBearer(description="An API token (`hostrelay tokens create`)")}


_ERROR_DESCRIPTIONS = {
    400: "Malformed request (body not UTF-8 JSON, bad next_token)",
    401: "Missing, invalid, expired or revoked token (checked before anything else)",
    403: "The token lacks the scope this needs",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Request body too large",
    415: "The body is not application/json",
    422: "The request is well-formed but invalid, or beyond a documented limit",
}
# What any route that takes a body may answer about the body itself (see DESCRIPTION).
BODY_ERRORS = (400, 413, 415)


def responses(success: dict[int, str], *errors: int) -> dict[int, OpenAPIResponse]:
    """Success responses (their schema comes from the route's return type) plus error ones."""
    documented: dict[int, OpenAPIResponse] = {
        status: {"description": text} for status, text in success.items()
    }
    for status in (*errors, 401, 422):
        documented[status] = {
            "description": _ERROR_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {"application/json": {"model": ErrorResponse}},
        }
    return documented
