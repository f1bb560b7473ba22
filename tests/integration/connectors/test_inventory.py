"""Inventory events of ldap.sync through the real results handler, read back through the API."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.inventory_repo import InventoryRepository
from hostrelay.domain.inventory import EntityUpsert, InventoryChanges, StoredItem
from hostrelay.logic.inventory import InventoryService
from tests.integration.connectors.conftest import ConnectorStack, entity, inventory_event

pytestmark = pytest.mark.integration

ALICE = entity("u-alice", "user", "Alice", member_of=["g-staff"], mail="alice@example.test")
BOB = entity("u-bob", "user", "bob", member_of=["g-staff"], mail="bob@example.test")
STAFF = entity(
    "g-staff", "group", "Staff", members=["u-alice", "u-bob", "CN=ext,O=other"], member_of=[]
)
PEOPLE = entity("ou-people", "ou", "People")
T0 = 1_700_000_000.0


@pytest.fixture
def sync(stack: ConnectorStack) -> tuple[dict[str, Any], dict[str, Any]]:
    """Given an ldap connector on dc01 and a running ldap.sync job of it."""
    connector = stack.create_connector()
    job = stack.operator.post(f"/v1/connectors/{connector['id']}/run").body
    stack.send_events("dc01", {"kind": "accepted", "job_id": job["id"], "attempt": 1})
    return connector, job


def entities(stack: ConnectorStack, **query: Any) -> dict[str, Any]:
    response = stack.reader.get("/v1/inventory/entities", query=query)
    assert response.status == 200, response.body
    return response.body  # type: ignore[no-any-return]


def snapshot(stack: ConnectorStack, *ids: str) -> list[Any]:
    return [stack.reader.get(f"/v1/inventory/entities/{i}").body for i in ids]


def test_a_batch_becomes_entities_with_resolved_relations(
    stack: ConnectorStack, sync: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    connector, job = sync
    # When the relay publishes a batch of users, a group and an OU
    stack.send_events(
        "dc01", inventory_event(job, connector["id"], upserts=[ALICE, BOB, STAFF, PEOPLE])
    )
    # Then the group lists its members by id, kind and name; unknown DNs stay unresolved
    staff = stack.reader.get("/v1/inventory/entities/g-staff").body
    assert (staff["kind"], staff["name"], staff["connector"]) == ("group", "Staff", connector["id"])
    assert staff["relations"]["members"] == {
        "total": 3,
        "items": [
            {"id": "u-alice", "kind": "user", "name": "Alice", "deleted": False},
            {"id": "u-bob", "kind": "user", "name": "bob", "deleted": False},
            {"id": "CN=ext,O=other", "kind": None, "name": None, "deleted": False},
        ],
    }
    alice = stack.reader.get("/v1/inventory/entities/u-alice").body
    assert alice["attributes"] == {"mail": "alice@example.test"}
    assert alice["relations"]["member_of"]["items"][0]["name"] == "Staff"
    assert alice["first_seen"] == alice["last_seen"] and alice["deleted_at"] is None
    # And counts are per kind and per connector
    counts = stack.reader.get("/v1/inventory/counts").body
    assert counts["by_kind"] == {"group": 1, "ou": 1, "user": 2}
    assert counts["by_connector"] == {connector["id"]: 4}


def test_the_same_batch_twice_leaves_the_same_state(
    stack: ConnectorStack, sync: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    connector, job = sync
    batch = inventory_event(job, connector["id"], upserts=[ALICE, BOB, STAFF])
    stack.send_events("dc01", batch)
    before = snapshot(stack, "u-alice", "u-bob", "g-staff")
    counts = stack.reader.get("/v1/inventory/counts").body
    # When the same event is delivered again (SQS at-least-once)
    stack.send_events("dc01", batch, batch)
    # Then entities and counts are exactly as before
    assert snapshot(stack, "u-alice", "u-bob", "g-staff") == before
    assert stack.reader.get("/v1/inventory/counts").body == counts


def test_deletes_set_deleted_at_and_later_batches_update_last_seen(
    stack: ConnectorStack, sync: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    connector, job = sync
    stack.send_events("dc01", inventory_event(job, connector["id"], upserts=[ALICE, BOB]))
    # When a later batch changes Alice and deletes Bob
    changed = {**ALICE, "attributes": {"mail": "alice@new.test"}}
    stack.send_events(
        "dc01",
        inventory_event(
            job, connector["id"], seq=1, upserts=[changed], deletes=["u-bob"],
            sent_at=1_700_000_600.0,
        ),
    )  # fmt: skip
    alice, bob = snapshot(stack, "u-alice", "u-bob")
    # Then Alice keeps first_seen and moves last_seen; Bob is marked deleted, not removed
    assert alice["attributes"] == {"mail": "alice@new.test"}
    assert alice["first_seen"] < alice["last_seen"]
    assert bob["deleted_at"] is not None and bob["name"] == "bob"
    # And listings hide deleted entities unless asked
    assert [e["id"] for e in entities(stack, kind="user")["entities"]] == ["u-alice"]
    shown = entities(stack, kind="user", include_deleted="true")["entities"]
    assert sorted(e["id"] for e in shown) == ["u-alice", "u-bob"]
    counts = stack.reader.get("/v1/inventory/counts").body["counts"]
    assert counts == [{"connector": connector["id"], "kind": "user", "active": 1, "deleted": 1}]


def test_an_old_batch_arriving_late_changes_nothing(
    stack: ConnectorStack, sync: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    connector, job = sync
    # Given Bob was deleted by the newer batch, which arrived first
    stack.send_events(
        "dc01", inventory_event(job, connector["id"], seq=1, deletes=["u-bob"], sent_at=2e9)
    )
    # When the older batch that still had him arrives
    stack.send_events("dc01", inventory_event(job, connector["id"], seq=0, upserts=[BOB]))
    # Then Bob does not come back
    assert stack.reader.get("/v1/inventory/entities/u-bob").status == 404
    assert entities(stack, kind="user")["entities"] == []


def test_big_group_members_arrive_in_pages_and_are_joined(
    stack: ConnectorStack, sync: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    connector, job = sync
    head = {**STAFF, "members": ["u-alice"], "members_page": {"index": 0, "count": 2}}
    tail = {"id": "g-staff", "kind": "group", "members": ["u-bob"],
            "members_page": {"index": 1, "count": 2}}  # fmt: skip
    # Pages may arrive in any order
    stack.send_events("dc01", inventory_event(job, connector["id"], seq=1, upserts=[tail]))
    stack.send_events("dc01", inventory_event(job, connector["id"], seq=0, upserts=[head, ALICE]))
    members = stack.reader.get("/v1/inventory/entities/g-staff").body["relations"]["members"]
    assert [m["id"] for m in members["items"]] == ["u-alice", "u-bob"]
    assert members["total"] == 2


def test_listing_filters_by_kind_connector_and_name_prefix_with_pages(
    stack: ConnectorStack, sync: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    connector, job = sync
    users = [entity(f"u-{n}", "user", n.title()) for n in ("ann", "andy", "anton", "zoe", "max")]
    stack.send_events(
        "dc01", inventory_event(job, connector["id"], upserts=[*users, STAFF, PEOPLE])
    )
    # Name prefix search is case-insensitive and sorted by name within a kind
    found = entities(stack, kind="user", q="AN")["entities"]
    assert [e["name"] for e in found] == ["Andy", "Ann", "Anton"]
    # Within a connector, by kind then name
    by_connector = entities(stack, connector=connector["id"])["entities"]
    assert [e["kind"] for e in by_connector] == ["group", "ou", *["user"] * 5]
    assert [e["name"] for e in entities(stack, connector=connector["id"], q="an")["entities"]] == [
        "Andy",
        "Ann",
        "Anton",
    ]
    # Everything, in pages of two, with every entity exactly once
    for query in ({}, {"kind": "user"}, {"connector": connector["id"]}):
        seen: list[str] = []
        token = None
        while True:
            page = entities(stack, limit=2, **query, **({"next_token": token} if token else {}))
            assert len(page["entities"]) <= 2
            seen += [e["id"] for e in page["entities"]]
            token = page["next_token"]
            if token is None:
                break
        expected = 5 if query.get("kind") else 7
        assert len(seen) == len(set(seen)) == expected, query
    # A token of another listing is refused
    token = entities(stack, kind="user", limit=1)["next_token"]
    response = stack.reader.get(
        "/v1/inventory/entities", query={"kind": "group", "next_token": token}
    )
    assert response.status == 400


def test_an_inventory_event_from_the_wrong_host_is_ignored(
    stack: ConnectorStack, sync: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    connector, job = sync
    # Given a second host with a connector and a running job of its own
    hosts = HostRepository()
    hosts.register("dc02")
    hosts.seen("dc02", connected=True)
    other = stack.create_connector(name="branch", target="dc02")
    other_job = stack.operator.post(f"/v1/connectors/{other['id']}/run").body
    # When dc02 sends inventory for dc01's job, or names dc01's connector in its own job
    stack.send_events("dc02", inventory_event(job, connector["id"], upserts=[ALICE]))
    stack.send_events("dc02", inventory_event(other_job, connector["id"], upserts=[BOB]))
    # And dc01 names dc02's connector in its own job
    stack.send_events("dc01", inventory_event(job, other["id"], upserts=[STAFF]))
    # Then nothing was written anywhere
    assert entities(stack, include_deleted="true")["entities"] == []
    assert stack.reader.get("/v1/inventory/counts").body["counts"] == []
    # While dc02 writing its own connector's inventory works
    stack.send_events("dc02", inventory_event(other_job, other["id"], upserts=[PEOPLE]))
    assert [e["id"] for e in entities(stack)["entities"]] == ["ou-people"]


def test_the_job_result_carries_the_relay_counts(
    stack: ConnectorStack, sync: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    connector, job = sync
    stack.send_events("dc01", inventory_event(job, connector["id"], upserts=[ALICE, BOB]))
    summary = {"connector": connector["id"], "mode": "full", "created": 2, "updated": 0,
               "deleted": 0, "unchanged": 0, "total": 2, "batches": 1}  # fmt: skip
    stack.send_events(
        "dc01",
        {"kind": "result", "job_id": job["id"], "attempt": 1, "outcome": "succeeded",
         "result": summary},
    )  # fmt: skip
    assert stack.reader.get(f"/v1/jobs/{job['id']}").body["result"] == summary
    [run] = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert run["counts"] == {k: v for k, v in summary.items() if isinstance(v, int)}


def test_unknown_entity_is_404_and_readers_need_a_token(stack: ConnectorStack) -> None:
    assert stack.reader.get("/v1/inventory/entities/nope").status == 404
    assert stack.reader.get("/v1/inventory/entities", token="").status == 401


class _ReadThenWait(InventoryRepository):
    """A results container that stops between reading a batch's items and writing them,
    until told to go on: the moment another container can apply an overlapping batch."""

    def __init__(self) -> None:
        self.has_read = threading.Event()
        self.go_on = threading.Event()

    def read(self, connector: str, ids: Iterable[str]) -> dict[str, StoredItem]:
        stored = super().read(connector, ids)
        if not self.has_read.is_set():
            self.has_read.set()
            assert self.go_on.wait(timeout=60), "the test never let the first container go on"
        return stored


def test_overlapping_batches_applied_at_once_keep_the_newest_state_and_true_counts(
    stack: ConnectorStack, sync: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    connector, job = sync
    users = [entity(f"u-{i:02d}", "user", f"user {i}", title="start") for i in range(20)]
    new = [entity(f"n-{i:02d}", "user", f"new {i}", title="new") for i in range(8)]
    # Given a directory of 20 users
    stack.send_events("dc01", inventory_event(job, connector["id"], upserts=users, sent_at=T0))
    # And an older batch (A) and a newer one (B) of the same directory that overlap:
    # A changes u-00..u-09 and adds n-00..n-04; B changes u-05..u-14, deletes u-00..u-02
    # and adds n-03..n-07
    older = InventoryChanges(
        upserts=[EntityUpsert(**_upsert(e, title="A")) for e in users[:10] + new[:5]]
    )
    newer = inventory_event(
        job, connector["id"], seq=2, sent_at=T0 + 20,
        upserts=[{**e, "attributes": {"title": "B"}} for e in users[5:15] + new[3:]],
        deletes=[e["id"] for e in users[:3]],
    )  # fmt: skip
    # When one results container reads A's items, another applies B meanwhile, then A is
    # written (two threads)
    slow = _ReadThenWait()
    container_a = threading.Thread(
        target=InventoryService(slow).apply,
        args=(connector["id"], older, datetime.fromtimestamp(T0 + 10, UTC)),
    )
    container_a.start()
    assert slow.has_read.wait(timeout=60)
    assert stack.send_events("dc01", newer) == {"batchItemFailures": []}
    slow.go_on.set()
    container_a.join(timeout=60)
    assert not container_a.is_alive()
    # Then every entity is as the newest observation of it says, as in the directory
    expected = {f"u-{i:02d}": "A" for i in range(3, 5)}
    expected |= {f"u-{i:02d}": "B" for i in range(5, 15)}
    expected |= {f"u-{i:02d}": "start" for i in range(15, 20)}
    expected |= {f"n-{i:02d}": "A" for i in range(3)}
    expected |= {f"n-{i:02d}": "B" for i in range(3, 8)}
    listed = entities(stack, kind="user", limit=100)["entities"]
    shown = {e["id"]: stack.reader.get(f"/v1/inventory/entities/{e['id']}").body for e in listed}
    assert {i: e["attributes"]["title"] for i, e in shown.items()} == expected
    # And the deleted ones stay deleted
    gone = entities(stack, kind="user", include_deleted="true", limit=100)["entities"]
    assert sorted(e["id"] for e in gone if e["deleted_at"]) == ["u-00", "u-01", "u-02"]
    # And the counts match: 20 - 3 deleted + 8 new users, each counted once
    counts = stack.reader.get("/v1/inventory/counts").body["counts"]
    assert counts == [{"connector": connector["id"], "kind": "user", "active": 25, "deleted": 3}]


def _upsert(body: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    """An EntityUpsert's fields for a relay entity, with other attributes."""
    return {
        "id": body["id"], "kind": body["kind"], "name": body["name"], "dn": body["dn"],
        "attributes": attributes, "relations": {"member_of": body["member_of"]},
    }  # fmt: skip


def test_a_batch_bigger_than_one_transaction_is_applied_whole(
    stack: ConnectorStack, sync: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    connector, job = sync
    # Given a batch of 250 entities of three kinds (a transaction holds at most 100 items)
    kinds = ("user", "group", "ou")
    batch = [entity(f"e-{i:03d}", kinds[i % 3], f"entity {i}") for i in range(250)]
    # When it is applied, and delivered once more
    event = inventory_event(job, connector["id"], upserts=batch)
    stack.send_events("dc01", event)
    stack.send_events("dc01", event)
    # Then every entity is stored and counted once
    counts = stack.reader.get("/v1/inventory/counts").body
    assert counts["by_kind"] == {"group": 83, "ou": 83, "user": 84}
    listed = entities(stack, kind="ou", limit=100)["entities"]
    assert len(listed) == 83


class _CountedListings(InventoryRepository):
    """The inventory repository, counting how often a connector's live entities are listed."""

    def __init__(self) -> None:
        self.listings = 0

    def live_ids(self, connector: str) -> Iterator[tuple[str, str]]:
        self.listings += 1
        return super().live_ids(connector)


def _snapshot(*ids: str, kind: str = "user", title: str = "same") -> list[EntityUpsert]:
    return [EntityUpsert(**_upsert(entity(i, kind, i), title=title)) for i in ids]


def _at(offset_s: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset_s, UTC)


def test_a_full_snapshot_deletes_only_what_it_no_longer_has(
    sync: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    snap = sync[0]["id"]
    repo = _CountedListings()
    inventory = InventoryService(repo)
    users, groups = _snapshot("u-1", "u-2", "u-3"), _snapshot("g-1", "g-2", kind="group")
    # Given a first full run of three users and two groups
    first = inventory.replace_all(snap, users + groups, _at(0), complete_kinds={"user", "group"})
    assert (first.created, first.deleted) == (5, 0)
    # When the next run finds nothing changed
    again = inventory.replace_all(snap, users + groups, _at(10), complete_kinds={"user", "group"})
    # Then every entity is unchanged, none deleted, and the inventory was never listed: the
    # live counters already hold exactly the snapshot
    assert (again.unchanged, again.deleted, repo.listings) == (5, 0, 0)
    # When a run no longer sees u-2 and g-2, but read only users in full
    gone = inventory.replace_all(snap, users[::2] + groups[:1], _at(20), complete_kinds={"user"})
    # Then u-2 is deleted (found by listing the inventory) and g-2 is kept
    assert (gone.unchanged, gone.deleted, repo.listings) == (3, 1, 1)
    live = inventory.live(snap, ["u-1", "u-2", "u-3", "g-1", "g-2"])
    assert sorted(live) == ["g-1", "g-2", "u-1", "u-3"]
    assert repo.active_counts(snap) == {"user": 2, "group": 2}


def test_a_snapshot_that_lost_an_entity_to_a_newer_delete_still_finds_what_is_gone(
    sync: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    snap = sync[0]["id"]
    repo = _CountedListings()
    inventory = InventoryService(repo)
    inventory.replace_all(snap, _snapshot("u-1", "u-2", "u-3"), _at(0), complete_kinds={"user"})
    # Given u-1 was deleted by a newer observation than the run below
    inventory.apply(snap, InventoryChanges(deletes=["u-1"]), _at(20))
    # When a run that started before it still has u-1 and u-2, and no longer u-3 (two live
    # users counted, two in the snapshot: the counters alone would say nothing is gone)
    report = inventory.replace_all(snap, _snapshot("u-1", "u-2"), _at(10), complete_kinds={"user"})
    # Then u-1 stays deleted, and u-3, no longer seen, is deleted too
    assert (report.stale, report.unchanged, report.deleted, repo.listings) == (1, 1, 1, 1)
    assert sorted(inventory.live(snap, ["u-1", "u-2", "u-3"])) == ["u-2"]
