"""Sync state survives restarts, tolerates damage, and serialises concurrent runs; credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.directory.state import KnownEntity, SyncState, SyncStateStore
from hostrelay_relay.settings import LdapCredential

URLS = ["ldaps://dc01.example.org"]


def test_state_round_trips_through_the_file(tmp_path: Path) -> None:
    store = SyncStateStore(tmp_path)
    state = SyncState(
        fingerprint="f",
        flavor="openldap",
        watermark="20250101000000Z",
        runs_since_scan=2,
        entities={
            "a": KnownEntity("h1", "user", "uid=a,dc=x", None),
            "g": KnownEntity("h2", "group", "cn=g,dc=x", ["a", "uid=z,dc=x"]),
        },
    )
    store.save("corp", state)
    assert store.load("corp") == state
    assert store.path("corp") == tmp_path / "directory" / "corp.json"


def test_missing_or_damaged_state_means_a_full_sync(tmp_path: Path) -> None:
    store = SyncStateStore(tmp_path)
    assert store.load("corp") is None
    store.path("corp").parent.mkdir(parents=True)
    store.path("corp").write_text("{not json")
    assert store.load("corp") is None
    store.path("corp").write_text('{"version": 99}')
    assert store.load("corp") is None


def test_a_connector_id_cannot_point_outside_the_state_dir(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="connector id"):
        SyncStateStore(tmp_path).path("../../etc/passwd")


def test_one_sync_per_connector_at_a_time(tmp_path: Path) -> None:
    store = SyncStateStore(tmp_path)
    with store.locked("corp"):
        with pytest.raises(DirectoryError) as failure, store.locked("corp"):
            pass
        assert failure.value.code == "ldap_busy"
        with store.locked("other"):
            pass
    with store.locked("corp"):
        pass


def test_a_credential_needs_exactly_one_password_source(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        LdapCredential(bind_dn="cn=x", urls=URLS)
    with pytest.raises(ValidationError, match="exactly one"):
        LdapCredential(bind_dn="cn=x", password="a", password_file=tmp_path / "pw", urls=URLS)


def test_a_password_file_is_read_at_use_and_the_secret_stays_out_of_reprs(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text("first\n")
    credential = LdapCredential(bind_dn="cn=x", password_file=secret_file, urls=URLS)
    assert credential.read_password() == "first"
    secret_file.write_text("rotated\n")
    assert credential.read_password() == "rotated"
    inline = LdapCredential(bind_dn="cn=x", password="hunter2", urls=URLS)
    assert inline.read_password() == "hunter2"
    assert "hunter2" not in repr(inline)
