"""Routers of rarely used resources are built by the first request under their prefix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router

from hostrelay.api.deferred_routers import DeferringResolver

HEALTH_EVENT = Path(__file__).resolve().parents[3] / "events" / "api_health.json"


def get(resolver: DeferringResolver, path: str) -> dict[str, Any]:
    event = json.loads(HEALTH_EVENT.read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    return resolver.resolve(event, None)  # type: ignore[arg-type]


def things_resolver(builds: list[str]) -> DeferringResolver:
    resolver = DeferringResolver()

    @resolver.get("/v1/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    def build_things() -> Router:
        builds.append("things")
        router = Router()  # type: ignore[no-untyped-call]

        @router.get("/v1/things/<thing_id>")
        def thing(thing_id: str) -> dict[str, str]:
            return {"id": thing_id}

        return router

    resolver.defer_router("/v1/things", build_things)
    return resolver


def test_other_paths_never_build_the_deferred_router() -> None:
    # Given a resolver with a deferred /v1/things router
    builds: list[str] = []
    resolver = things_resolver(builds)
    # When requests go elsewhere, including a path that only begins with the same letters
    assert get(resolver, "/v1/health")["statusCode"] == 200
    assert get(resolver, "/v1/thingsx/1")["statusCode"] == 404
    # Then the router was never built
    assert builds == []


def test_the_first_request_under_the_prefix_builds_it_once_and_is_routed() -> None:
    # Given a resolver with a deferred /v1/things router
    builds: list[str] = []
    resolver = things_resolver(builds)
    # When two requests reach its paths
    first = get(resolver, "/v1/things/a")
    second = get(resolver, "/v1/things/b")
    # Then both are answered by its route, and it was built once
    assert (first["statusCode"], json.loads(first["body"])) == (200, {"id": "a"})
    assert json.loads(second["body"]) == {"id": "b"}
    assert builds == ["things"]


def test_including_every_deferred_router_puts_its_routes_in_the_openapi_document() -> None:
    # Given a resolver with a deferred router nobody requested yet
    builds: list[str] = []
    resolver = things_resolver(builds)
    # When every deferred router is included (as the OpenAPI route does first)
    resolver.include_deferred()
    # Then the document lists its route
    assert "/v1/things/{thing_id}" in resolver.get_openapi_schema().paths
    assert builds == ["things"]


def test_a_router_under_two_prefixes_is_built_once_by_a_request_under_either() -> None:
    # Given a router deferred under /v1/pages and /v1/page-info
    builds: list[str] = []
    resolver = DeferringResolver()

    def build_pages() -> Router:
        builds.append("pages")
        router = Router()  # type: ignore[no-untyped-call]

        @router.get("/v1/pages/<page_id>")
        def page(page_id: str) -> dict[str, str]:
            return {"id": page_id}

        @router.get("/v1/page-info")
        def page_info() -> dict[str, str]:
            return {"pages": "many"}

        return router

    resolver.defer_router(("/v1/pages", "/v1/page-info"), build_pages)
    # When a request reaches the second prefix, then one the first
    info = get(resolver, "/v1/page-info")
    page = get(resolver, "/v1/pages/a")
    # Then both are routed, and the router was built once
    assert json.loads(info["body"]) == {"pages": "many"}
    assert json.loads(page["body"]) == {"id": "a"}
    assert builds == ["pages"]
