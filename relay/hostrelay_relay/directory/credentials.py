"""Looks up the bind credential a job names in the relay's `ldap.credentials` config."""

from __future__ import annotations

from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.settings import LdapCredential, LdapSettings


def find_credential(settings: LdapSettings, name: str) -> LdapCredential:
    credential = settings.credentials.get(name)
    if credential is None:
        raise DirectoryError(
            "ldap_credential",
            f"no credential named {name!r} in this relay's ldap.credentials config",
        )
    return credential
