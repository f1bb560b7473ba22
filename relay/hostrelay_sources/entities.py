"""What a source reads, as inventory entities: id, kind, name, attributes, group relations."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SourceEntity:
    """One object of a source. `members` is set for groups (users and child groups);
    `member_of` lists the groups (parents, for a group) the object is directly in."""

    id: str
    kind: str
    name: str
    attributes: dict[str, Any]
    members: list[str] | None = None
    member_of: list[str] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        """The upsert of an `inventory` event (the shape the relay's ldap.sync sends)."""
        body: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "attributes": self.attributes,
            "member_of": self.member_of,
        }
        if self.members is not None:
            body["members"] = self.members
        return body

    def serialised(self) -> bytes:
        return json.dumps(
            self.to_wire(), ensure_ascii=False, separators=(",", ":"), sort_keys=True
        ).encode()


def content_hash(data: bytes) -> str:
    """A short digest of an entity's serialised form: equal digests, nothing to send."""
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def compact(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attributes without empty values (None, "", empty lists and maps)."""
    return {key: value for key, value in attributes.items() if value not in (None, "", [], {})}
