"""Directory entries → inventory entities: attribute mapping, member resolution, stable hashes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from hostrelay_relay.directory.connection import RawAttributes
from hostrelay_relay.directory.flavors import Flavor, Kind, sid_to_str
from hostrelay_relay.directory.names import dn_key, first_rdn_value

AttributeValue = str | list[str]
Entity = dict[str, Any]
_ROLE_ID, _ROLE_CHANGE, _ROLE_MEMBER, _ROLE_LIST, _ROLE_BINARY, _ROLE_TEXT = range(6)


@dataclass(slots=True)
class DirectoryEntry:
    """One entry as read, before its members are resolved to ids."""

    id: str
    kind: Kind
    dn: str
    name: str
    attributes: dict[str, AttributeValue]
    member_dns: list[str] = field(default_factory=list)
    change_marker: str | None = None
    # AD sends members of big groups in ranges: (attribute, first index still to read).
    ranged_members: tuple[str, int] | None = None


class EntryParser:
    """Turns python-ldap results into DirectoryEntry for one flavor and kind."""

    def __init__(self, flavor: Flavor, kind: Kind) -> None:
        self.flavor = flavor
        self.kind = kind
        self.name_attribute = flavor.name_attribute[kind]
        roles: dict[str, tuple[int, str]] = {
            flavor.id_attribute.lower(): (_ROLE_ID, flavor.id_attribute),
            flavor.change_attribute.lower(): (_ROLE_CHANGE, flavor.change_attribute),
        }
        for name in flavor.attributes[kind]:
            lowered = name.lower()
            if lowered in flavor.list_attributes:
                roles[lowered] = (_ROLE_LIST, name)
            elif lowered in flavor.binary_attributes:
                roles[lowered] = (_ROLE_BINARY, name)
            else:
                roles[lowered] = (_ROLE_TEXT, name)
        if kind == "group":
            for name in flavor.member_attributes:
                roles[name.lower()] = (_ROLE_MEMBER, name)
        self._roles = roles

    def parse(self, dn: str, raw: RawAttributes) -> DirectoryEntry | None:
        """The entry, or None when it carries no id (e.g. the server hid it from this account)."""
        entity_id: str | None = None
        change: str | None = None
        attributes: dict[str, AttributeValue] = {}
        members: list[str] = []
        ranged: tuple[str, int] | None = None
        roles = self._roles
        for key, values in raw.items():
            if not values:
                continue
            lowered = key.lower()
            role = roles.get(lowered)
            if role is None:
                base, _, option = lowered.partition(";")
                if option.startswith("range=") and roles.get(base, (None,))[0] == _ROLE_MEMBER:
                    members.extend(_member_dn(value) for value in values)
                    end = option.rsplit("-", 1)[-1]
                    if end != "*":
                        ranged = (roles[base][1], int(end) + 1)
                continue
            kind_of_value, name = role
            if kind_of_value == _ROLE_TEXT:
                attributes[name] = values[0].decode("utf-8", "replace")
            elif kind_of_value == _ROLE_MEMBER:
                members.extend(_member_dn(value) for value in values)
            elif kind_of_value == _ROLE_ID:
                entity_id = self.flavor.decode_id(values[0])
            elif kind_of_value == _ROLE_CHANGE:
                change = values[0].decode("ascii", "replace")
            elif kind_of_value == _ROLE_LIST:
                attributes[name] = sorted(value.decode("utf-8", "replace") for value in values)
            else:
                attributes[name] = sid_to_str(values[0])
        if entity_id is None:
            return None
        name_value = attributes.get(self.name_attribute)
        if not isinstance(name_value, str):
            name_value = first_rdn_value(dn)
        return DirectoryEntry(
            id=entity_id,
            kind=self.kind,
            dn=dn,
            name=name_value,
            attributes=dict(sorted(attributes.items())),
            member_dns=members,
            change_marker=change,
            ranged_members=ranged,
        )


def _member_dn(value: bytes) -> str:
    text = value.decode("utf-8", "replace")
    # uniqueMember may carry an optional "#'0101'B" unique-id suffix after the DN.
    if text.endswith("'B") and "#'" in text:
        text = text[: text.rindex("#'")]
    return text


class MemberResolver:
    """Maps member DNs to entity ids; DNs it cannot place stay as DNs."""

    def __init__(self) -> None:
        self._by_dn: dict[str, str] = {}
        self._by_key: dict[str, str] | None = None

    def add(self, dn: str, entity_id: str) -> None:
        self._by_dn[dn.lower()] = entity_id
        if self._by_key is not None:
            self._by_key[_safe_key(dn)] = entity_id

    def discard(self, dn: str) -> None:
        self._by_dn.pop(dn.lower(), None)
        if self._by_key is not None:
            self._by_key.pop(_safe_key(dn), None)

    def resolve(self, dn: str) -> str:
        found = self._by_dn.get(dn.lower())
        if found is not None:
            return found
        # Rare: the member value is spelled differently (spacing, escaping) from the entry DN.
        if self._by_key is None:
            self._by_key = {_safe_key(known): entity_id for known, entity_id in self._by_dn.items()}
        return self._by_key.get(_safe_key(dn), dn)


def _safe_key(dn: str) -> str:
    try:
        return dn_key(dn)
    except ValueError:  # a malformed member value just stays unresolved
        return dn.lower()


def build_entity(entry: DirectoryEntry, members: list[str] | None, member_of: list[str]) -> Entity:
    """The inventory entity; key order is fixed so equal entities serialise identically."""
    entity: Entity = {
        "id": entry.id,
        "kind": entry.kind,
        "dn": entry.dn,
        "name": entry.name,
        "attributes": entry.attributes,
    }
    if members is not None:
        entity["members"] = members
    entity["member_of"] = member_of
    return entity


def serialise(entity: Entity) -> str:
    return json.dumps(entity, ensure_ascii=False, separators=(",", ":"))


def entity_hash(serialised: str) -> str:
    return hashlib.blake2b(serialised.encode(), digest_size=12).hexdigest()
