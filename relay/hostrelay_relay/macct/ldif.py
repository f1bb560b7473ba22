"""The one LDIF writer (every DN and value base64-encoded) and a reader for ldbsearch output."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

_ATTRIBUTE_TYPE = re.compile(rb"[A-Za-z][A-Za-z0-9-]*")
_ATTR_LINE = re.compile(rb"([A-Za-z][A-Za-z0-9;-]*):(:|<)? ?(.*)")

LdifChange = Literal["add", "replace"]


class LdifError(ValueError):
    """Text that is not the LDIF this module writes or ldbsearch prints."""


@dataclass(frozen=True)
class LdifRecord:
    """One LDIF change: `add` a new entry, or `replace` the listed attributes of `dn`.

    Values are raw bytes and may be password-equivalent, so they never appear in a repr.
    """

    change: LdifChange
    dn: str
    attributes: Sequence[tuple[str, Sequence[bytes]]] = field(repr=False)


def render_ldif(records: Iterable[LdifRecord]) -> bytes:
    """Render records as LDIF; the DN and every value are base64 (`dn::`, `attr::`).

    Nothing from a caller is ever spliced into the text unencoded, so no value can start a
    new line, record or attribute. Attribute types must be plain names.
    """
    lines: list[bytes] = []
    for record in records:
        if not record.dn:
            raise LdifError("a record needs a DN")
        lines.append(b"dn:: " + _b64(record.dn.encode("utf-8")))
        lines.append(b"changetype: add" if record.change == "add" else b"changetype: modify")
        for attribute, values in record.attributes:
            name = attribute.encode("ascii")
            if not _ATTRIBUTE_TYPE.fullmatch(name):
                raise LdifError(f"not an attribute type: {attribute!r}")
            if record.change == "replace":
                lines.append(b"replace: " + name)
            lines.extend(name + b":: " + _b64(value) for value in values)
            if record.change == "replace":
                lines.append(b"-")
        lines.append(b"")
    return b"\n".join(lines) + b"\n" if lines else b""


def _b64(value: bytes) -> bytes:
    return base64.b64encode(value)


@dataclass(frozen=True)
class LdifEntry:
    """One entry read back from ldbsearch: its DN and attribute values (keys lower-cased)."""

    dn: str
    attributes: dict[str, list[bytes]] = field(repr=False)

    def values(self, attribute: str) -> list[bytes]:
        return self.attributes.get(attribute.lower(), [])

    def first(self, attribute: str) -> bytes | None:
        found = self.values(attribute)
        return found[0] if found else None


def parse_ldif(text: bytes) -> list[LdifEntry]:
    """Parse ldbsearch output: entries with a DN; referrals (`ref:`) and comments are skipped."""
    entries: list[LdifEntry] = []
    block: list[bytes] = []
    for line in _unfold(text):
        if line:
            block.append(line)
            continue
        entry = _parse_block(block)
        if entry is not None:
            entries.append(entry)
        block = []
    entry = _parse_block(block)
    if entry is not None:
        entries.append(entry)
    return entries


def _unfold(text: bytes) -> list[bytes]:
    lines: list[bytes] = []
    for raw in text.split(b"\n"):
        line = raw.removesuffix(b"\r")
        if line.startswith(b" ") and lines and lines[-1]:
            lines[-1] += line[1:]
        elif line.startswith(b"#"):
            continue
        else:
            lines.append(line)
    return lines


def _parse_block(block: list[bytes]) -> LdifEntry | None:
    pairs = [_parse_line(line) for line in block if not line.startswith(b"version:")]
    if not pairs or pairs[0][0] == "ref":
        return None
    name, value = pairs[0]
    if name != "dn":
        raise LdifError("an LDIF entry must start with 'dn:'")
    attributes: dict[str, list[bytes]] = {}
    for attribute, data in pairs[1:]:
        attributes.setdefault(attribute, []).append(data)
    return LdifEntry(dn=value.decode("utf-8"), attributes=attributes)


def _parse_line(line: bytes) -> tuple[str, bytes]:
    match = _ATTR_LINE.fullmatch(line)
    if match is None:
        raise LdifError("malformed LDIF line")
    name, marker, value = match.groups()
    if marker == b"<":
        raise LdifError("LDIF URL values are not accepted")
    if marker == b":":
        try:
            return name.decode().lower(), base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise LdifError("bad base64 in LDIF value") from exc
    return name.decode().lower(), value
