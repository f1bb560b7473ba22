"""Distinguished names (RFC 4514): strict parsing, escaping and comparison keys.

Written against the RFC's grammar with the standard library only, so the control plane
and the relay judge a DN alike without an LDAP library. As strict as ldap3, which the relay
sends DNs through: what passes here, ldap3 and python-ldap read the same way
(tests/unit/contract/test_dn.py).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

MAX_DN_LENGTH = 2048
# attributeType: a descriptor (cn, sAMAccountName). The RFC allows numeric OIDs too, but
# ldap3 refuses them, so a job naming one would fail on the relay: refused here instead.
_ATTRIBUTE_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")
# What may follow a backslash besides two hex digits (RFC 4514 section 3: `special`).
_ESCAPABLE = frozenset('\\ #=,+;"<>')
# Characters a value must escape: the RFC's `escaped` (';' separated RDNs in RFC 1779), and
# '#' and '=' anywhere, as ldap3 requires (so no `#hex` values either).
_MUST_ESCAPE = frozenset(',+;"<>\\\x00#=')
_VALUE_ESCAPE = re.compile(r"\\(?:([0-9A-Fa-f]{2})|(.))", re.DOTALL)

# (attribute type, value as written, separator that follows: "," "+" or "")
Ava = tuple[str, str, str]


def _skip_spaces(dn: str, position: int) -> int:
    while position < len(dn) and dn[position] == " ":
        position += 1
    return position


def _value_end(dn: str, position: int) -> int:
    """Where the string value starting at `position` ends (a separator or the end)."""
    while position < len(dn):
        char = dn[position]
        if char == "\\":
            following = dn[position + 1 : position + 2]
            if following and following in _ESCAPABLE:
                position += 2
            elif _HEX_PAIR.match(dn, position + 1):
                position += 3
            else:
                raise ValueError(f"not a valid DN: bad escape at {position}")
        elif char in ",+":
            break
        elif char in _MUST_ESCAPE:
            raise ValueError(f"not a valid DN: {char!r} must be escaped")
        else:
            position += 1
    return position


def _strip_value(dn: str, start: int, end: int) -> str:
    """The value without the spaces around it (an escaped trailing space is kept)."""
    value = dn[start:end]
    while value.endswith(" ") and not _escaped_at(value, len(value) - 1):
        value = value[:-1]
    return value


def _escaped_at(value: str, index: int) -> bool:
    backslashes = 0
    while index - backslashes - 1 >= 0 and value[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def parse_dn(dn: str) -> list[Ava]:
    """The attribute type-and-value pairs of `dn`, values still escaped; ValueError if bad."""
    avas: list[Ava] = []
    position = 0
    while True:
        position = _skip_spaces(dn, position)
        match = _ATTRIBUTE_TYPE.match(dn, position)
        if match is None:
            raise ValueError(f"not a valid DN: no attribute type at {position}")
        position = _skip_spaces(dn, match.end())
        if not dn.startswith("=", position):
            raise ValueError(f"not a valid DN: '=' expected at {position}")
        start = _skip_spaces(dn, position + 1)
        position = _value_end(dn, start)
        value = _strip_value(dn, start, position)
        if not value:
            raise ValueError(f"not a valid DN: empty value of {match.group()}")
        if position == len(dn):
            avas.append((match.group(), value, ""))
            return avas
        avas.append((match.group(), value, dn[position]))
        position += 1


def check_dn(dn: str) -> str:
    """Return `dn` if it is a non-empty RFC 4514 DN, else raise ValueError saying why."""
    if not dn:
        raise ValueError("DN must not be empty")
    if len(dn) > MAX_DN_LENGTH:
        raise ValueError(f"DN longer than {MAX_DN_LENGTH} characters")
    if any(ord(char) < 0x20 for char in dn):
        raise ValueError("DN must not contain control characters")
    parse_dn(dn)
    return dn


def unescape_value(value: str) -> str:
    """A value as a DN writes it (RFC 4514 section 2.4) → the value itself."""
    if "\\" not in value:
        return value
    out = bytearray()
    position = 0
    for match in _VALUE_ESCAPE.finditer(value):
        out += value[position : match.start()].encode()
        hex_pair, char = match.groups()
        out += bytes.fromhex(hex_pair) if hex_pair else char.encode()
        position = match.end()
    out += value[position:].encode()
    return out.decode("utf-8", "replace")


def escape_value(value: str) -> str:
    """A value as it must be written in a DN: special characters, edge spaces and `#`."""
    escaped = "".join(
        "\\00" if char == "\x00" else f"\\{char}" if char in _MUST_ESCAPE else char
        for char in value
    )
    if escaped.startswith(" "):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not _escaped_at(escaped, len(escaped) - 1):
        escaped = escaped[:-1] + "\\ "
    return escaped


def first_rdn_value(dn: str) -> str:
    """'uid=jdoe,ou=people,…' → 'jdoe' (the DN itself when it cannot be parsed)."""
    try:
        avas = parse_dn(dn)
    except ValueError:
        return dn
    return unescape_value(avas[0][1])


def dn_key(dn: str) -> str:
    """A comparison key for DNs that differ only in case, spacing or escaping."""
    return "".join(
        f"{kind.lower()}={escape_value(unescape_value(value).lower())}{separator}"
        for kind, value, separator in parse_dn(dn)
    )


def is_within(dn: str, base_dn: str) -> bool:
    """True when `dn` is `base_dn` or below it."""
    key, base = dn_key(dn), dn_key(base_dn)
    return key == base or key.endswith("," + base)


DistinguishedName = Annotated[
    str,
    # The pattern is a hint for schema-driven generators; check_dn judges and says why.
    Field(max_length=MAX_DN_LENGTH, json_schema_extra={"pattern": "="}),
    AfterValidator(check_dn),
]
