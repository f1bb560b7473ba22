"""ldap.sync against a real Samba AD DC: objectGUID ids, SIDs, and uSNChanged increments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hostrelay_relay.settings import LdapCredential, LdapSettings, RelaySettings
from tests.integration.ldap.ldap_support import (
    InventoryMirror,
    JobRun,
    SambaDirectory,
    client_in_test,
)

pytestmark = pytest.mark.integration
RunSync = Callable[..., JobRun]


def ad_settings(state_dir: Path, samba: SambaDirectory) -> RelaySettings:
    credential = LdapCredential(
        bind_dn=samba.admin_dn, password=samba.domain.admin_password, urls=[samba.url]
    )
    return RelaySettings(
        host="dc01",
        state_dir=state_dir,
        ldap=LdapSettings(
            credentials={"ad": credential},
            ca_file=samba.tls.ca_file,
            client=client_in_test["name"],
        ),
    )


def staff_ldif(staff: str, tag: str) -> str:
    """An OU `staff` of 20 users and nested groups; account names start with `tag`."""
    ldif = f"dn: {staff}\nchangetype: add\nobjectClass: organizationalUnit\n\n"
    for i in range(20):
        ldif += (
            f"dn: CN=User {i},{staff}\nchangetype: add\nobjectClass: user\n"
            f"sAMAccountName: {tag}staff{i}\nmail: {tag}staff{i}@hostrelay.test\n\n"
        )
    ldif += (
        f"dn: CN=Team,{staff}\nchangetype: add\nobjectClass: group\n"
        f"sAMAccountName: {tag}team\n"
        + "".join(f"member: CN=User {i},{staff}\n" for i in range(5))
        + "\n"
    )
    ldif += (
        f"dn: CN=Dept,{staff}\nchangetype: add\nobjectClass: group\n"
        f"sAMAccountName: {tag}dept\nmember: CN=Team,{staff}\n"
        f"member: CN=User 7,{staff}\n\n"
    )
    return ldif


def test_active_directory_sync_full_then_incremental(
    samba_ad: SambaDirectory, tmp_path: Path, run_sync: RunSync, ldap_client: str
) -> None:
    # Given an AD domain with an OU of 20 users and nested groups, synced over LDAPS
    # (one OU per LDAP client: the domain is shared by the test session)
    tag = "py" if ldap_client == "python-ldap" else "l3"
    staff = f"OU=Staff-{tag},{samba_ad.base_dn}"
    samba_ad.modify(staff_ldif(staff, tag))
    settings = ad_settings(tmp_path, samba_ad)
    mirror = InventoryMirror()
    params = {
        "connector": "ad",
        "url": samba_ad.url,
        "base_dn": staff,
        "credential": "ad",
        "full_scan_every": 1,
    }
    full = run_sync(settings, mirror, **params)

    # Then the flavor was detected, ids are objectGUIDs and names are sAMAccountNames
    assert (full.result["flavor"], full.result["mode"]) == ("ad", "full")
    assert full.result["created"] == 1 + 20 + 2
    user = mirror.by_dn(f"CN=User 7,{staff}")
    assert user["name"] == f"{tag}staff7"
    assert user["attributes"]["objectSid"].startswith("S-1-5-21-")
    team = mirror.by_dn(f"CN=Team,{staff}")
    dept = mirror.by_dn(f"CN=Dept,{staff}")
    assert sorted(dept["members"]) == sorted([team["id"], user["id"]])
    assert team["member_of"] == [dept["id"]]

    # When a user changes, a user joins Dept, and another user is deleted
    samba_ad.modify(
        f"dn: CN=User 1,{staff}\nchangetype: modify\nreplace: mail\n"
        "mail: changed@hostrelay.test\n\n"
        f"dn: CN=Dept,{staff}\nchangetype: modify\nadd: member\n"
        f"member: CN=User 9,{staff}\n\n"
        f"dn: CN=User 19,{staff}\nchangetype: delete\n\n"
    )
    gone = mirror.by_dn(f"CN=User 19,{staff}")["id"]
    run = run_sync(settings, mirror, **params)

    # Then only entries past the last highestCommittedUSN were read (plus the member whose
    # member_of changed), and the inventory follows the directory
    assert run.result["mode"] == "incremental"
    assert run.result["entries_read"] == 3
    assert (run.result["updated"], run.result["deleted"]) == (3, 1)
    assert mirror.by_dn(f"CN=User 1,{staff}")["attributes"]["mail"] == ("changed@hostrelay.test")
    assert mirror.by_dn(f"CN=User 9,{staff}")["member_of"] == [dept["id"]]
    assert gone not in mirror.entities
