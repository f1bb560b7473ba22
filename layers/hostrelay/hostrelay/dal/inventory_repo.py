"""Inventory storage: batched and per-entity writes, lookups, listings and per-kind counts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from hostrelay.dal.inventory_tables import InventoryCountRecord, InventoryRecord
from hostrelay.dal.pynamodb_private import table_connection
from hostrelay.domain.errors import StaleWrite
from hostrelay.domain.inventory import (
    MEMBERS,
    EntitySummary,
    InventoryCount,
    InventoryEntity,
    RelatedEntity,
    StoredItem,
    Tombstone,
)

COUNTS_PREFIX = "#counts#"
PAGE_MARKER = "#page#"
# Index range keys are limited to 1024 bytes; names are cut well below (4 bytes per char).
MAX_NAME_KEY_CHARS = 200
_SUMMARY_FIELDS = ["id", "scope", "connector", "kind", "name", "deleted_at"]
# DynamoDB's limit of items in one TransactWriteItems.
MAX_TRANSACTION_ITEMS = 100


@dataclass(frozen=True)
class GuardedWrite:
    """An item to store, and the stored item (None: nothing) the decision to store it was
    based on: it is written only if that is still what is stored."""

    item: InventoryEntity | Tombstone
    read: StoredItem | None


def name_key(name: str) -> str:
    return name.lower()[:MAX_NAME_KEY_CHARS]


def page_scope(connector: str, index: int) -> str:
    return f"{connector}{PAGE_MARKER}{index}"


def _to_record(entity: InventoryEntity) -> InventoryRecord:
    lowered = name_key(entity.name)
    return InventoryRecord(
        id=entity.id,
        scope=entity.connector,
        connector=entity.connector,
        kind=entity.kind,
        kind_name=f"{entity.kind}#{lowered}",
        name=entity.name,
        name_lower=lowered,
        dn=entity.dn,
        attributes=entity.attributes,
        relations=entity.relations,
        member_pages=entity.member_pages,
        first_seen=entity.first_seen,
        last_seen=entity.last_seen,
        deleted_at=entity.deleted_at,
    )


def _to_domain(record: InventoryRecord) -> StoredItem:
    if record.kind is None:
        # Only tombstones lack a kind; they always carry deleted_at.
        moment = record.deleted_at or record.last_seen or datetime.min.replace(tzinfo=UTC)
        return Tombstone(id=record.id, connector=record.scope, deleted_at=moment)
    return InventoryEntity(
        id=record.id,
        connector=record.connector or record.scope,
        kind=record.kind,
        name=record.name or "",
        dn=record.dn,
        attributes=record.attributes or {},
        relations=record.relations or {},
        member_pages=int(record.member_pages) if record.member_pages is not None else None,
        first_seen=record.first_seen or record.last_seen,
        last_seen=record.last_seen,
        deleted_at=record.deleted_at,
    )


def _summary(record: InventoryRecord) -> EntitySummary:
    return EntitySummary(
        id=record.id,
        connector=record.connector or record.scope,
        kind=record.kind or "",
        name=record.name or "",
        dn=record.dn,
        first_seen=record.first_seen,
        last_seen=record.last_seen,
        deleted_at=record.deleted_at,
    )


def _unchanged_since(read: StoredItem | None) -> Condition:
    """True while the stored item is still the one `read` (every write moves last_seen or
    deleted_at, so those two tell)."""
    condition: Condition
    if read is None:
        condition = InventoryRecord.id.does_not_exist()
    elif isinstance(read, Tombstone):
        condition = InventoryRecord.kind.does_not_exist() & (
            InventoryRecord.deleted_at == read.deleted_at
        )
    else:
        deleted = (
            InventoryRecord.deleted_at.does_not_exist()
            if read.deleted_at is None
            else InventoryRecord.deleted_at == read.deleted_at
        )
        condition = (InventoryRecord.last_seen == read.last_seen) & deleted
    return condition


def _tombstone_record(tombstone: Tombstone) -> InventoryRecord:
    return InventoryRecord(
        id=tombstone.id, scope=tombstone.connector, deleted_at=tombstone.deleted_at
    )


def _and(conditions: list[Condition]) -> Condition | None:
    combined: Condition | None = None
    for condition in conditions:
        combined = condition if combined is None else combined & condition
    return combined


class InventoryRepository:
    """Reads and writes inventory items; decides nothing about what a change means."""

    # ------------------------------------------------------------ batched path

    def read(self, connector: str, ids: Iterable[str]) -> dict[str, StoredItem]:
        """The stored entities (or tombstones) of `ids`, with BatchGetItem (100 keys a call)."""
        keys = [(entity_id, connector) for entity_id in dict.fromkeys(ids)]
        return {
            record.id: _to_domain(record)
            for record in InventoryRecord.batch_get(keys, consistent_read=True)
        }

    def write_guarded(
        self, connector: str, writes: Sequence[GuardedWrite], deltas: dict[str, tuple[int, int]]
    ) -> None:
        """Store `writes` and add (active, deleted) `deltas` to the kinds' counters, all in one
        TransactWriteItems, each item on condition it is still as it was read. Raises
        StaleWrite, having written nothing, when one changed meanwhile (or a concurrent
        transaction holds one of them): read again, decide again, retry."""
        counters = {kind: delta for kind, delta in deltas.items() if delta != (0, 0)}
        if len(writes) + len(counters) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"more than {MAX_TRANSACTION_ITEMS} items in one transaction")
        if not writes and not counters:
            return
        try:
            with TransactWrite(connection=table_connection(InventoryRecord).connection) as tx:
                for write in writes:
                    record = (
                        _to_record(write.item)
                        if isinstance(write.item, InventoryEntity)
                        else _tombstone_record(write.item)
                    )
                    tx.save(record, condition=_unchanged_since(write.read))
                for kind, (active, deleted) in counters.items():
                    tx.update(
                        InventoryCountRecord(id=f"{COUNTS_PREFIX}{connector}", scope=kind),
                        actions=[
                            InventoryCountRecord.active.add(active),
                            InventoryCountRecord.deleted.add(deleted),
                        ],
                    )
        except TransactWriteError as exc:
            reasons = {r.code for r in exc.cancellation_reasons if r is not None}
            if reasons & {"ConditionalCheckFailed", "TransactionConflict"}:
                raise StaleWrite("inventory items changed since they were read") from exc
            raise

    def write_pages(self, pages: Iterable[tuple[str, str, int, list[str], datetime]]) -> int:
        """Put member pages with BatchWriteItem, 25 a call (unprocessed items are retried).
        Unconditional, as in the per-entity path: pages are not counted."""
        written = 0
        with InventoryRecord.batch_write() as batch:
            for entity_id, connector, index, members, seen in pages:
                batch.save(self._page_record(entity_id, connector, index, members, seen))
                written += 1
        return written

    @staticmethod
    def _page_record(
        entity_id: str, connector: str, index: int, members: list[str], seen: datetime
    ) -> InventoryRecord:
        return InventoryRecord(
            id=entity_id,
            scope=page_scope(connector, index),
            relations={MEMBERS: members},
            last_seen=seen,
        )

    # ------------------------------------------------------------ one write per entity

    def upsert_one(self, entity: InventoryEntity) -> StoredItem | None:
        """Conditional UpdateItem: keeps first_seen, clears deleted_at; returns the old item.

        Raises StaleWrite when the stored item was seen (or deleted) later than this one.
        """
        lowered = name_key(entity.name)
        seen = entity.last_seen
        actions: list[Any] = [
            InventoryRecord.connector.set(entity.connector),
            InventoryRecord.kind.set(entity.kind),
            InventoryRecord.kind_name.set(f"{entity.kind}#{lowered}"),
            InventoryRecord.name.set(entity.name),
            InventoryRecord.name_lower.set(lowered),
            InventoryRecord.attributes.set(entity.attributes),
            InventoryRecord.relations.set(entity.relations),
            InventoryRecord.first_seen.set(InventoryRecord.first_seen | seen),
            InventoryRecord.last_seen.set(seen),
            InventoryRecord.deleted_at.remove(),
        ]
        actions.append(
            InventoryRecord.dn.set(entity.dn) if entity.dn else InventoryRecord.dn.remove()
        )
        actions.append(
            InventoryRecord.member_pages.set(entity.member_pages)
            if entity.member_pages is not None
            else InventoryRecord.member_pages.remove()
        )
        condition = (
            InventoryRecord.last_seen.does_not_exist() | (InventoryRecord.last_seen <= seen)
        ) & (InventoryRecord.deleted_at.does_not_exist() | (InventoryRecord.deleted_at < seen))
        return self._update_returning_old(entity.id, entity.connector, actions, condition)

    def delete_one(self, entity_id: str, connector: str, seen: datetime) -> StoredItem | None:
        """Mark deleted (or leave a tombstone); StaleWrite if already deleted or seen later."""
        condition = InventoryRecord.deleted_at.does_not_exist() & (
            InventoryRecord.last_seen.does_not_exist() | (InventoryRecord.last_seen <= seen)
        )
        return self._update_returning_old(
            entity_id, connector, [InventoryRecord.deleted_at.set(seen)], condition
        )

    def write_page(
        self, entity_id: str, connector: str, index: int, members: list[str], seen: datetime
    ) -> None:
        self._page_record(entity_id, connector, index, members, seen).save()

    @staticmethod
    def _update_returning_old(
        entity_id: str, connector: str, actions: list[Any], condition: Condition
    ) -> StoredItem | None:
        try:
            data = table_connection(InventoryRecord).update_item(
                entity_id,
                range_key=connector,
                actions=actions,
                condition=condition,
                return_values=ALL_OLD,
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise StaleWrite(f"entity {entity_id} has a newer observation") from exc
            raise
        old = data.get("Attributes")
        return _to_domain(InventoryRecord.from_raw_data(old)) if old else None

    # ------------------------------------------------------------ counts

    def add_counts(self, connector: str, deltas: dict[str, tuple[int, int]]) -> None:
        """Atomically add (active, deleted) deltas to each kind's counters."""
        for kind, (active, deleted) in deltas.items():
            if active == 0 and deleted == 0:
                continue
            InventoryCountRecord(id=f"{COUNTS_PREFIX}{connector}", scope=kind).update(
                actions=[
                    InventoryCountRecord.active.add(active),
                    InventoryCountRecord.deleted.add(deleted),
                ]
            )

    def active_counts(self, connector: str) -> dict[str, int]:
        """Live entities per kind of one connector, read consistently (one Query)."""
        return {
            record.scope: int(record.active or 0)
            for record in InventoryCountRecord.query(
                f"{COUNTS_PREFIX}{connector}", consistent_read=True
            )
        }

    def counts(self, connectors: Iterable[str]) -> list[InventoryCount]:
        found = []
        for connector in connectors:
            for record in InventoryCountRecord.query(f"{COUNTS_PREFIX}{connector}"):
                found.append(
                    InventoryCount(
                        connector=connector,
                        kind=record.scope,
                        active=int(record.active or 0),
                        deleted=int(record.deleted or 0),
                    )
                )
        return found

    # ------------------------------------------------------------ reads for the API

    def find(self, entity_id: str, connector: str | None = None) -> list[InventoryEntity]:
        """The entity `entity_id` as each connector (or just `connector`) knows it."""
        range_condition = InventoryRecord.scope == connector if connector else None
        entities = []
        for record in InventoryRecord.query(entity_id, range_condition, consistent_read=True):
            if record.kind is None or PAGE_MARKER in record.scope:
                continue
            item = _to_domain(record)
            if isinstance(item, InventoryEntity):
                entities.append(item)
        return entities

    def member_pages(self, entity_id: str, connector: str, count: int) -> list[list[str]]:
        """Continuation pages 1..count-1 of a paged group's members, in order."""
        keys = [(entity_id, page_scope(connector, index)) for index in range(1, count)]
        pages = {
            record.scope: (record.relations or {}).get(MEMBERS, [])
            for record in InventoryRecord.batch_get(keys, consistent_read=True)
        }
        return [pages.get(scope, []) for _, scope in keys]

    def related(self, connector: str, ids: list[str]) -> dict[str, RelatedEntity]:
        keys = [(entity_id, connector) for entity_id in dict.fromkeys(ids)]
        found = {}
        for record in InventoryRecord.batch_get(keys, attributes_to_get=_SUMMARY_FIELDS):
            if record.kind is None:
                continue
            found[record.id] = RelatedEntity(
                id=record.id,
                kind=record.kind,
                name=record.name,
                deleted=record.deleted_at is not None,
            )
        return found

    def list(
        self,
        *,
        kind: str | None,
        connector: str | None,
        name_prefix: str | None,
        include_deleted: bool,
        limit: int,
        start_key: dict[str, Any] | None,
    ) -> tuple[list[EntitySummary], dict[str, Any] | None]:
        """A page of entity summaries; the index used depends on the filters given."""
        prefix = name_key(name_prefix) if name_prefix else ""
        filters: list[Condition] = []
        if not include_deleted:
            filters.append(InventoryRecord.deleted_at.does_not_exist())
        page_size = max(limit, 100)
        if connector is not None:
            range_condition = None
            if kind is not None:
                range_condition = InventoryRecord.kind_name.startswith(f"{kind}#{prefix}")
            elif prefix:
                filters.append(InventoryRecord.name_lower.startswith(prefix))
            results = InventoryRecord.by_connector_kind.query(
                connector,
                range_condition,
                filter_condition=_and(filters),
                limit=limit,
                page_size=page_size,
                last_evaluated_key=start_key,
            )
        elif kind is not None:
            results = InventoryRecord.by_kind_name.query(
                kind,
                InventoryRecord.name_lower.startswith(prefix) if prefix else None,
                filter_condition=_and(filters),
                limit=limit,
                page_size=page_size,
                last_evaluated_key=start_key,
            )
        else:
            filters.append(InventoryRecord.kind.exists())
            if prefix:
                filters.append(InventoryRecord.name_lower.startswith(prefix))
            results = InventoryRecord.scan(
                filter_condition=_and(filters),
                limit=limit,
                page_size=page_size,
                last_evaluated_key=start_key,
            )
        summaries = [_summary(record) for record in results]
        return summaries, results.last_evaluated_key

    def live_ids(self, connector: str) -> Iterator[tuple[str, str]]:
        """(id, kind) of every entity of a connector that is not deleted."""
        for record in InventoryRecord.by_connector_kind.query(
            connector, filter_condition=InventoryRecord.deleted_at.does_not_exist()
        ):
            yield record.id, record.kind or ""
