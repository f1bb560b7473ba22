"""ldap.sync against a real slapd: full sync, paging, TLS, and failures that change nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from hostrelay_local.slapd import (
    SlapdServer,
    count_entries,
    department_group_dn,
    entry_uuid,
    free_port,
    make_test_tls,
    team_dn,
    user_dn,
)
from hostrelay_relay.directory.state import SyncStateStore
from hostrelay_relay.handlers.base import JobContext, JobError
from hostrelay_relay.handlers.ldap_sync import LdapSyncHandler
from hostrelay_relay.settings import RelaySettings
from tests.integration.ldap.conftest import SHAPE
from tests.integration.ldap.ldap_support import (
    InventoryMirror,
    JobRun,
    relay_settings,
    sync_params,
)

pytestmark = pytest.mark.integration
RunSync = Callable[..., JobRun]


def state_file(tmp_path: Path, connector: str = "corp") -> Path:
    return SyncStateStore(tmp_path).path(connector)


def test_full_sync_mirrors_every_user_group_and_ou(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given a directory of 5,000 users, nested groups and several OUs, and no sync state
    settings = relay_settings(tmp_path, directory)
    mirror = InventoryMirror()

    # When the relay runs a full sync with pages much smaller than the directory
    run = run_sync(settings, mirror, **sync_params(directory, page_size=300))

    # Then every entry arrives once, with its entryUUID as a stable id
    expected = count_entries(SHAPE)
    kinds = [entity["kind"] for entity in mirror.entities.values()]
    assert {kind: kinds.count(kind) for kind in expected} == expected
    assert run.result["mode"] == "full"
    assert run.result["created"] == sum(expected.values())
    assert run.result["entries_read"] == sum(expected.values())
    user = mirror.by_dn(user_dn(SHAPE, 7))
    assert user["id"] == entry_uuid(user_dn(SHAPE, 7))
    assert user["name"] == "user00007"
    assert user["attributes"]["mail"] == "user00007@example.org"
    assert user["attributes"]["displayName"] == "User Number 7"
    # And groups list member ids; nested groups list the ids of their member groups
    team = mirror.by_dn(team_dn(SHAPE, 0))
    assert team["members"] == sorted(entry_uuid(user_dn(SHAPE, i)) for i in range(25))
    all_staff = mirror.by_dn(f"cn=all-staff,ou=groups,{SHAPE.base_dn}")
    assert all_staff["members"] == sorted(
        entry_uuid(department_group_dn(SHAPE, d)) for d in range(SHAPE.departments)
    )
    # And member_of tells which groups hold an entry directly
    assert sorted(user["member_of"]) == sorted(
        [
            entry_uuid(team_dn(SHAPE, 0)),
            entry_uuid(department_group_dn(SHAPE, 7)),
            entry_uuid(f"cn=everyone,ou=groups,{SHAPE.base_dn}"),
        ]
    )
    assert mirror.by_dn(department_group_dn(SHAPE, 7))["member_of"] == [all_staff["id"]]
    # And the 5,000-member group, too big for one event, was reassembled from its pages
    everyone = mirror.by_dn(f"cn=everyone,ou=groups,{SHAPE.base_dn}")
    assert len(everyone["members"]) == SHAPE.users
    # And no batch holds more than 100 items or 96 KiB of JSON
    for batch in mirror.batches:
        assert len(batch["upserts"]) + len(batch["deletes"]) <= 100
        assert len(json.dumps(batch, separators=(",", ":")).encode()) <= 96 * 1024
    assert [batch["seq"] for batch in mirror.batches] == list(range(len(mirror.batches)))
    assert run.result["batches"] == len(mirror.batches)


def test_second_run_is_incremental_and_sends_nothing_when_nothing_changed(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given a completed full sync
    settings = relay_settings(tmp_path, directory)
    run_sync(settings, **sync_params(directory, page_size=1000))

    # When the next run starts in auto mode
    run = run_sync(settings, **sync_params(directory))

    # Then it reads only what changed since (nothing) and publishes no batch
    assert run.result["mode"] == "incremental"
    assert run.result["entries_read"] == 0
    assert (run.result["created"], run.result["updated"], run.result["deleted"]) == (0, 0, 0)
    assert run.result["unchanged"] == sum(count_entries(SHAPE).values())
    assert run.events == []


def test_sync_over_ldaps_verifies_the_server_certificate(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given the relay trusts the test CA that signed the server certificate
    settings = relay_settings(tmp_path, directory)

    # When it syncs over ldaps:// with verification on (the default)
    run = run_sync(settings, **sync_params(directory, url=directory.ldaps_url, mode="full"))

    # Then the sync succeeds
    assert run.result["total"] == sum(count_entries(SHAPE).values())


def test_a_credential_url_written_with_a_trailing_slash_works(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given a credential whose only server is written "ldaps://host:port/"
    settings = relay_settings(tmp_path, directory)
    svc = settings.ldap.credentials["svc"]
    settings.ldap.credentials["svc"] = svc.model_copy(update={"urls": [directory.ldaps_url + "/"]})

    # When a job names the credential but no server
    run = run_sync(settings, **{**sync_params(directory, mode="full"), "url": None})

    # Then it syncs from that server
    assert run.result["total"] == sum(count_entries(SHAPE).values())


def test_start_tls_with_the_right_ca_works(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    settings = relay_settings(tmp_path, directory)
    run = run_sync(settings, **sync_params(directory, start_tls=True, mode="full"))
    assert run.result["created"] == sum(count_entries(SHAPE).values())


@pytest.mark.parametrize("transport", ["ldaps", "start_tls"])
def test_a_server_certificate_from_another_ca_fails_clearly(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync, transport: str
) -> None:
    # Given the relay trusts a different CA than the one that signed the server certificate
    other_ca = make_test_tls(tmp_path / "other-ca").ca_file
    settings = relay_settings(tmp_path, directory, ca_file=other_ca)
    params = (
        sync_params(directory, url=directory.ldaps_url)
        if transport == "ldaps"
        else sync_params(directory, start_tls=True)
    )

    # When it syncs
    with pytest.raises(JobError) as failure:
        run_sync(settings, **params)

    # Then the job fails as ldap_tls, says why, and no state was written
    assert failure.value.code == "ldap_tls"
    assert "not trusted" in failure.value.message
    assert not state_file(tmp_path).exists()


def test_a_bad_filter_fails_clearly_and_leaves_state_untouched(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given a completed sync whose state is on disk
    settings = relay_settings(tmp_path, directory)
    run_sync(settings, **sync_params(directory, page_size=1000))
    before = state_file(tmp_path).read_bytes()

    # When a run names a malformed user filter
    with pytest.raises(JobError) as failure:
        run_sync(settings, **sync_params(directory, user_filter="(uid=a)(cn=b)"))

    # Then it fails as ldap_filter, pointing at the problem, and the state is unchanged
    assert failure.value.code == "ldap_filter"
    assert "user_filter" in failure.value.message
    assert "character 7" in failure.value.message
    assert state_file(tmp_path).read_bytes() == before


def test_an_unreachable_server_fails_as_retryable_and_changes_nothing(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given a completed sync, then a connector URL (one the credential is for) where nothing
    # listens
    nowhere = f"ldap://127.0.0.1:{free_port()}"
    settings = relay_settings(tmp_path, directory, also_for=(nowhere,))
    run_sync(settings, **sync_params(directory, page_size=1000))
    before = state_file(tmp_path).read_bytes()

    # When a run starts
    with pytest.raises(JobError) as failure:
        run_sync(settings, **sync_params(directory, url=nowhere))

    # Then it fails as ldap_unreachable, retryable, with the state as it was
    assert failure.value.code == "ldap_unreachable"
    assert failure.value.retryable
    assert nowhere in failure.value.message
    assert state_file(tmp_path).read_bytes() == before


def test_a_wrong_password_fails_as_ldap_auth(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    settings = relay_settings(tmp_path, directory)
    with pytest.raises(JobError) as failure:
        run_sync(settings, **sync_params(directory, credential="wrong"))
    assert failure.value.code == "ldap_auth"
    assert "'wrong'" in failure.value.message
    assert "not-the-password" not in failure.value.message
    assert not state_file(tmp_path).exists()


def test_an_unknown_credential_name_fails_before_connecting(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    settings = relay_settings(tmp_path, directory)
    with pytest.raises(JobError) as failure:
        run_sync(settings, **sync_params(directory, credential="nobody"))
    assert failure.value.code == "ldap_credential"


def test_password_is_never_sent_in_clear_to_a_remote_server(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given a credential also for a plain ldap:// URL to a host that is not this machine, and
    # a job for that URL without start_tls
    settings = relay_settings(tmp_path, directory, also_for=("ldap://192.0.2.10",))

    # When a sync is attempted
    with pytest.raises(JobError) as failure:
        run_sync(settings, **sync_params(directory, url="ldap://192.0.2.10"))

    # Then the relay refuses before connecting
    assert failure.value.code == "ldap_tls"
    assert "unencrypted" in failure.value.message


def test_incremental_mode_needs_a_previous_full_sync(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    settings = relay_settings(tmp_path, directory)
    with pytest.raises(JobError) as failure:
        run_sync(settings, **sync_params(directory, mode="incremental"))
    assert failure.value.code == "ldap_no_state"


def test_a_second_concurrent_sync_of_one_connector_is_refused(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given a sync of connector corp is running (it holds the connector's lock)
    settings = relay_settings(tmp_path, directory)
    # When another sync of the same connector starts
    with SyncStateStore(tmp_path).locked("corp"), pytest.raises(JobError) as failure:
        run_sync(settings, **sync_params(directory))

    # Then it fails as retryable ldap_busy instead of racing on the state
    assert failure.value.code == "ldap_busy"
    assert failure.value.retryable


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"url": "http://127.0.0.1"}, "scheme"),
        ({"url": "ldap://user:pw@127.0.0.1"}, "credentials"),
        ({"base_dn": "not a dn"}, "DN"),
        ({"connector": "../etc"}, "connector id"),
        ({"url": "ldaps://127.0.0.1", "start_tls": True}, "start_tls"),
        ({"page_size": 0}, "page_size"),
        ({"password": "secret"}, "password"),
    ],
)
def test_invalid_params_are_rejected_before_the_job_runs(
    directory: SlapdServer, tmp_path: Path, override: dict[str, object], complaint: str
) -> None:
    handler = LdapSyncHandler(relay_settings(tmp_path, directory))
    with pytest.raises(ValidationError, match=complaint):
        handler.validate(sync_params(directory, **override))


def test_a_relay_without_ldap_credentials_does_not_take_sync_jobs(tmp_path: Path) -> None:
    handler = LdapSyncHandler(RelaySettings(host="dc01", state_dir=tmp_path))
    assert handler.enabled() == "no ldap.credentials are configured on this relay"


def test_a_relay_that_cannot_publish_inventory_fails_the_job_cleanly(
    directory: SlapdServer, tmp_path: Path
) -> None:
    # Given a job context without an event sink (an older executor)
    settings = relay_settings(tmp_path, directory)
    handler = LdapSyncHandler(settings)
    context = JobContext(
        job_id="01JTESTJOB0000000000000000",
        attempt=1,
        host="dc01",
        settings=settings,
        timeout_s=60,
        report_progress=lambda done, total, message: None,
        report_output=lambda stream, data: None,
    )

    # When a sync has entities to publish
    with pytest.raises(JobError) as failure:
        handler.run(handler.validate(sync_params(directory)), context)

    # Then it fails clearly and commits no state
    assert failure.value.code == "inventory_unsupported"
    assert not state_file(tmp_path).exists()
