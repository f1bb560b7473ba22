"""Inventory batches stay within 100 items and 96 KiB; huge groups travel as member pages."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hostrelay_relay.directory.batches import MAX_BATCH_BYTES, BatchCutter, InventoryBatch
from hostrelay_relay.directory.entities import serialise


def user(number: int, padding: int = 0) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=number)),
        "kind": "user",
        "dn": f"uid=u{number},dc=x",
        "name": f"u{number}",
        "attributes": {"description": "x" * padding},
        "member_of": [],
    }


def cut(entities: list[dict[str, Any]], deletes: list[str]) -> list[InventoryBatch]:
    batches: list[InventoryBatch] = []
    cutter = BatchCutter(batches.append)
    for entity in entities:
        cutter.upsert(entity, len(serialise(entity)))
    for entity_id in deletes:
        cutter.delete(entity_id)
    cutter.flush()
    return batches


def size(batch: InventoryBatch) -> int:
    return len(json.dumps(batch.to_event_body("corp"), separators=(",", ":")).encode())


def test_small_entities_go_100_to_a_batch_with_deletes_after_upserts() -> None:
    batches = cut(
        [user(n) for n in range(250)], [str(uuid.UUID(int=10_000 + n)) for n in range(30)]
    )
    assert [len(b.upserts) + len(b.deletes) for b in batches] == [100, 100, 80]
    assert [b.seq for b in batches] == [0, 1, 2]
    assert len(batches[-1].deletes) == 30


def test_big_entities_are_cut_by_size_first() -> None:
    batches = cut([user(n, padding=5000) for n in range(100)], [])
    assert len(batches) > 1
    assert all(size(b) <= MAX_BATCH_BYTES for b in batches)
    assert sum(len(b.upserts) for b in batches) == 100


def test_a_group_too_big_for_one_batch_is_sent_as_member_pages_that_reassemble() -> None:
    members = [str(uuid.UUID(int=n)) for n in range(10_000)]
    group = {
        "id": "g",
        "kind": "group",
        "dn": "cn=everyone,dc=x",
        "name": "everyone",
        "attributes": {"cn": "everyone"},
        "members": members,
        "member_of": [],
    }
    batches = cut([user(1), group, user(2)], [])
    pages = [e for b in batches for e in b.upserts if e["id"] == "g"]
    assert all(size(b) <= MAX_BATCH_BYTES for b in batches)
    assert [p["members_page"]["index"] for p in pages] == list(range(len(pages)))
    assert {p["members_page"]["count"] for p in pages} == {len(pages)}
    assert pages[0]["name"] == "everyone"
    assert [m for p in pages for m in p["members"]] == members
    assert sum(len(b.upserts) for b in batches) == 2 + len(pages)
