"""A resolver that includes the routers of rarely used resources on their first request."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import Router
    from aws_lambda_powertools.utilities.typing import LambdaContext


class DeferringResolver(APIGatewayHttpResolver):
    """Powertools' HTTP API resolver, plus routers registered by path prefix and built (their
    modules imported) by the first request under that prefix, or for the OpenAPI document.

    A router's import can cost a cold start more than its routes are ever used: connectors,
    inventory and runs serve few requests, and their models and logic are most of the API's
    own import time. Until included, their paths are not routed at all, so every request
    includes what it may match first.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._deferred: dict[str, Callable[[], Router]] = {}
        self._including = threading.Lock()  # the local stack serves requests on threads

    def defer_router(self, prefix: str, build: Callable[[], Router]) -> None:
        """Include `build()` when a request's path starts with `prefix` (e.g. `/v1/runs`)."""
        self._deferred[prefix] = build

    def include_deferred(self, path: str | None = None) -> None:
        """Include the deferred routers `path` may reach; every one when `path` is None."""
        if not self._deferred:
            return
        with self._including:
            for prefix in list(self._deferred):
                if path is None or path == prefix or path.startswith(f"{prefix}/"):
                    self.include_router(self._deferred.pop(prefix)())

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        self.include_deferred(str(event.get("rawPath") or ""))
        return super().resolve(event, context)
