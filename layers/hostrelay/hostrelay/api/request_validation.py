"""Request validation that authenticates first and reads bodies only as strict JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler.api_gateway import _DEPENDS_CACHE_KEY
from aws_lambda_powertools.event_handler.depends import build_dependency_tree, solve_dependencies
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)

from hostrelay.api.json_body import body_text, parse_json, require_json

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
    from aws_lambda_powertools.event_handler.types import EventHandlerInstance


class AuthenticatedRequestValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, with two changes:

    - a route's dependencies (its token check) run before its parameters and body are
      validated: a request without a valid token gets 401 whatever it sends, so nobody learns
      the API's validation rules without a token. The route reuses the resolved values.
    - a body is read only as `application/json` (else 415), decoded strictly as UTF-8 and
      parsed within the limits of json_body (never a RecursionError or UnicodeDecodeError).
    """

    def __init__(self, max_body_bytes: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated
        self._max_body_bytes = max_body_bytes

    def handler(self, app: EventHandlerInstance, next_middleware: NextMiddleware) -> Response[Any]:
        route = app.context["_route"]
        # The same per-request cache the route's own Depends() read: each runs once.
        solve_dependencies(
            dependant=build_dependency_tree(route.func),
            request=app.request,
            dependency_overrides=app.dependency_overrides or None,
            dependency_cache=app.context.setdefault(_DEPENDS_CACHE_KEY, {}),
        )
        return super().handler(app, next_middleware)

    def _get_body(self, app: EventHandlerInstance) -> Any:
        event = app.current_event
        require_json(event.headers.get("content-type"))
        text = body_text(
            event.body,
            base64_encoded=bool(event.is_base64_encoded),
            max_body_bytes=self._max_body_bytes,
        )
        return parse_json(text) if text else None


def install(resolver: APIGatewayHttpResolver, max_body_bytes: int) -> None:
    """Replace the resolver's request validation (Powertools has no public hook that runs
    before it; the resolver builds each route's middleware stack from this attribute)."""
    resolver._request_validation_middleware = AuthenticatedRequestValidation(max_body_bytes)
