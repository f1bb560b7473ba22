"""The one place where errors become HTTP responses: `{"error": {code, message, details}}`."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)

from hostrelay.api.models.errors import ErrorBody, ErrorResponse
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
from hostrelay.observability import logger


class MalformedRequest(DomainError):
    """The request cannot be read at all (bad JSON, bad pagination token): 400."""

    code = "malformed_request"


class MalformedJson(MalformedRequest):
    """The body is not JSON (nor UTF-8 text): 400."""

    code = "malformed_json"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    """A body that is not `application/json`: 415."""

    code = "unsupported_media_type"


STATUS_OF: dict[type[DomainError], HTTPStatus] = {
    MalformedRequest: HTTPStatus.BAD_REQUEST,
    Unauthorized: HTTPStatus.UNAUTHORIZED,
    Forbidden: HTTPStatus.FORBIDDEN,
    NotFound: HTTPStatus.NOT_FOUND,
    Conflict: HTTPStatus.CONFLICT,
    StaleWrite: HTTPStatus.CONFLICT,
    PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    UnsupportedMediaType: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    InvalidRequest: HTTPStatus.UNPROCESSABLE_ENTITY,
    RateLimited: HTTPStatus.TOO_MANY_REQUESTS,
}

# RFC 6750: a 401 tells the client which scheme to use.
WWW_AUTHENTICATE = 'Bearer realm="hostrelay"'


def status_of(error: DomainError) -> HTTPStatus:
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return HTTPStatus.BAD_REQUEST


def error_response(
    status: HTTPStatus,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details or []))
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(mode="json"),
        headers=headers,
    )


def domain_error_response(error: DomainError) -> Response[dict[str, Any]]:
    status = status_of(error)
    headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if status is HTTPStatus.UNAUTHORIZED else None
    return error_response(status, error.code, error.message, error.details, headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_error_response(error: RequestValidationError) -> Response[dict[str, Any]]:
    """Unreadable JSON is a 400; a readable body or parameter of the wrong shape is a 422."""
    errors = error.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(
            HTTPStatus.BAD_REQUEST, "malformed_json", "the request body is not valid JSON"
        )
    details = [
        {"field": _field(e.get("loc", ())), "message": str(e.get("msg", e.get("type", "")))}
        for e in errors
    ]
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", "the request is invalid", details
    )


def internal_error_response(error: Exception, request_id: str) -> Response[dict[str, Any]]:
    """The one broad handler: a bug or an outage, never the caller's input."""
    logger.exception("unhandled error", extra={"error_type": type(error).__name__})
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "internal_error",
        f"internal error; quote request id {request_id}",
        [{"request_id": request_id}],
    )


def unsupported_content_type_response(
    error: RequestUnsupportedContentType,
) -> Response[dict[str, Any]]:
    return domain_error_response(UnsupportedMediaType("send the body as application/json"))


def service_error_response(error: ServiceError) -> Response[dict[str, Any]]:
    status = HTTPStatus(error.status_code)
    return error_response(status, status.phrase.lower().replace(" ", "_"), str(error.msg))


def register_error_handlers(resolver: APIGatewayHttpResolver) -> None:
    """Map every error the API can raise onto the error shape of the contract."""

    def not_found(error: NotFoundError) -> Response[dict[str, Any]]:
        event = resolver.current_event
        message = f"no route for {event.http_method} {event.path}"
        return error_response(HTTPStatus.NOT_FOUND, "not_found", message)

    def unexpected(error: Exception) -> Response[dict[str, Any]]:
        return internal_error_response(error, request_id(resolver))

    handlers: list[tuple[type[Exception] | list[type[Exception]], Callable[..., Any]]] = [
        (DomainError, domain_error_response),
        (RequestValidationError, validation_error_response),
        (RequestUnsupportedContentType, unsupported_content_type_response),
        (NotFoundError, not_found),  # no route matched
        (ServiceError, service_error_response),
        ([ResponseValidationError, Exception], unexpected),
    ]
    for errors, handler in handlers:
        resolver.exception_handler(errors)(handler)


def request_id(resolver: APIGatewayHttpResolver) -> str:
    """API Gateway's request id: what the caller can quote and what the logs correlate on."""
    context = resolver.current_event.get("requestContext") or {}
    return str(context.get("requestId") or resolver.lambda_context.aws_request_id)
