"""Routes of /v1/hosts: list (by tag), show, tag and revoke enrolled hosts."""

# No `from __future__ import annotations`: Powertools reads these signatures at runtime.

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from hostrelay.api.models.hosts import HostList, HostOut, HostPatchRequest
from hostrelay.api.openapi import BEARER_AUTH, BODY_ERRORS, responses
from hostrelay.api.routers import new_router
from hostrelay.api.services import ApiServices
from hostrelay.domain.principal import Principal
from hostrelay.domain.tags import MAX_TAGS, parse_tags
from hostrelay_contract.names import HOST_NAME

HostNameParam = Annotated[str, HOST_NAME, Path(description="Host name")]


def hosts_router(services: ApiServices) -> Router:
    router = new_router()
    access, hosts = services.access, services.hosts()

    @router.get(
        "/v1/hosts",
        summary="List hosts",
        tags=["hosts"],
        security=BEARER_AUTH,
        description=(
            "Every enrolled host a reader may see (a service token: the hosts it names), "
            "sorted by name; `tag=key:value` (repeatable) keeps hosts carrying every tag given."
        ),
        responses=responses({200: "The hosts"}, 403),
    )
    def list_hosts(
        principal: Annotated[Principal, Depends(access.authenticated)],
        tag: Annotated[
            list[str] | None,
            Query(
                max_length=MAX_TAGS,
                description="`key:value` (or `key=value`); repeat for several (all must match)",
            ),
        ] = None,
    ) -> HostList:
        selector = parse_tags(tag or [])
        return HostList(
            hosts=[HostOut.model_validate(host) for host in hosts.list(principal, selector)]
        )

    @router.get(
        "/v1/hosts/<name>",
        summary="Get a host",
        tags=["hosts"],
        security=BEARER_AUTH,
        responses=responses({200: "The host"}, 403, 404),
    )
    def get_host(
        name: HostNameParam, principal: Annotated[Principal, Depends(access.authenticated)]
    ) -> HostOut:
        return HostOut.model_validate(hosts.get(name, principal))

    @router.patch(
        "/v1/hosts/<name>",
        summary="Change a host's tags",
        description=(
            'A JSON merge patch of the host\'s tags: `{"tags": {"role": "dc", '
            '"old": null}}` sets `role` and removes `old`. Admin only; audited as '
            "`host.tags` with the tags before and after. Invalid tags change nothing (422)."
        ),
        tags=["hosts"],
        security=BEARER_AUTH,
        responses=responses({200: "The host with its new tags"}, 403, 404, 409, *BODY_ERRORS),
    )
    def patch_host(
        name: HostNameParam,
        body: HostPatchRequest,
        principal: Annotated[Principal, Depends(access.admin)],
    ) -> HostOut:
        return HostOut.model_validate(hosts.set_tags(name, body.tags, principal))

    @router.delete(
        "/v1/hosts/<name>",
        summary="Revoke a host",
        description=(
            "Deactivates the host's certificate (the broker refuses it from then on); the host "
            "can no longer receive jobs and stays revoked until re-enrolled with replace=true."
        ),
        tags=["hosts"],
        security=BEARER_AUTH,
        responses=responses({200: "The revoked host"}, 403, 404),
    )
    def revoke_host(
        name: HostNameParam, principal: Annotated[Principal, Depends(access.admin)]
    ) -> HostOut:
        return HostOut.model_validate(hosts.revoke(name, principal))

    return router
