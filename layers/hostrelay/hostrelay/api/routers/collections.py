"""What the jobs and runs routes share: the create response and the paging parameters."""

# No `from __future__ import annotations` here: Powertools reads the Annotated types at runtime.

from collections.abc import Mapping
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from hostrelay.api.pagination import decode_next_token

Body = TypeVar("Body")

NextToken = Annotated[str | None, Query(max_length=2048, description="From the previous page")]


def created_response(body: Body, *, created: bool, location: str) -> Response[Body]:
    """201 with the new resource, or 200 with the first one for an idempotent replay; either
    way `Location` names it."""
    return Response(
        status_code=HTTPStatus.CREATED.value if created else HTTPStatus.OK.value,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Location": location},
    )


def start_key(
    next_token: str | None,
    *,
    keys: frozenset[str],
    fixed: Mapping[str, str] | None = None,
    prefixed: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """Where a page starts: nowhere for the first page, else the key `next_token` stands for
    (checked to belong to this listing, else a 400)."""
    if not next_token:
        return None
    return decode_next_token(next_token, keys=keys, fixed=fixed, prefixed=prefixed)
