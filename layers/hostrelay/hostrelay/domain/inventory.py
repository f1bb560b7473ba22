"""Inventory entities: users, groups, OUs and cloud resources, as connectors last saw them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from hostrelay.domain.errors import DomainError
from hostrelay_contract import inventory as wire

LDAP_KINDS = frozenset({"user", "group", "ou"})
KIND = wire.KIND  # one rule for what relays send and what the API is asked
# Relations every entity may carry; directory entities use members/member_of.
MEMBERS = "members"
MEMBER_OF = "member_of"


class EntityUpsert(BaseModel):
    """An entity as a connector reported it, normalised (relations name other entity ids).

    `member_pages` is set when a big group's members arrive in that many pages: this upsert
    carries page 0, `MemberPage`s carry the rest.
    """

    model_config = ConfigDict(defer_build=True)

    id: str
    kind: str
    name: str
    dn: str | None = None
    attributes: dict[str, Any]
    relations: dict[str, list[str]]
    member_pages: int | None = None


class MemberPage(BaseModel):
    """Continuation page `index` (>= 1) of a paged group's members."""

    model_config = ConfigDict(defer_build=True)

    id: str
    kind: str
    index: int
    count: int
    members: list[str]


@dataclass
class InventoryChanges:
    """One batch of a connector's changes, all seen at the same moment."""

    upserts: list[EntityUpsert] = field(default_factory=list)
    pages: list[MemberPage] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)


class InventoryEntity(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: str
    connector: str
    kind: str
    name: str
    dn: str | None = None
    attributes: dict[str, Any]
    relations: dict[str, list[str]]
    member_pages: int | None = None
    first_seen: datetime
    last_seen: datetime
    deleted_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.deleted_at is None

    def same_content(self, upsert: EntityUpsert) -> bool:
        return (
            self.kind == upsert.kind
            and self.name == upsert.name
            and self.dn == upsert.dn
            and self.attributes == upsert.attributes
            and self.relations == upsert.relations
            and self.member_pages == upsert.member_pages
        )


@dataclass(frozen=True)
class Tombstone:
    """A delete that arrived before (or without) the entity it deletes."""

    id: str
    connector: str
    deleted_at: datetime


StoredItem = InventoryEntity | Tombstone


class EntitySummary(BaseModel):
    """What a listing shows of an entity (the index projection: no attributes, no relations)."""

    model_config = ConfigDict(defer_build=True)

    id: str
    connector: str
    kind: str
    name: str
    dn: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    deleted_at: datetime | None = None


class RelatedEntity(BaseModel):
    """The other end of a relation; kind and name are None when it is not in the inventory."""

    model_config = ConfigDict(defer_build=True)

    id: str
    kind: str | None = None
    name: str | None = None
    deleted: bool = False


class InventoryCount(BaseModel):
    model_config = ConfigDict(defer_build=True)

    connector: str
    kind: str
    active: int
    deleted: int


@dataclass
class ApplyReport:
    """What applying a batch did; `stale` items lost against a newer observation."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    stale: int = 0
    writes: int = 0

    def add(self, other: ApplyReport) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        self.stale += other.stale
        self.writes += other.writes

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
        }


class SourceReadError(DomainError):
    """A connector's source could not be read (denied, unreachable, throttled for good)."""

    code = "source_read_failed"
