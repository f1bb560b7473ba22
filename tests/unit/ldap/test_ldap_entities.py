"""Directory entries become inventory entities the same way for AD and OpenLDAP."""

from __future__ import annotations

import json
import struct
import uuid

from hostrelay_relay.directory.entities import EntryParser, MemberResolver, serialise
from hostrelay_relay.directory.flavors import ACTIVE_DIRECTORY, OPENLDAP, detect_flavor, sid_to_str

GUID = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")


def ad_sid(*subs: int) -> bytes:
    return bytes([1, len(subs)]) + (5).to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def test_an_ad_user_maps_guid_sid_and_account_name() -> None:
    # Given an AD user as python-ldap returns it (attribute names in the server's spelling)
    raw = {
        "objectGUID": [GUID.bytes_le],
        "uSNChanged": [b"4711"],
        "sAMAccountName": [b"jdoe"],
        "mail": [b"jdoe@corp.example"],
        "objectSid": [ad_sid(21, 1, 2, 3, 1104)],
    }
    entry = EntryParser(ACTIVE_DIRECTORY, "user").parse("CN=John Doe,OU=Staff,DC=corp", raw)
    assert entry is not None
    assert entry.id == str(GUID)
    assert entry.name == "jdoe"
    assert entry.change_marker == "4711"
    assert entry.attributes == {
        "mail": "jdoe@corp.example",
        "sAMAccountName": "jdoe",
        "objectSid": "S-1-5-21-1-2-3-1104",
    }


def test_attribute_names_in_another_case_are_understood() -> None:
    raw = {"ENTRYUUID": [b"AAAAAAAA-0000-0000-0000-000000000001"], "UID": [b"x"], "Mail": [b"m"]}
    entry = EntryParser(OPENLDAP, "user").parse("uid=x,dc=y", raw)
    assert entry is not None
    assert entry.id == "aaaaaaaa-0000-0000-0000-000000000001"
    assert entry.attributes == {"mail": "m", "uid": "x"}


def test_ad_ranged_members_are_collected_and_the_next_range_is_noted() -> None:
    raw = {
        "objectGUID": [GUID.bytes_le],
        "cn": [b"big"],
        "member;range=0-1": [b"CN=a,DC=corp", b"CN=b,DC=corp"],
    }
    entry = EntryParser(ACTIVE_DIRECTORY, "group").parse("CN=big,DC=corp", raw)
    assert entry is not None
    assert entry.member_dns == ["CN=a,DC=corp", "CN=b,DC=corp"]
    assert entry.ranged_members == ("member", 2)


def test_unique_member_values_lose_their_optional_uid_suffix() -> None:
    raw = {
        "entryUUID": [str(GUID).encode()],
        "cn": [b"g"],
        "uniqueMember": [b"uid=a,dc=x#'0101'B", b"uid=b,dc=x"],
    }
    entry = EntryParser(OPENLDAP, "group").parse("cn=g,dc=x", raw)
    assert entry is not None
    assert entry.member_dns == ["uid=a,dc=x", "uid=b,dc=x"]


def test_an_entry_without_id_is_skipped() -> None:
    assert EntryParser(OPENLDAP, "user").parse("uid=x,dc=y", {"uid": [b"x"]}) is None


def test_members_resolve_to_ids_despite_spelling_and_unknown_dns_stay_dns() -> None:
    resolver = MemberResolver()
    resolver.add("uid=jdoe,ou=people,dc=example,dc=org", "id-1")
    assert resolver.resolve("UID=jdoe, ou=People,dc=example,dc=org") == "id-1"
    assert resolver.resolve("uid=other,dc=example,dc=org") == "uid=other,dc=example,dc=org"


def test_ad_is_recognised_by_its_capability_and_guid_filters_are_escaped() -> None:
    assert detect_flavor([b"1.2.840.113556.1.4.800"]).name == "ad"
    assert detect_flavor([]).name == "openldap"
    assert ACTIVE_DIRECTORY.id_filter(str(GUID)) == (
        "(objectGUID=" + "".join(f"\\{b:02x}" for b in GUID.bytes_le) + ")"
    )
    assert sid_to_str(ad_sid(32, 544)) == "S-1-5-32-544"


def test_serialised_entities_are_the_bytes_compact_json_dumps_writes() -> None:
    # Inventory hashes and stored states from earlier relays were made with json.dumps.
    entity = {
        "id": "e1",
        "kind": "user",
        "dn": 'cn=Zo\u00eb \\"Q\\",ou=People,dc=example,dc=org',
        "name": "Zo\u00eb \u2028 \U0001f600 \x01\x1f\t\n\r\x7f </script>",
        "attributes": {"mail": "z@example.org", "memberOf": [], "empty": ""},
        "members": ["a", "b"],
        "member_of": [],
    }
    expected = json.dumps(entity, ensure_ascii=False, separators=(",", ":")).encode()
    assert serialise(entity) == expected
