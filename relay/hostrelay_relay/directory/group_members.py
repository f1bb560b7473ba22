"""Adds and removes members of one directory group with a single LDAP modify, or previews it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hostrelay_contract.dn import dn_key
from hostrelay_contract.jobs.ldap import LdapGroupMembersParams
from hostrelay_relay.directory.connection import (
    LdapConnection,
    Modification,
    RawAttributes,
    connection_spec,
    open_connection,
)
from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.settings import LdapCredential, LdapSettings

_MEMBER_ATTRIBUTE_BY_CLASS = {
    "groupofuniquenames": "uniqueMember",
    "groupofnames": "member",
    "group": "member",  # Active Directory
}


@dataclass(frozen=True)
class MembershipChange:
    """What was (or, on a dry run, would be) changed; becomes the job result."""

    group_dn: str
    attribute: str
    dry_run: bool
    applied: bool
    add: list[str]
    remove: list[str]
    already_members: list[str]
    not_members: list[str]

    def to_result(self) -> dict[str, Any]:
        return asdict(self)


def _member_attribute(group_dn: str, entry: RawAttributes) -> str:
    classes = {value.decode("utf-8", "replace").lower() for value in entry.get("objectClass", [])}
    for object_class, attribute in _MEMBER_ATTRIBUTE_BY_CLASS.items():
        if object_class in classes:
            return attribute
    raise DirectoryError(
        "ldap_not_group", f"{group_dn!r} is not a group (groupOfNames, groupOfUniqueNames, group)"
    )


def _current_members(connection: LdapConnection, group_dn: str, attribute: str) -> dict[str, str]:
    """DN key → member value as stored, including every range AD splits a big group into."""
    entry = connection.read_entry(group_dn, [attribute]) or {}
    values: list[bytes] = []
    for key, found in entry.items():
        lowered = key.lower()
        if lowered == attribute.lower():
            values.extend(found)
        elif lowered.startswith(attribute.lower() + ";range="):
            values.extend(found)
            end = lowered.rsplit("-", 1)[-1]
            if end != "*":
                for more in connection.read_ranged(group_dn, attribute, int(end) + 1):
                    values.extend(more)
    members: dict[str, str] = {}
    for value in values:
        text = value.decode("utf-8", "replace")
        dn = text[: text.rindex("#'")] if text.endswith("'B") and "#'" in text else text
        try:
            members[dn_key(dn)] = text
        except ValueError:
            members[text.lower()] = text
    return members


def change_group_members(
    params: LdapGroupMembersParams, credential: LdapCredential, settings: LdapSettings
) -> MembershipChange:
    """Apply params.add/params.remove to the group; nothing changes unless every check passes."""
    spec = connection_spec(params, credential, settings)
    with open_connection(spec, settings.client) as connection:
        group = connection.read_entry(params.group_dn, ["objectClass"])
        if group is None:
            raise DirectoryError("ldap_no_such_object", f"group {params.group_dn!r} does not exist")
        attribute = _member_attribute(params.group_dn, group)
        current = _current_members(connection, params.group_dn, attribute)
        add = [dn for dn in params.add if dn_key(dn) not in current]
        already = [dn for dn in params.add if dn_key(dn) in current]
        remove = [current[dn_key(dn)] for dn in params.remove if dn_key(dn) in current]
        not_members = [dn for dn in params.remove if dn_key(dn) not in current]
        for dn in add:
            if connection.read_entry(dn, ["1.1"]) is None:
                raise DirectoryError(
                    "ldap_no_such_object", f"cannot add {dn!r} to the group: no such entry"
                )
        changes: list[Modification] = []
        if add:
            changes.append(("add", attribute, [dn.encode() for dn in add]))
        if remove:
            changes.append(("delete", attribute, [dn.encode() for dn in remove]))
        if changes and not params.dry_run:
            connection.modify(params.group_dn, changes)
    return MembershipChange(
        group_dn=params.group_dn,
        attribute=attribute,
        dry_run=params.dry_run,
        applied=bool(changes) and not params.dry_run,
        add=add,
        remove=remove,
        already_members=already,
        not_members=not_members,
    )
