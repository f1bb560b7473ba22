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


def staff_ldif(base: str) -> str:
    ldif = f"dn: OU=Staff,{base}\nchangetype: add\nobjectClass: organizationalUnit\n\n"
    for i in range(20):
        ldif += (
            f"dn: CN=User {i},OU=Staff,{base}\nchangetype: add\nobjectClass: user\n"
            f"sAMAccountName: staff{i}\nmail: staff{i}@hostrelay.test\n\n"
        )
    ldif += (
        f"dn: CN=Team,OU=Staff,{base}\nchangetype: add\nobjectClass: group\n"
        "sAMAccountName: team\n"
        + "".join(f"member: CN=User {i},OU=Staff,{base}\n" for i in range(5))
        + "\n"
    )
    ldif += (
        f"dn: CN=Dept,OU=Staff,{base}\nchangetype: add\nobjectClass: group\n"
        f"sAMAccountName: dept\nmember: CN=Team,OU=Staff,{base}\n"
        f"member: CN=User 7,OU=Staff,{base}\n\n"
    )
    return ldif


def test_active_directory_sync_full_then_incremental(
    samba_ad: SambaDirectory, tmp_path: Path, run_sync: RunSync
) -> None:
    # Given an AD domain with an OU of 20 users and nested groups, synced over LDAPS
    base = samba_ad.base_dn
    samba_ad.modify(staff_ldif(base))
    settings = ad_settings(tmp_path, samba_ad)
    mirror = InventoryMirror()
    params = {
        "connector": "ad",
        "url": samba_ad.url,
        "base_dn": f"OU=Staff,{base}",
        "credential": "ad",
        "full_scan_every": 1,
    }
    full = run_sync(settings, mirror, **params)

    # Then the flavor was detected, ids are objectGUIDs and names are sAMAccountNames
    assert (full.result["flavor"], full.result["mode"]) == ("ad", "full")
    assert full.result["created"] == 1 + 20 + 2
    user = mirror.by_dn(f"CN=User 7,OU=Staff,{base}")
    assert user["name"] == "staff7"
    assert user["attributes"]["objectSid"].startswith("S-1-5-21-")
    team = mirror.by_dn(f"CN=Team,OU=Staff,{base}")
    dept = mirror.by_dn(f"CN=Dept,OU=Staff,{base}")
    assert sorted(dept["members"]) == sorted([team["id"], user["id"]])
    assert team["member_of"] == [dept["id"]]

    # When a user changes, a user joins Dept, and another user is deleted
    samba_ad.modify(
        f"dn: CN=User 1,OU=Staff,{base}\nchangetype: modify\nreplace: mail\n"
        "mail: changed@hostrelay.test\n\n"
        f"dn: CN=Dept,OU=Staff,{base}\nchangetype: modify\nadd: member\n"
        f"member: CN=User 9,OU=Staff,{base}\n\n"
        f"dn: CN=User 19,OU=Staff,{base}\nchangetype: delete\n\n"
    )
    gone = mirror.by_dn(f"CN=User 19,OU=Staff,{base}")["id"]
    run = run_sync(settings, mirror, **params)

    # Then only entries past the last highestCommittedUSN were read (plus the member whose
    # member_of changed), and the inventory follows the directory
    assert run.result["mode"] == "incremental"
    assert run.result["entries_read"] == 3
    assert (run.result["updated"], run.result["deleted"]) == (3, 1)
    assert mirror.by_dn(f"CN=User 1,OU=Staff,{base}")["attributes"]["mail"] == (
        "changed@hostrelay.test"
    )
    assert mirror.by_dn(f"CN=User 9,OU=Staff,{base}")["member_of"] == [dept["id"]]
    assert gone not in mirror.entities
