"""Incremental ldap.sync: reads only what changed, detects deletions, matches a fresh full sync."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hostrelay_local.slapd import SlapdServer, department_group_dn, entry_uuid, team_dn, user_dn
from hostrelay_relay.directory.state import SyncStateStore
from hostrelay_relay.handlers.base import JobError
from tests.integration.ldap.conftest import SHAPE
from tests.integration.ldap.ldap_support import InventoryMirror, JobRun, relay_settings, sync_params

pytestmark = pytest.mark.integration
RunSync = Callable[..., JobRun]
EVERYONE = f"cn=everyone,ou=groups,{SHAPE.base_dn}"


def new_user_ldif(uid: str, department: int) -> str:
    return (
        f"dn: uid={uid},ou=dept{department:02d},ou=people,{SHAPE.base_dn}\n"
        "changetype: add\nobjectClass: inetOrgPerson\n"
        f"uid: {uid}\ncn: {uid}\nsn: New\nmail: {uid}@example.org\n\n"
    )


def member_change(group_dn: str, operation: str, member_dn: str) -> str:
    return f"dn: {group_dn}\nchangetype: modify\n{operation}: member\nmember: {member_dn}\n\n"


def fresh_full_sync(server: SlapdServer, tmp_path: Path, run_sync: RunSync) -> dict[str, Any]:
    """The oracle: what a full sync from scratch sees in the directory right now."""
    mirror = InventoryMirror()
    run_sync(
        relay_settings(tmp_path / "oracle", server),
        mirror,
        **sync_params(server, mode="full", page_size=1000),
    )
    return mirror.entities


def settle(server: SlapdServer) -> None:
    """Without contextCSN the relay tracks modifyTimestamp, which has one-second resolution:
    a run re-reads what changed in the second or two before the newest change it saw."""
    if not server.syncprov:
        time.sleep(2.1)


@pytest.mark.parametrize(
    "fresh_directory", [True, False], indirect=True, ids=["contextCSN", "modifyTimestamp"]
)
def test_incremental_run_reads_only_changed_entries_and_ends_equal_to_the_directory(
    fresh_directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given a full sync of the directory, applied to the control plane's inventory
    server = fresh_directory
    settings = relay_settings(tmp_path / "relay", server)
    mirror = InventoryMirror()
    run_sync(settings, mirror, **sync_params(server, page_size=1000))
    settle(server)

    # When 3 users are modified, 2 are added (one joins a team), and 1 is deleted
    # (and, as AD or refint would, removed from its groups: team0000, dept04-staff, everyone)
    modified = [user_dn(SHAPE, i) for i in (10, 11, 12)]
    server.modify(
        "".join(
            f"dn: {dn}\nchangetype: modify\nreplace: mail\nmail: changed-{n}@example.org\n\n"
            for n, dn in enumerate(modified)
        )
    )
    server.modify(new_user_ldif("newhire1", 1) + new_user_ldif("newhire2", 2))
    newhire1 = f"uid=newhire1,ou=dept01,ou=people,{SHAPE.base_dn}"
    server.modify(member_change(team_dn(SHAPE, 3), "add", newhire1))
    gone = user_dn(SHAPE, 4)
    for group in (team_dn(SHAPE, 0), department_group_dn(SHAPE, 4), EVERYONE):
        server.modify(member_change(group, "delete", gone))
    server.modify(f"dn: {gone}\nchangetype: delete\n\n")

    # And the next sync runs (a full id scan is due every run here)
    run = run_sync(settings, mirror, **sync_params(server, full_scan_every=1))

    # Then it read exactly the changed entries: 3 modified + 2 new users + 4 modified groups
    assert run.result["mode"] == "incremental"
    assert run.result["entries_read"] == 3 + 2 + 4
    assert run.result["created"] == 2
    assert run.result["deleted"] == 1
    assert run.result["updated"] == 3 + 4
    # And only ids were read for the deletion scan
    assert run.result["ids_scanned"] == run.result["total"]
    # And the inventory now equals what a fresh full sync sees
    assert mirror.entities == fresh_full_sync(server, tmp_path, run_sync)
    assert mirror.by_dn(modified[0])["attributes"]["mail"] == "changed-0@example.org"
    assert entry_uuid(gone) not in mirror.entities
    new_id = mirror.by_dn(newhire1)["id"]
    assert new_id in mirror.by_dn(team_dn(SHAPE, 3))["members"]
    assert mirror.by_dn(newhire1)["member_of"] == [entry_uuid(team_dn(SHAPE, 3))]


def test_joining_a_group_updates_the_unchanged_member_too(
    fresh_directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given a synced directory
    server = fresh_directory
    settings = relay_settings(tmp_path / "relay", server)
    mirror = InventoryMirror()
    run_sync(settings, mirror, **sync_params(server, page_size=1000))
    settle(server)

    # When an existing user joins another team (only the group's entry changes on the server)
    joiner = user_dn(SHAPE, 42)
    server.modify(member_change(team_dn(SHAPE, 9), "add", joiner))
    run = run_sync(settings, mirror, **sync_params(server))

    # Then the run reads the group, then the member whose member_of changed, and nothing else
    assert run.result["entries_read"] == 2
    assert run.result["updated"] == 2
    assert entry_uuid(team_dn(SHAPE, 9)) in mirror.by_dn(joiner)["member_of"]
    assert mirror.entities == fresh_full_sync(server, tmp_path, run_sync)


def test_renamed_and_moved_entries_keep_their_id(
    fresh_directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given a synced directory
    server = fresh_directory
    settings = relay_settings(tmp_path / "relay", server)
    mirror = InventoryMirror()
    run_sync(settings, mirror, **sync_params(server, page_size=1000))
    settle(server)

    # When a user is renamed into another department OU (groups keep the old DN: no refint)
    old_dn = user_dn(SHAPE, 77)
    server.modify(
        f"dn: {old_dn}\nchangetype: modrdn\nnewrdn: uid=renamed77\ndeleteoldrdn: 1\n"
        f"newsuperior: ou=dept01,ou=people,{SHAPE.base_dn}\n\n"
    )
    run = run_sync(settings, mirror, **sync_params(server))

    # Then the entity keeps its id under the new DN, and the inventory matches the directory
    # (groups that still name the old DN now list it as an unresolved DN)
    renamed = mirror.entities[entry_uuid(old_dn)]
    assert renamed["dn"] == f"uid=renamed77,ou=dept01,ou=people,{SHAPE.base_dn}"
    assert renamed["name"] == "renamed77"
    assert run.result["created"] == 0
    assert mirror.entities == fresh_full_sync(server, tmp_path, run_sync)


def test_deletions_are_found_on_the_id_scan_every_nth_run(
    fresh_directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given a synced directory and a connector that scans ids every 3rd run
    server = fresh_directory
    settings = relay_settings(tmp_path / "relay", server)
    mirror = InventoryMirror()
    params = sync_params(server, page_size=1000, full_scan_every=3)
    run_sync(settings, mirror, **params)

    # When an OU with no members is deleted
    temp = f"ou=temp,{SHAPE.base_dn}"
    server.modify(f"dn: {temp}\nchangetype: add\nobjectClass: organizationalUnit\nou: temp\n\n")
    run_sync(settings, mirror, **params)
    temp_id = mirror.by_dn(temp)["id"]
    server.modify(f"dn: {temp}\nchangetype: delete\n\n")
    runs = [run_sync(settings, mirror, **params) for _ in range(3)]

    # Then only the run with the id scan notices, and sends the delete
    assert [(r.result["full_scan"], r.result["deleted"]) for r in runs] == [
        (False, 0),
        (True, 1),
        (False, 0),
    ]
    assert temp_id not in mirror.entities


def test_a_failed_run_commits_nothing_and_the_next_run_redoes_the_work(
    fresh_directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given a synced directory and changes to 150 users (two batches of inventory events)
    server = fresh_directory
    settings = relay_settings(tmp_path / "relay", server)
    run_sync(settings, **sync_params(server, page_size=1000))
    settle(server)
    server.modify(
        "".join(
            f"dn: {user_dn(SHAPE, i)}\nchangetype: modify\nreplace: title\ntitle: Engineer\n\n"
            for i in range(100, 250)
        )
    )
    state = SyncStateStore(tmp_path / "relay").path("corp")
    before = state.read_bytes()

    # When publishing fails after the first batch
    def fail_on_second_batch(kind: str, body: dict[str, Any]) -> None:
        if body["seq"] == 1:
            raise JobError("publish_failed", "broker went away", retryable=True)

    with pytest.raises(JobError):
        run_sync(settings, on_event=fail_on_second_batch, **sync_params(server))

    # Then the state is untouched, and the next run sends all 150 updates again
    assert state.read_bytes() == before
    run = run_sync(settings, **sync_params(server))
    assert run.result["updated"] == 150
    assert sum(len(body["upserts"]) for _, body in run.events) == 150
