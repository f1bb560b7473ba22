"""The one mapping from errors to HTTP responses, and the strict JSON body parser."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from hostrelay.api.errors import (
    MalformedJson,
    MalformedRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    domain_error_response,
    internal_error_response,
    validation_error_response,
)
from hostrelay.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    StaleWrite,
    Unauthorized,
)


def body_of(response: Response[Any]) -> dict[str, Any]:
    assert isinstance(response.body, dict)
    return response.body


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (MalformedRequest("x"), 400),
        (Unauthorized("x"), 401),
        (Forbidden("x"), 403),
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (StaleWrite("x"), 409),
        (PayloadTooLarge("x"), 413),
        (UnsupportedMediaType("x"), 415),
        (MalformedJson("x"), 400),
        (InvalidRequest("x"), 422),
        (RateLimited("x"), 429),
    ],
)
def test_each_domain_error_has_one_status(error: DomainError, status: int) -> None:
    response = domain_error_response(error)
    assert response.status_code == status
    assert body_of(response) == {"error": {"code": error.code, "message": "x", "details": []}}


def test_401_challenges_for_a_bearer_token() -> None:
    response = domain_error_response(Unauthorized("missing token"))
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "WWW-Authenticate" not in domain_error_response(Forbidden("no")).headers


def test_details_are_kept() -> None:
    error = InvalidRequest("bad", details=[{"field": "type", "allowed": ["ping"]}])
    assert body_of(domain_error_response(error))["error"]["details"] == [
        {"field": "type", "allowed": ["ping"]}
    ]


def test_unreadable_json_is_400() -> None:
    error = RequestValidationError(
        [{"type": "json_invalid", "loc": ("body", 3), "msg": "JSON decode error"}]
    )
    response = validation_error_response(error)
    assert response.status_code == 400
    assert body_of(response)["error"]["code"] == "malformed_json"


def test_shape_errors_are_422_with_fields() -> None:
    error = RequestValidationError(
        [
            {"type": "extra_forbidden", "loc": ("body", "priority"), "msg": "Extra inputs"},
            {"type": "missing", "loc": ("body", "type"), "msg": "Field required"},
        ]
    )
    response = validation_error_response(error)
    assert response.status_code == 422
    assert body_of(response)["error"]["details"] == [
        {"field": "body.priority", "message": "Extra inputs"},
        {"field": "body.type", "message": "Field required"},
    ]


def test_internal_error_names_the_request_but_not_the_exception() -> None:
    response = internal_error_response(RuntimeError("password=hunter2"), "req-123")
    assert response.status_code == 500
    text = json.dumps(body_of(response))
    assert "req-123" in text
    assert "hunter2" not in text and "RuntimeError" not in text
