"""Inventory changes as a relay sends them in `inventory` events: the batch, and each upsert."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from hostrelay_contract.names import CONNECTOR_ID
from hostrelay_contract.text_patterns import TextPattern

# An entity kind: `user`, `group`, `ou`, or a source's dotted kind (`authentik.user`).
KIND_PATTERN: Final = r"^[a-z][a-z0-9_.]{0,63}$"
KIND: Final = TextPattern(
    KIND_PATTERN, "1-64 of a-z, 0-9, '_' and '.', starting with a letter (e.g. user, aws.ec2.vpc)"
)
MAX_ENTITY_ID: Final = 1024
MAX_BATCH_ENTITIES: Final = 10_000
EntityId = Annotated[str, Field(min_length=1, max_length=MAX_ENTITY_ID)]


class InventoryBody(BaseModel):
    """What an `inventory` event adds to a job event: one batch of a sync's entity changes.

    Each upsert is judged on its own by the control plane (InventoryUpsert): a bad one is
    skipped and counted, not the batch.
    """

    model_config = ConfigDict(extra="ignore", defer_build=True)

    connector: Annotated[str, CONNECTOR_ID]
    seq: int = Field(default=0, ge=0)
    upserts: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_BATCH_ENTITIES)
    deletes: list[EntityId] = Field(default_factory=list, max_length=MAX_BATCH_ENTITIES)


class MembersPage(BaseModel):
    """Part `index` of `count` of a group too large for one event (0: the entity itself)."""

    model_config = ConfigDict(defer_build=True)

    index: int = Field(ge=0, le=100_000)
    count: int = Field(ge=1, le=100_000)


class InventoryUpsert(BaseModel):
    """One upsert of an `inventory` event, as ldap.sync and connector.sync build it."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    id: EntityId
    kind: Annotated[str, KIND]
    dn: str | None = Field(default=None, max_length=4096)
    name: str | None = Field(default=None, max_length=1024)
    attributes: dict[str, Any] = Field(default_factory=dict)
    members: list[str] | None = None
    member_of: list[str] = Field(default_factory=list)
    members_page: MembersPage | None = None
