"""Which LDAP client library carries connections: python-ldap (fast, optional) or ldap3."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING

from hostrelay_relay.directory.errors import DirectoryError

if TYPE_CHECKING:
    from hostrelay_relay.directory.connection import ConnectionSpec, LdapConnection

Opener = Callable[["ConnectionSpec", str], "LdapConnection"]
# client name → (module that must import, module holding `open_connection`, distribution)
_CLIENTS = {
    "python-ldap": ("ldap", "hostrelay_relay.directory.python_ldap_client", "python-ldap"),
    "ldap3": ("ldap3", "hostrelay_relay.directory.ldap3_client", "ldap3"),
}
FAST_PATH_HINT = (
    "install hostrelay-relay[fast-ldap] where a compiler is available, or the distribution's"
    " python3-ldap with a venv made with --system-site-packages"
)


def is_installed(client: str) -> bool:
    return importlib.util.find_spec(_CLIENTS[client][0]) is not None


def chosen_client(setting: str) -> str:
    """The client `ldap.client` names; for "auto", python-ldap when it is installed."""
    if setting == "auto":
        return "python-ldap" if is_installed("python-ldap") else "ldap3"
    if setting not in _CLIENTS:
        raise DirectoryError("ldap_client", f"unknown LDAP client {setting!r}")
    return setting


def client_opener(setting: str) -> Opener:
    client = chosen_client(setting)
    if not is_installed(client):
        raise DirectoryError(
            "ldap_client",
            f"ldap.client is {client!r} but that library is not installed; {FAST_PATH_HINT}"
            if client == "python-ldap"
            else f"ldap.client is {client!r} but that library is not installed",
        )
    module = importlib.import_module(_CLIENTS[client][1])
    opener: Opener = module.open_connection
    return opener


def describe_client(setting: str) -> tuple[bool, str]:
    """(usable, what `hostrelay-relay doctor` says) for the `ldap.client` setting."""
    client = chosen_client(setting)
    if not is_installed(client):
        return False, f"ldap.client = {setting!r} needs {client}, which is not installed"
    try:
        version = metadata.version(_CLIENTS[client][2])
    except metadata.PackageNotFoundError:
        version = "(version unknown)"
    if client == "python-ldap":
        return True, f"python-ldap {version} (fast path; ldap.client = {setting!r})"
    if setting == "auto":
        return True, f"ldap3 {version} (pure Python; for the fast path, {FAST_PATH_HINT})"
    return True, f"ldap3 {version} (pure Python; ldap.client = {setting!r})"
