"""Values placed into LDAP search filters (RFC 4515) and DNs (RFC 4514), escaped by ldap3."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

_ATTRIBUTE_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def escape_filter_value(value: str) -> str:
    """Escape an assertion value: `*`, `(`, `)`, `\\` and NUL → `\\XX` (ldap3's escaper)."""
    escaped: str = escape_filter_chars(value)
    return escaped


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
    # ldap3 writes NUL as a backslash and the NUL itself (not RFC 4514's `\\00`); no name this
    # module composes may hold a control character, so refuse them all instead.
    if _CONTROL.search(value):
        raise ValueError("an RDN value must not hold control characters")
    escaped: str = escape_rdn(value)
    return escaped


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
