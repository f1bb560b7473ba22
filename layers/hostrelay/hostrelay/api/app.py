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
from hostrelay.api.routers.meta import meta_router
from hostrelay.api.services import ApiServices

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import Router


def build_resolver(services: ApiServices) -> APIGatewayHttpResolver:
    """The API for one container, over the services wiring built: called once at cold start."""
    resolver = _routed(services)

    @cache
    def openapi_json() -> str:
        # From a resolver of its own that includes every router in one order: the document
        # is the same whichever routers this container's requests have included so far.
        described = _routed(services)
        described.include_deferred()
        return described.get_openapi_json_schema(
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


def _routed(services: ApiServices) -> DeferringResolver:
    """The routes: health at once, every resource's router on the first request under its
    paths (a container pays for the routers, models and logic it serves, not all of them)."""
    resolver = DeferringResolver(
        enable_validation=True,
        # A response that does not match its model is our bug: a 500, not a 422.
        response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR.value,
        json_body_deserializer=json_body_parser(services.max_body_bytes),
    )
    request_validation.install(resolver, services.max_body_bytes)
    register_error_handlers(resolver)
    resolver.include_router(meta_router())
    _defer_core_routers(resolver, services)
    _defer_optional_routers(resolver, services)
    return resolver


def _defer_core_routers(resolver: DeferringResolver, services: ApiServices) -> None:
    """Jobs, hosts, tokens, audit, enrollment, macct and the console, in the OpenAPI order."""

    def build_jobs() -> Router:
        from hostrelay.api.routers.jobs import jobs_router

        return jobs_router(services)

    def build_hosts() -> Router:
        from hostrelay.api.routers.hosts import hosts_router

        return hosts_router(services)

    def build_tokens() -> Router:
        from hostrelay.api.routers.tokens import tokens_router

        return tokens_router(services)

    def build_audit() -> Router:
        from hostrelay.api.routers.audit import audit_router

        return audit_router(services)

    def build_macct() -> Router:
        from hostrelay.api.routers.macct import macct_router

        return macct_router(services, services.macct())

    def build_console() -> Router:
        from hostrelay.api.routers.console import console_router

        return console_router(services)

    resolver.defer_router("/v1/jobs", build_jobs)
    resolver.defer_router("/v1/hosts", build_hosts)
    resolver.defer_router("/v1/tokens", build_tokens)
    resolver.defer_router("/v1/audit", build_audit)
    enrollment = services.enrollment
    if enrollment is not None:

        def build_enrollments() -> Router:
            from hostrelay.api.routers.enrollments import enrollments_router

            return enrollments_router(services, enrollment)

        resolver.defer_router(("/v1/enrollments", "/v1/enroll"), build_enrollments)
    resolver.defer_router("/v1/macct", build_macct)
    resolver.defer_router(("/console", "/v1/whoami", "/v1/job-types"), build_console)


def _defer_optional_routers(resolver: DeferringResolver, services: ApiServices) -> None:
    """Connectors, inventory and runs, where the deployment has their tables."""
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
