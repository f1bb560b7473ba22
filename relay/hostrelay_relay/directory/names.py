"""Distinguished names, connector ids and server URLs: strict checks and comparison keys."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import escape_rdn, parse_dn

MAX_DN_LENGTH = 2048
CONNECTOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def check_dn(dn: str) -> str:
    """Return `dn` if it is a non-empty RFC 4514 DN, else raise ValueError saying why."""
    if not dn:
        raise ValueError("DN must not be empty")
    if len(dn) > MAX_DN_LENGTH:
        raise ValueError(f"DN longer than {MAX_DN_LENGTH} characters")
    if any(ord(char) < 0x20 for char in dn):
        raise ValueError("DN must not contain control characters")
    if not _parse_dn(dn):
        raise ValueError(f"not a valid DN: {dn!r}")
    return dn


# (attribute type, value as written, separator that follows: "," "+" or "")
_Ava = tuple[str, str, str]
_VALUE_ESCAPE = re.compile(r"\\(?:([0-9A-Fa-f]{2})|(.))", re.DOTALL)


def _parse_dn(dn: str) -> list[_Ava]:
    try:
        avas: list[_Ava] = parse_dn(dn, escape=False, strip=True)
    except LDAPInvalidDnError:
        raise ValueError(f"not a valid DN: {dn!r}") from None
    return avas


def _unescape(value: str) -> str:
    """A value as a DN writes it (RFC 4514 section 2.4) → the value itself."""
    if "\\" not in value:
        return value
    # ldap3 checks the escapes but keeps them; `\c3\bc` is one UTF-8 character.
    out = bytearray()
    position = 0
    for match in _VALUE_ESCAPE.finditer(value):
        out += value[position : match.start()].encode()
        hex_pair, char = match.groups()
        out += bytes.fromhex(hex_pair) if hex_pair else char.encode()
        position = match.end()
    out += value[position:].encode()
    return out.decode("utf-8", "replace")


def first_rdn_value(dn: str) -> str:
    """'uid=jdoe,ou=people,…' → 'jdoe' (the DN itself when it cannot be parsed)."""
    try:
        avas = _parse_dn(dn)
    except ValueError:
        return dn
    return _unescape(avas[0][1])


def dn_key(dn: str) -> str:
    """A comparison key for DNs that differ only in case, spacing or escaping."""
    parts = []
    for kind, value, separator in _parse_dn(dn):
        parts.append(f"{kind.lower()}={escape_rdn(_unescape(value).lower())}{separator}")
    return "".join(parts)


def is_within(dn: str, base_dn: str) -> bool:
    """True when `dn` is `base_dn` or below it."""
    key, base = dn_key(dn), dn_key(base_dn)
    return key == base or key.endswith("," + base)


def check_connector_id(value: str) -> str:
    if CONNECTOR_ID.fullmatch(value) is None:
        raise ValueError("connector id must be 1-63 letters, digits, '-' or '_'")
    return value


def check_credential_name(value: str) -> str:
    if CREDENTIAL_NAME.fullmatch(value) is None:
        raise ValueError("credential name must be 1-63 letters, digits, '.', '-' or '_'")
    return value


def check_server_url(url: str) -> str:
    """Accept only ldap://host[:port] or ldaps://host[:port] (optionally with a trailing '/')."""
    parts = urlsplit(url)
    if parts.scheme not in ("ldap", "ldaps"):
        raise ValueError("URL scheme must be ldap or ldaps")
    if parts.username or parts.password:
        raise ValueError("URL must not carry credentials; name a relay credential instead")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("URL must be scheme://host[:port] with nothing after it")
    if not parts.hostname:
        raise ValueError("URL must name a host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("URL port must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("URL port must be a number from 1 to 65535")
    host = parts.hostname
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"URL host {host!r} is not a host name or IP address") from None
    return url


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
