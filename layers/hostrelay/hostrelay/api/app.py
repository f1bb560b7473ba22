"""Builds the API's resolver: routers, auth, error mapping, body limits and OpenAPI."""

from __future__ import annotations

from functools import cache
from http import HTTPStatus
from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from hostrelay import __version__
from hostrelay.api import openapi, request_validation
from hostrelay.api.deferred_routers import DeferringResolver
from hostrelay.api.errors import register_error_handlers
from hostrelay.api.json_body import json_body_parser
from hostrelay.api.routers.audit import audit_router
from hostrelay.api.routers.console import console_router
from hostrelay.api.routers.enrollments import enrollments_router
from hostrelay.api.routers.hosts import hosts_router
from hostrelay.api.routers.jobs import jobs_router
from hostrelay.api.routers.macct import macct_router
from hostrelay.api.routers.meta import meta_router
from hostrelay.api.routers.tokens import tokens_router
from hostrelay.api.services import ApiServices

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import Router


def build_resolver(services: ApiServices) -> APIGatewayHttpResolver:
    """The API for one container, over the services wiring built: called once at cold start."""
    resolver = DeferringResolver(
        enable_validation=True,
        # A response that does not match its model is our bug: a 500, not a 422.
        response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR.value,
        json_body_deserializer=json_body_parser(services.max_body_bytes),
    )
    request_validation.install(resolver, services.max_body_bytes)
    register_error_handlers(resolver)
    resolver.include_router(meta_router())
    resolver.include_router(jobs_router(services))
    resolver.include_router(hosts_router(services))
    resolver.include_router(tokens_router(services))
    resolver.include_router(audit_router(services))
    if services.enrollment is not None:
        resolver.include_router(enrollments_router(services, services.enrollment))
    resolver.include_router(macct_router(services, services.macct))
    resolver.include_router(console_router(services))
    _defer_rare_routers(resolver, services)

    @cache
    def openapi_json() -> str:
        resolver.include_deferred()  # the document describes every route
        return resolver.get_openapi_json_schema(
            title=openapi.TITLE,
            version=__version__,
            description=openapi.DESCRIPTION,
            tags=list(openapi.TAGS),
            security_schemes=openapi.security_schemes(),
        )

    @resolver.get("/v1/openapi.json", include_in_schema=False)
    def openapi_document() -> Response[str]:
        return Response(
            status_code=HTTPStatus.OK.value,
            content_type=content_types.APPLICATION_JSON,
            body=openapi_json(),
        )

    return resolver


def _defer_rare_routers(resolver: DeferringResolver, services: ApiServices) -> None:
    """Connectors, inventory and runs: their routers, models and services are built by the
    first request under their paths (most containers serve jobs and hosts only)."""
    connectors, inventory, runs = services.connectors, services.inventory, services.runs
    if connectors is not None:

        def build_connectors() -> Router:
            from hostrelay.api.routers.connectors import connectors_router

            return connectors_router(services, connectors())

        resolver.defer_router("/v1/connectors", build_connectors)
    if inventory is not None:

        def build_inventory() -> Router:
            from hostrelay.api.routers.inventory import inventory_router

            return inventory_router(services, inventory())

        resolver.defer_router("/v1/inventory", build_inventory)
    if runs is not None:

        def build_runs() -> Router:
            from hostrelay.api.routers.runs import runs_router

            return runs_router(services, runs())

        resolver.defer_router("/v1/runs", build_runs)
