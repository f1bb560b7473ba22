"""Deciding what an inventory change means, and reading the relay's batches (no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hostrelay.domain.inventory import EntityUpsert, InventoryEntity, Tombstone
from hostrelay.logic.inventory import (
    changes_from_relay,
    decide_delete,
    decide_upsert,
    seen_moment,
)
from hostrelay_contract.inventory import InventoryBody

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)


def upsert(**changes: Any) -> EntityUpsert:
    fields: dict[str, Any] = {
        "id": "u1", "kind": "user", "name": "Ann", "dn": "CN=Ann,DC=x",
        "attributes": {"mail": "ann@x"}, "relations": {"member_of": []},
    }  # fmt: skip
    return EntityUpsert(**{**fields, **changes})


def stored(
    seen: datetime = T1, deleted_at: datetime | None = None, **changes: Any
) -> InventoryEntity:
    base = upsert(**changes)
    return InventoryEntity(
        connector="c1", first_seen=T0, last_seen=seen, deleted_at=deleted_at,
        **base.model_dump(),
    )  # fmt: skip


def test_a_new_entity_is_created_seen_now() -> None:
    new, outcome = decide_upsert(None, "c1", upsert(), T1)
    assert outcome == "created"
    assert new is not None and (new.first_seen, new.last_seen, new.deleted_at) == (T1, T1, None)


def test_an_exact_replay_writes_nothing_and_a_new_sighting_moves_last_seen() -> None:
    assert decide_upsert(stored(T1), "c1", upsert(), T1) == (None, "unchanged")
    new, outcome = decide_upsert(stored(T1), "c1", upsert(), T2)
    assert outcome == "unchanged"
    assert new is not None and (new.first_seen, new.last_seen) == (T0, T2)


def test_a_change_updates_and_keeps_first_seen() -> None:
    new, outcome = decide_upsert(stored(T1), "c1", upsert(name="Anne"), T2)
    assert outcome == "updated"
    assert new is not None and (new.name, new.first_seen) == ("Anne", T0)


def test_older_observations_never_overwrite_newer_ones() -> None:
    assert decide_upsert(stored(T2), "c1", upsert(name="old"), T1) == (None, "stale")
    assert decide_upsert(stored(T0, deleted_at=T2), "c1", upsert(), T1) == (None, "stale")
    tombstone = Tombstone(id="u1", connector="c1", deleted_at=T2)
    assert decide_upsert(tombstone, "c1", upsert(), T1) == (None, "stale")


def test_a_deleted_entity_seen_again_comes_back() -> None:
    new, outcome = decide_upsert(stored(T0, deleted_at=T1), "c1", upsert(), T2)
    assert outcome == "created"
    assert new is not None and new.deleted_at is None and new.first_seen == T0


def test_deletes_mark_once_and_leave_tombstones_for_unknown_ids() -> None:
    marked, outcome = decide_delete(stored(T1), "c1", "u1", T2)
    assert outcome == "deleted" and isinstance(marked, InventoryEntity)
    assert (marked.deleted_at, marked.last_seen, marked.name) == (T2, T1, "Ann")
    assert decide_delete(marked, "c1", "u1", T2 + timedelta(hours=1)) == (None, "unchanged")
    assert decide_delete(stored(T2), "c1", "u1", T1) == (None, "stale")
    tombstone, outcome = decide_delete(None, "c1", "u9", T1)
    assert outcome == "tombstone" and tombstone == Tombstone(id="u9", connector="c1", deleted_at=T1)


def test_relay_batches_are_normalised_and_bad_entities_skipped() -> None:
    body = InventoryBody.model_validate(
        {
            "connector": "c1", "seq": 3, "deletes": ["gone"],
            "upserts": [
                {"id": "g1", "kind": "group", "dn": "CN=G,DC=x", "name": "G", "attributes": {},
                 "members": ["u1"], "member_of": [], "members_page": {"index": 0, "count": 2}},
                {"id": "g1", "kind": "group", "members": ["u2"],
                 "members_page": {"index": 1, "count": 2}},
                {"id": "u1", "kind": "user", "dn": "CN=U,DC=x", "attributes": {"a": "1"},
                 "member_of": ["g1"]},
                {"id": "x", "kind": "computer", "name": "not a directory kind"},
                {"kind": "user", "name": "no id"},
            ],
        }
    )  # fmt: skip
    changes, rejected = changes_from_relay(body)
    assert rejected == 2
    assert changes.deletes == ["gone"]
    group, user = changes.upserts
    assert (group.relations, group.member_pages) == ({"member_of": [], "members": ["u1"]}, 2)
    assert (user.name, user.relations) == ("CN=U,DC=x", {"member_of": ["g1"]})
    [page] = changes.pages
    assert (page.id, page.index, page.members) == ("g1", 1, ["u2"])


def test_a_relay_clock_ahead_of_ours_is_clamped_to_now() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert seen_moment(now.timestamp() + 3600, now) == now
    assert seen_moment(now.timestamp() - 60, now) == now - timedelta(seconds=60)
    assert seen_moment(0.0, now) == now
