"""Routes of /v1/inventory: list and search entities, one entity with relations, counts."""

# No `from __future__ import annotations`: Powertools reads these signatures at runtime.

from collections import defaultdict
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from hostrelay.api.openapi import BEARER_AUTH, responses
from hostrelay.api.pagination import decode_next_token, encode_next_token
from hostrelay.api.routers import new_router
from hostrelay.api.services import ApiServices
from hostrelay.domain.inventory import KIND, InventoryCount
from hostrelay.domain.principal import Principal
from hostrelay.logic.inventory import EntityDetail, InventoryQueries
from hostrelay_contract.names import CONNECTOR_ID

EntityId = Annotated[
    str, Path(min_length=1, max_length=3072, description="Entity id (URL-encode it)")
]
# Keys of each listing: the connector index, the kind index, or a scan.
_BY_CONNECTOR_KEYS = frozenset({"id", "scope", "connector", "kind_name"})
_BY_KIND_KEYS = frozenset({"id", "scope", "kind", "name_lower"})
_SCAN_KEYS = frozenset({"id", "scope"})


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class _FromDomain(_Out):
    """Read from a domain object's attributes: `Model.model_validate(obj)`."""

    model_config = ConfigDict(from_attributes=True)


class EntitySummaryOut(_FromDomain):
    id: str
    connector: str
    kind: str
    name: str
    dn: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    deleted_at: datetime | None


class EntityPage(_Out):
    entities: list[EntitySummaryOut]
    next_token: str | None = None


class RelatedOut(_FromDomain):
    id: str
    kind: str | None = Field(description="None when the other end is not in the inventory")
    name: str | None
    deleted: bool


class RelationOut(_Out):
    total: int = Field(description="How many ids the relation has; `items` shows the first 500")
    items: list[RelatedOut]


class EntityOut(_Out):
    id: str
    connector: str
    kind: str
    name: str
    dn: str | None
    attributes: dict[str, Any]
    relations: dict[str, RelationOut] = Field(
        description="e.g. members, member_of (directories); vpc, subnet, security_groups (aws)"
    )
    first_seen: datetime
    last_seen: datetime
    deleted_at: datetime | None

    @classmethod
    def from_domain(cls, detail: EntityDetail) -> "EntityOut":
        entity = detail.entity
        return cls(
            id=entity.id,
            connector=entity.connector,
            kind=entity.kind,
            name=entity.name,
            dn=entity.dn,
            attributes=entity.attributes,
            relations={
                relation.name: RelationOut(
                    total=relation.total,
                    items=[RelatedOut.model_validate(related) for related in relation.items],
                )
                for relation in detail.relations
            },
            first_seen=entity.first_seen,
            last_seen=entity.last_seen,
            deleted_at=entity.deleted_at,
        )


class CountOut(_Out):
    connector: str
    kind: str
    active: int
    deleted: int


class CountsOut(_Out):
    by_kind: dict[str, int] = Field(description="Live entities per kind, all connectors")
    by_connector: dict[str, int] = Field(description="Live entities per connector")
    counts: list[CountOut] = Field(description="Live and deleted entities per connector and kind")

    @classmethod
    def from_domain(cls, counts: list[InventoryCount]) -> "CountsOut":
        by_kind: dict[str, int] = defaultdict(int)
        by_connector: dict[str, int] = defaultdict(int)
        for count in counts:
            by_kind[count.kind] += count.active
            by_connector[count.connector] += count.active
        return cls(
            by_kind=dict(sorted(by_kind.items())),
            by_connector=dict(sorted(by_connector.items())),
            counts=[
                CountOut(connector=c.connector, kind=c.kind, active=c.active, deleted=c.deleted)
                for c in counts
            ],
        )


def _start_key(
    next_token: str | None, kind: str | None, connector: str | None
) -> dict[str, Any] | None:
    if not next_token:
        return None
    if connector is not None:
        return decode_next_token(
            next_token, keys=_BY_CONNECTOR_KEYS, fixed={"connector": connector}
        )
    if kind is not None:
        return decode_next_token(next_token, keys=_BY_KIND_KEYS, fixed={"kind": kind})
    return decode_next_token(next_token, keys=_SCAN_KEYS)


def inventory_router(services: ApiServices, inventory: InventoryQueries) -> Router:
    router = new_router()
    access = services.access

    @router.get(
        "/v1/inventory/entities",
        summary="List inventory entities",
        description=(
            "Filter by kind, connector and a case-insensitive name prefix `q`. By name within "
            "a kind or connector. Pages may hold fewer than `limit` entities; follow "
            "`next_token` until it is absent."
        ),
        tags=["inventory"],
        security=BEARER_AUTH,
        responses=responses({200: "A page of entities"}, 400, 403),
    )
    def list_entities(
        *,
        principal: Annotated[Principal, Depends(access.reader)],
        kind: Annotated[
            Annotated[str, KIND] | None, Query(description="e.g. user, group, aws.ec2.vpc")
        ] = None,
        connector: Annotated[
            Annotated[str, CONNECTOR_ID] | None, Query(description="Connector id")
        ] = None,
        q: Annotated[
            str | None, Query(min_length=1, max_length=200, description="Name prefix")
        ] = None,
        include_deleted: Annotated[
            bool, Query(description="Also entities a connector reported deleted")
        ] = False,
        limit: Annotated[int, Query(ge=1, le=500, description="Page size")] = 100,
        next_token: Annotated[
            str | None, Query(max_length=2048, description="From the previous page")
        ] = None,
    ) -> EntityPage:
        found, last_key = inventory.search(
            kind=kind,
            connector=connector,
            q=q,
            include_deleted=include_deleted,
            limit=limit,
            start_key=_start_key(next_token, kind, connector),
        )
        return EntityPage(
            entities=[EntitySummaryOut.model_validate(entity) for entity in found],
            next_token=encode_next_token(last_key),
        )

    @router.get(
        "/v1/inventory/entities/<entity_id>",
        summary="Get an entity with its relations",
        description="Relations name the related entities' ids, kinds and names.",
        tags=["inventory"],
        security=BEARER_AUTH,
        responses=responses({200: "The entity"}, 403, 404),
    )
    def get_entity(
        entity_id: EntityId,
        principal: Annotated[Principal, Depends(access.reader)],
        connector: Annotated[
            Annotated[str, CONNECTOR_ID] | None,
            Query(description="When several connectors know it"),
        ] = None,
    ) -> EntityOut:
        return EntityOut.from_domain(inventory.get(unquote(entity_id), connector))

    @router.get(
        "/v1/inventory/counts",
        summary="Count inventory entities",
        tags=["inventory"],
        security=BEARER_AUTH,
        responses=responses({200: "Counts per kind and per connector"}, 403),
    )
    def inventory_counts(principal: Annotated[Principal, Depends(access.reader)]) -> CountsOut:
        return CountsOut.from_domain(inventory.counts())

    return router
