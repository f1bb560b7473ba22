"""A resolver that includes each router on the first request under its paths."""

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
    modules imported, their models defined) by the first request under one of their prefixes,
    or for the OpenAPI document.

    A container serves a few resources: a request pays for its own router, not for the
    others' modules and models. Until included, a router's paths are not routed at all, so
    every request includes what it may match first.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._deferred: list[tuple[tuple[str, ...], Callable[[], Router]]] = []
        self._including = threading.Lock()  # the local stack serves requests on threads

    def defer_router(self, prefixes: str | tuple[str, ...], build: Callable[[], Router]) -> None:
        """Include `build()` once, when a request's path is or lies under one of `prefixes`
        (e.g. `/v1/runs`: `/v1/runs` and `/v1/runs/...`, not `/v1/runsx`)."""
        self._deferred.append(((prefixes,) if isinstance(prefixes, str) else prefixes, build))

    def include_deferred(self, path: str | None = None) -> None:
        """Include the deferred routers `path` may reach; every one when `path` is None, in
        the order they were deferred."""
        if not self._deferred:
            return
        with self._including:
            for entry in list(self._deferred):
                prefixes, build = entry
                if path is None or any(_under(path, prefix) for prefix in prefixes):
                    self._deferred.remove(entry)
                    self.include_router(build())

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        self.include_deferred(str(event.get("rawPath") or ""))
        return super().resolve(event, context)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(f"{prefix}/")
