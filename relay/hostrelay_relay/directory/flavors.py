"""What differs between Active Directory and OpenLDAP: ids, filters, attributes, change tracking."""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from typing import Literal

from hostrelay_relay.directory.filters import escape_bytes, escape_value

Kind = Literal["user", "group", "ou"]
KINDS: tuple[Kind, ...] = ("ou", "group", "user")
AD_CAPABILITY_OID = "1.2.840.113556.1.4.800"


def sid_to_str(raw: bytes) -> str:
    """Binary objectSid → 'S-1-5-21-…'."""
    if len(raw) < 8:
        raise ValueError("objectSid too short")
    revision, count = raw[0], raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    if len(raw) != 8 + 4 * count:
        raise ValueError("objectSid length does not match its sub-authority count")
    subs = struct.unpack(f"<{count}I", raw[8:])
    return "-".join(["S", str(revision), str(authority), *map(str, subs)])


@dataclass(frozen=True)
class Flavor:
    """How one directory product names and tracks things."""

    name: Literal["ad", "openldap"]
    id_attribute: str
    change_attribute: str
    default_filters: dict[Kind, str]
    attributes: dict[Kind, tuple[str, ...]]
    name_attribute: dict[Kind, str]
    member_attributes: tuple[str, ...]
    list_attributes: frozenset[str]
    binary_attributes: frozenset[str]

    def decode_id(self, raw: bytes) -> str:
        if self.name == "ad":
            return str(uuid.UUID(bytes_le=raw))
        return raw.decode("ascii").lower()

    def id_filter(self, entity_id: str) -> str:
        """Equality filter on the id attribute, escaped."""
        if self.name == "ad":
            return f"({self.id_attribute}={escape_bytes(uuid.UUID(entity_id).bytes_le)})"
        return f"({self.id_attribute}={escape_value(str(uuid.UUID(entity_id)))})"

    def requested_attributes(self, kind: Kind) -> list[str]:
        return [
            self.id_attribute,
            self.change_attribute,
            *self.attributes[kind],
            *(self.member_attributes if kind == "group" else ()),
        ]


ACTIVE_DIRECTORY = Flavor(
    name="ad",
    id_attribute="objectGUID",
    change_attribute="uSNChanged",
    default_filters={
        "user": "(&(objectCategory=person)(objectClass=user))",
        "group": "(objectClass=group)",
        "ou": "(objectClass=organizationalUnit)",
    },
    attributes={
        "user": (
            "sAMAccountName",
            "userPrincipalName",
            "cn",
            "displayName",
            "givenName",
            "sn",
            "mail",
            "title",
            "department",
            "description",
            "employeeID",
            "userAccountControl",
            "objectSid",
        ),
        "group": ("sAMAccountName", "cn", "description", "mail", "groupType", "objectSid"),
        "ou": ("ou", "description"),
    },
    name_attribute={"user": "sAMAccountName", "group": "sAMAccountName", "ou": "ou"},
    member_attributes=("member",),
    list_attributes=frozenset(),
    binary_attributes=frozenset({"objectsid"}),
)

OPENLDAP = Flavor(
    name="openldap",
    id_attribute="entryUUID",
    change_attribute="modifyTimestamp",
    default_filters={
        "user": "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))",
        "group": "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)"
        "(objectClass=posixGroup))",
        "ou": "(objectClass=organizationalUnit)",
    },
    attributes={
        "user": (
            "uid",
            "cn",
            "displayName",
            "givenName",
            "sn",
            "mail",
            "title",
            "description",
            "employeeNumber",
            "telephoneNumber",
            "uidNumber",
            "gidNumber",
            "homeDirectory",
            "loginShell",
        ),
        "group": ("cn", "description", "mail", "gidNumber", "memberUid"),
        "ou": ("ou", "description"),
    },
    name_attribute={"user": "uid", "group": "cn", "ou": "ou"},
    member_attributes=("member", "uniqueMember"),
    list_attributes=frozenset({"memberuid"}),
    binary_attributes=frozenset(),
)

FLAVORS = {"ad": ACTIVE_DIRECTORY, "openldap": OPENLDAP}


def detect_flavor(supported_capabilities: list[bytes]) -> Flavor:
    """Active Directory (or Samba AD) announces its capability OID in the root DSE."""
    if AD_CAPABILITY_OID.encode() in supported_capabilities:
        return ACTIVE_DIRECTORY
    return OPENLDAP
