"""LDAP server URLs a job or connector may name: ldap:// or ldaps://, a host and a port."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

LDAP_URL_PATTERN = r"^ldaps?://[A-Za-z0-9.\-\[\]:]+(?::\d{1,5})?/?$"
_HOST_NAME = re.compile(r"[A-Za-z0-9.-]{1,253}")


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
    if not _HOST_NAME.fullmatch(host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"URL host {host!r} is not a host name or IP address") from None
    return url


ServerUrl = Annotated[
    str,
    Field(max_length=512, json_schema_extra={"pattern": LDAP_URL_PATTERN}),
    AfterValidator(check_server_url),
]
