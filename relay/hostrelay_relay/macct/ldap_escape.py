"""Escaping of values placed into LDAP search filters (RFC 4515) and DNs (RFC 4514)."""

from __future__ import annotations

import re
from collections.abc import Sequence

_ATTRIBUTE_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_DN_SPECIAL = frozenset(',+"\\<>;=')


def escape_filter_value(value: str) -> str:
    """Escape an assertion value: everything but letters, digits, `-`, `_`, `.` and `$` → `\\XX`."""
    out: list[str] = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        if char.isascii() and (char.isalnum() or char in "-_.$"):
            out.append(char)
        else:
            out.append(f"\\{byte:02x}")
    return "".join(out)


def equality_filter(attribute: str, values: Sequence[str]) -> str:
    """`(attr=v)` for one value, `(|(attr=v1)(attr=v2)...)` for several, every value escaped."""
    if not values:
        raise ValueError("a filter needs at least one value")
    if not _ATTRIBUTE_TYPE.fullmatch(attribute):
        raise ValueError(f"not an attribute type: {attribute!r}")
    terms = [f"({attribute}={escape_filter_value(value)})" for value in values]
    return terms[0] if len(terms) == 1 else "(|" + "".join(terms) + ")"


def escape_dn_value(value: str) -> str:
    """Escape an RDN attribute value per RFC 4514 section 2.4."""
    if not value:
        raise ValueError("an RDN value must not be empty")
    out: list[str] = []
    last = len(value) - 1
    for index, char in enumerate(value):
        at_edge = index in (0, last)
        if char in _DN_SPECIAL or (char == "#" and index == 0) or (char == " " and at_edge):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def compose_dn(rdns: Sequence[tuple[str, str]], base_dn: str) -> str:
    """Prefix `base_dn` (a DN read from the directory) with escaped `type=value` RDNs."""
    parts: list[str] = []
    for attribute, value in rdns:
        if not _ATTRIBUTE_TYPE.fullmatch(attribute):
            raise ValueError(f"not an attribute type: {attribute!r}")
        parts.append(f"{attribute}={escape_dn_value(value)}")
    if base_dn:
        parts.append(base_dn)
    return ",".join(parts)
