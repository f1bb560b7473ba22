"""Directory entries → inventory entities: attribute mapping, member resolution, stable hashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from hostrelay_contract.dn import dn_key, first_rdn_value
from hostrelay_relay.directory.connection import RawAttributes
from hostrelay_relay.directory.flavors import Flavor, Kind, sid_to_str

AttributeValue = str | list[str]
Entity = dict[str, Any]
_ROLE_TEXT, _ROLE_LIST, _ROLE_BINARY = range(3)


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
        self._id = flavor.id_attribute
        self._change = flavor.change_attribute
        # Fixed order, so equal entries build equal dicts without sorting each one.
        self._text = sorted(
            name for name in flavor.attributes[kind] if _role_of(name, flavor) == _ROLE_TEXT
        )
        self._other = sorted(
            (name, role)
            for name in flavor.attributes[kind]
            if (role := _role_of(name, flavor)) != _ROLE_TEXT
        )
        self._members = flavor.member_attributes if kind == "group" else ()
        names = [self._id, self._change, *flavor.attributes[kind], *self._members]
        self._exact = frozenset(names)
        self._by_lower = {name.lower(): name for name in names}

    def _canonical_keys(self, raw: RawAttributes) -> RawAttributes:
        """Servers may spell attribute names in another case; map them to ours."""
        return {self._by_lower.get(key.lower(), key): values for key, values in raw.items()}

    def parse(self, dn: str, raw: RawAttributes) -> DirectoryEntry | None:
        """The entry, or None when it carries no id (e.g. the server hid it from this account)."""
        unusual_keys = not self._exact.issuperset(raw)
        if unusual_keys:
            raw = self._canonical_keys(raw)
        id_values = raw.get(self._id)
        if not id_values:
            return None
        attributes: dict[str, AttributeValue] = {
            name: values[0].decode("utf-8", "replace")
            for name in self._text
            if (values := raw.get(name))
        }
        for name, role in self._other:
            values = raw.get(name)
            if values and role == _ROLE_LIST:
                attributes[name] = sorted(value.decode("utf-8", "replace") for value in values)
            elif values:
                attributes[name] = sid_to_str(values[0])
        members: list[str] = []
        ranged: tuple[str, int] | None = None
        for name in self._members:
            values = raw.get(name)
            if values:
                members.extend(_member_dns(values))
        if self._members and unusual_keys:
            ranged = self._ranged_members(raw, members)
        change_values = raw.get(self._change)
        name_value = attributes.get(self.name_attribute)
        return DirectoryEntry(
            id=self.flavor.decode_id(id_values[0]),
            kind=self.kind,
            dn=dn,
            name=name_value if isinstance(name_value, str) else first_rdn_value(dn),
            attributes=attributes,
            member_dns=members,
            change_marker=change_values[0].decode("ascii", "replace") if change_values else None,
            ranged_members=ranged,
        )

    def _ranged_members(self, raw: RawAttributes, members: list[str]) -> tuple[str, int] | None:
        """Collect `member;range=0-1499` values; say where to continue if AD has more."""
        ranged: tuple[str, int] | None = None
        for key, values in raw.items():
            base, _, option = key.partition(";")
            canonical = self._by_lower.get(base.lower())
            if canonical in self._members and option.lower().startswith("range="):
                members.extend(_member_dns(values))
                end = option.rsplit("-", 1)[-1]
                if end != "*":
                    ranged = (canonical, int(end) + 1)
        return ranged


def _role_of(name: str, flavor: Flavor) -> int:
    if name.lower() in flavor.list_attributes:
        return _ROLE_LIST
    if name.lower() in flavor.binary_attributes:
        return _ROLE_BINARY
    return _ROLE_TEXT


def _member_dns(values: list[bytes]) -> list[str]:
    """Member DNs as text; one comprehension, as big groups have tens of thousands of them."""
    texts = [value.decode("utf-8", "replace") for value in values]
    # uniqueMember may carry an optional "#'0101'B" unique-id suffix after the DN.
    return [
        text[: text.rindex("#'")] if text.endswith("'B") and "#'" in text else text
        for text in texts
    ]


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

    def resolve_all(self, dns: list[str]) -> list[str]:
        """Sorted, de-duplicated ids (or DNs) of a group's member values."""
        by_dn = self._by_dn
        found = {by_dn.get(dn.lower()) or self.resolve(dn) for dn in dns}
        return sorted(found)

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


def serialise(entity: Entity) -> bytes:
    """Compact UTF-8 JSON, byte for byte what json.dumps(ensure_ascii=False,
    separators=(",", ":")).encode() writes for these str/list/dict/None values, at a third of
    its cost; the hash and the batch size both come from these bytes."""
    return orjson.dumps(entity)


def entity_hash(serialised: bytes) -> str:
    return hashlib.blake2b(serialised, digest_size=12).hexdigest()
