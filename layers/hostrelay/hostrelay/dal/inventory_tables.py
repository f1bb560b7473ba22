"""PynamoDB models of connectors and the inventory; tables are bound from settings."""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

_UNBOUND = "unbound"
# Listings read the index projections only; attributes and relations stay in the table.
_SUMMARY = ["name", "dn", "first_seen", "last_seen", "deleted_at"]
SCHEDULED = "1"


class ConnectorsDueByNextRun(GlobalSecondaryIndex["ConnectorRecord"]):
    """Sparse: only enabled connectors with a schedule carry `scheduled`."""

    class Meta:
        index_name = "due_by_next_run"
        projection = AllProjection()

    scheduled = UnicodeAttribute(hash_key=True)
    next_run_at = UnicodeAttribute(range_key=True)


class ConnectorRecord(Model):
    class Meta:
        table_name = _UNBOUND

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    kind = UnicodeAttribute()
    target = UnicodeAttribute()
    settings = JSONAttribute()
    schedule = UnicodeAttribute(null=True)
    enabled = BooleanAttribute(default=True)
    scheduled = UnicodeAttribute(null=True)
    next_run_at = UnicodeAttribute(null=True)
    last_run_at = UTCDateTimeAttribute(null=True)
    last_job_id = UnicodeAttribute(null=True)
    # Where an incremental source's last run read up to (domain.sync_cursor); never returned
    # by the API, and dropped when the connector is replaced (the next run reads everything).
    sync_cursor = JSONAttribute(null=True)
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = VersionAttribute()

    due_by_next_run = ConnectorsDueByNextRun()


class InventoryByConnectorKind(GlobalSecondaryIndex["InventoryRecord"]):
    """Entities of a connector, by kind then name (`kind_name` = kind#lowercase name)."""

    class Meta:
        index_name = "by_connector_kind"
        projection = IncludeProjection(["kind", "name_lower", *_SUMMARY])

    connector = UnicodeAttribute(hash_key=True)
    kind_name = UnicodeAttribute(range_key=True)


class InventoryByKindName(GlobalSecondaryIndex["InventoryRecord"]):
    """Entities of a kind across connectors, by lowercase name (prefix search)."""

    class Meta:
        index_name = "by_kind_name"
        projection = IncludeProjection(["connector", *_SUMMARY])

    kind = UnicodeAttribute(hash_key=True)
    name_lower = UnicodeAttribute(range_key=True)


class InventoryRecord(Model):
    """An entity (scope = connector id), or a continuation page of a big group's members
    (scope = `<connector>#page#<n>`, no kind: invisible to both indexes).

    A delete that arrives before its entity leaves a tombstone (no kind either), so the late
    upsert it overtook cannot bring the entity back.
    """

    class Meta:
        table_name = _UNBOUND

    id = UnicodeAttribute(hash_key=True)
    scope = UnicodeAttribute(range_key=True)
    connector = UnicodeAttribute(null=True)
    kind = UnicodeAttribute(null=True)
    kind_name = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    name_lower = UnicodeAttribute(null=True)
    dn = UnicodeAttribute(null=True)
    attributes = JSONAttribute(null=True)
    relations = JSONAttribute(null=True)
    member_pages = NumberAttribute(null=True)
    first_seen = UTCDateTimeAttribute(null=True)
    last_seen = UTCDateTimeAttribute(null=True)
    deleted_at = UTCDateTimeAttribute(null=True)

    by_connector_kind = InventoryByConnectorKind()
    by_kind_name = InventoryByKindName()


class InventoryCountRecord(Model):
    """Live and deleted entities of one kind of one connector (id = `#counts#<connector>`)."""

    class Meta:
        table_name = _UNBOUND

    id = UnicodeAttribute(hash_key=True)
    scope = UnicodeAttribute(range_key=True)
    active = NumberAttribute(default=0)
    deleted = NumberAttribute(default=0)
