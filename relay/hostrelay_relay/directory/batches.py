"""Cuts inventory changes into event-sized batches: at most 100 items or 96 KiB of JSON each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from hostrelay_relay.directory.entities import Entity

MAX_BATCH_ITEMS = 100
MAX_BATCH_BYTES = 96 * 1024
# Room for the batch's own keys and the event envelope the relay wraps around it.
_BATCH_OVERHEAD = 512


@dataclass(frozen=True)
class InventoryBatch:
    """One slice of a run's changes, in order (`seq` counts from 0 within the run).

    A group too big for one batch is sent as pages: the first upsert is the whole entity with
    the first part of `members` and `members_page: {"index": 0, "count": n}`; the next pages
    carry only `id`, `kind`, `members` (the continuation) and `members_page`.
    """

    seq: int
    upserts: list[Entity]
    deletes: list[str]

    def to_event_body(self, connector: str) -> dict[str, Any]:
        return {
            "connector": connector,
            "seq": self.seq,
            "upserts": self.upserts,
            "deletes": self.deletes,
        }


class BatchCutter:
    """Collects upserts and deletes and hands full batches to `emit` as they fill up."""

    def __init__(
        self,
        emit: Callable[[InventoryBatch], None],
        *,
        max_items: int = MAX_BATCH_ITEMS,
        max_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        self._emit = emit
        self._max_items = max_items
        self._budget = max_bytes - _BATCH_OVERHEAD
        self._upserts: list[Entity] = []
        self._deletes: list[str] = []
        self._bytes = 0
        self.batches = 0

    def upsert(self, entity: Entity, serialised_size: int) -> None:
        size = serialised_size + 1
        if size > self._budget:
            for page, page_size in _member_pages(entity, self._budget):
                self._add(page, page_size, is_delete=False)
            return
        self._add(entity, size, is_delete=False)

    def delete(self, entity_id: str) -> None:
        self._add(entity_id, len(entity_id) + 3, is_delete=True)

    def _add(self, item: Any, size: int, *, is_delete: bool) -> None:
        count = len(self._upserts) + len(self._deletes)
        if count >= self._max_items or self._bytes + size > self._budget:
            self.flush()
        if is_delete:
            self._deletes.append(item)
        else:
            self._upserts.append(item)
        self._bytes += size

    def flush(self) -> None:
        if not self._upserts and not self._deletes:
            return
        batch = InventoryBatch(seq=self.batches, upserts=self._upserts, deletes=self._deletes)
        self._upserts, self._deletes, self._bytes = [], [], 0
        self.batches += 1
        self._emit(batch)


def _member_pages(entity: Entity, budget: int) -> list[tuple[Entity, int]]:
    """Split a group whose member list alone overflows a batch into pages that each fit."""
    members: list[str] = entity.get("members") or []
    head = {key: value for key, value in entity.items() if key != "members"}
    head_size = len(orjson.dumps(head))
    if head_size + 64 > budget:
        raise ValueError(f"entity {entity['id']} is too large to send even without its members")
    chunks: list[list[str]] = [[]]
    room = budget - head_size - 64
    used = 0
    for member in members:
        size = len(member) + 3 if _plain(member) else len(orjson.dumps(member)) + 1
        if chunks[-1] and used + size > room:
            chunks.append([])
            used = 0
            room = budget - 128 - len(entity["id"])
        chunks[-1].append(member)
        used += size
    pages: list[tuple[Entity, int]] = []
    for index, chunk in enumerate(chunks):
        paging = {"index": index, "count": len(chunks)}
        page: Entity = (
            {**head, "members": chunk, "members_page": paging}
            if index == 0
            else {
                "id": entity["id"],
                "kind": entity["kind"],
                "members": chunk,
                "members_page": paging,
            }
        )
        pages.append((page, len(orjson.dumps(page)) + 1))
    return pages


def _plain(text: str) -> bool:
    """True when JSON writes `text` as itself between quotes (no escapes, one byte a char)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text
