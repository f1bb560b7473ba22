"""Routes of /v1/hosts: list, show and revoke enrolled hosts."""

# No `from __future__ import annotations`: Powertools reads these signatures at runtime.

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path

from hostrelay.api.models import HostList, HostOut
from hostrelay.api.openapi import BEARER_AUTH, responses
from hostrelay.api.routers import new_router
from hostrelay.api.services import ApiServices
from hostrelay.domain.principal import Principal
from hostrelay_contract.names import HOST_NAME_PATTERN

HostNameParam = Annotated[str, Path(pattern=HOST_NAME_PATTERN, description="Host name")]


def hosts_router(services: ApiServices) -> Router:
    router = new_router()
    access, hosts = services.access, services.hosts

    @router.get(
        "/v1/hosts",
        summary="List hosts",
        tags=["hosts"],
        security=BEARER_AUTH,
        responses=responses({200: "Every enrolled host"}, 403),
    )
    def list_hosts(principal: Annotated[Principal, Depends(access.reader)]) -> HostList:
        return HostList(hosts=[HostOut.model_validate(host) for host in hosts.list(principal)])

    @router.get(
        "/v1/hosts/<name>",
        summary="Get a host",
        tags=["hosts"],
        security=BEARER_AUTH,
        responses=responses({200: "The host"}, 403, 404),
    )
    def get_host(
        name: HostNameParam, principal: Annotated[Principal, Depends(access.reader)]
    ) -> HostOut:
        return HostOut.model_validate(hosts.get(name, principal))

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
