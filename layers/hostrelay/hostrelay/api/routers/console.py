"""Routes of the web console: its static files under /console/, and the two reads it needs."""

# No `from __future__ import annotations`: Powertools reads these signatures at runtime.

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from pydantic import BaseModel, ConfigDict, Field

from hostrelay.api.openapi import BEARER_AUTH, responses
from hostrelay.api.routers import new_router
from hostrelay.api.services import ApiServices
from hostrelay.console.assets import INDEX, SECURITY_HEADERS, ConsoleAsset, console_asset
from hostrelay.domain.errors import NotFound
from hostrelay.domain.principal import Principal, Scope
from hostrelay_contract.job_types import JOB_TYPES


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class WhoAmI(_Out):
    """The calling token's name and what it may do; never its secret."""

    name: str
    label: str = Field(
        description="How jobs, runs (`created_by`) and the audit trail name this token"
    )
    scopes: list[Scope] = Field(description="As granted; admin implies operator implies reader")
    may: list[Scope] = Field(description="Every scope the token has, implied ones included")
    job_types: list[str] | None = Field(description="Service tokens: the job types they may run")
    hosts: list[str] | None = Field(description="Service tokens: the hosts they may target")


class JobTypeOut(_Out):
    name: str
    summary: str = Field(description="What a job of the type does")
    runs_in: str = Field(description="`host` (a relay runs it) or `cloud`")
    default_timeout_s: int
    params_schema: dict[str, Any] = Field(description="JSON Schema of the type's params")
    result_schema: dict[str, Any] = Field(description="JSON Schema of a finished job's result")


class JobTypeList(_Out):
    job_types: list[JobTypeOut]


def _asset_response(asset: ConsoleAsset, if_none_match: str | None) -> Response[str]:
    if asset.matches(if_none_match):
        return Response(status_code=HTTPStatus.NOT_MODIFIED.value, body="", headers=asset.headers())
    return Response(
        status_code=HTTPStatus.OK.value,
        content_type=asset.content_type,
        body=asset.body,
        headers=asset.headers(),
    )


def console_router(services: ApiServices) -> Router:
    router = new_router()
    access = services.access

    def serve(name: str) -> Response[str]:
        asset = console_asset(name)
        if asset is None:
            raise NotFound("the console has no such file")
        return _asset_response(asset, router.current_event.headers.get("if-none-match"))

    @router.get("/console", include_in_schema=False)
    def console_root() -> Response[str]:
        # Relative asset URLs in the page need the trailing slash.
        return Response(
            status_code=HTTPStatus.PERMANENT_REDIRECT.value,
            body="",
            headers={**SECURITY_HEADERS, "Location": "/console/"},
        )

    @router.get("/console/", include_in_schema=False, compress=True)
    def console_index() -> Response[str]:
        return serve(INDEX)

    @router.get("/console/<name>", include_in_schema=False, compress=True)
    def console_file(name: str) -> Response[str]:
        return serve(name)

    @router.get(
        "/v1/whoami",
        summary="Describe the calling token",
        description="Its name and scopes: what the console offers depends on them.",
        tags=["tokens"],
        security=BEARER_AUTH,
        responses=responses({200: "The calling token"}),
    )
    def whoami(principal: Annotated[Principal, Depends(access.authenticated)]) -> WhoAmI:
        return WhoAmI(
            name=principal.name,
            label=principal.label,
            scopes=principal.scopes,
            may=[scope for scope in Scope if principal.has(scope)],
            job_types=principal.job_types,
            hosts=principal.hosts,
        )

    @router.get(
        "/v1/job-types",
        summary="List job types and their params",
        description=(
            "Each type's params as JSON Schema, from the models POST /v1/jobs validates with: "
            "forms built from it accept what the API accepts."
        ),
        tags=["jobs"],
        security=BEARER_AUTH,
        responses=responses({200: "Every job type"}),
    )
    def job_types(principal: Annotated[Principal, Depends(access.authenticated)]) -> JobTypeList:
        return JobTypeList(
            job_types=[
                JobTypeOut(
                    name=spec.name,
                    summary=spec.summary,
                    runs_in=spec.runs_in,
                    default_timeout_s=spec.default_timeout_s,
                    params_schema=spec.params.model_json_schema(),
                    result_schema=spec.result.model_json_schema(),
                )
                for spec in JOB_TYPES.values()
            ]
        )

    return router
