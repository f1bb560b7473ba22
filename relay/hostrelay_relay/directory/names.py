"""Distinguished names, connector ids and server URLs: strict checks and comparison keys."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import ldap.dn

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


def _parse_dn(dn: str) -> list[list[tuple[str, str, int]]]:
    try:
        rdns: list[list[tuple[str, str, int]]] = ldap.dn.str2dn(dn, ldap.DN_FORMAT_LDAPV3)
    except ldap.DECODING_ERROR:
        raise ValueError(f"not a valid DN: {dn!r}") from None
    return rdns


def first_rdn_value(dn: str) -> str:
    """'uid=jdoe,ou=people,…' → 'jdoe' (the DN itself when it cannot be parsed)."""
    try:
        rdns = _parse_dn(dn)
    except ValueError:
        return dn
    return rdns[0][0][1] if rdns else dn


def dn_key(dn: str) -> str:
    """A comparison key for DNs that differ only in case, spacing or escaping."""
    rdns = _parse_dn(dn)
    lowered = [[(kind.lower(), value.lower(), flags) for kind, value, flags in rdn] for rdn in rdns]
    key: str = ldap.dn.dn2str(lowered)
    return key


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
