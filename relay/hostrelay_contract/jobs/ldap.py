"""`ldap.sync` and `ldap.group_members`: a directory the relay reaches with its own password.

A job names a relay credential, never a password; which servers that credential may be
sent to and whether their certificates are verified is the relay's config alone.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from hostrelay_contract.base import JobResult, StrictParams
from hostrelay_contract.dn import DistinguishedName, dn_key, is_within
from hostrelay_contract.ldap_url import ServerUrl
from hostrelay_contract.names import ConnectorId, CredentialName

MAX_MEMBER_CHANGES = 1000
# Filters are checked when the job runs so a bad one fails as `ldap_filter` with the position.
SearchFilter = Annotated[str, Field(min_length=1, max_length=4096)]


def check_verify_tls(value: bool | None) -> bool | None:
    """A job or connector may ask for TLS verification, never turn it off."""
    if value is False:
        raise ValueError(
            "verify_tls false is not accepted from a job: only the relay config"
            " (ldap.credentials.<name>.verify_tls) can turn TLS verification off"
        )
    return value


class LdapConnectionParams(StrictParams):
    """Which relay credential to bind with, and which of its servers; the password stays in
    relay config, and so do the servers it may be sent to (`url` must be one of them)."""

    url: ServerUrl | None = Field(
        default=None, description="One of the servers the credential is for; unset = its first"
    )
    base_dn: DistinguishedName
    credential: CredentialName = Field(description="A credential in the relay's config")
    start_tls: bool = False
    verify_tls: bool | None = Field(
        default=None,
        description="Only `true` (verify even where the relay's credential does not):"
        " TLS verification can be turned off only in the relay's config",
    )

    @field_validator("verify_tls")
    @classmethod
    def _cannot_weaken_tls(cls, value: bool | None) -> bool | None:
        return check_verify_tls(value)

    @model_validator(mode="after")
    def _start_tls_needs_plain_ldap(self) -> LdapConnectionParams:
        if self.start_tls and self.url is not None and self.url.startswith("ldaps:"):
            raise ValueError("start_tls applies to ldap:// URLs; ldaps:// is already TLS")
        return self


class LdapSyncSettings(LdapConnectionParams):
    """An `ldap` connector's settings: every `ldap.sync` param but the connector itself."""

    user_filter: SearchFilter | None = None
    group_filter: SearchFilter | None = None
    ou_filter: SearchFilter | None = None
    page_size: int = Field(default=500, ge=1, le=5000)
    mode: Literal["auto", "full", "incremental"] = "auto"
    flavor: Literal["ad", "openldap", "auto"] = "auto"
    full_scan_every: int = Field(default=10, ge=1, le=100_000)


class LdapSyncParams(LdapSyncSettings):
    """`ldap.sync`: mirror users, groups and OUs under base_dn into the connector's inventory."""

    connector: ConnectorId


class LdapGroupMembersParams(LdapConnectionParams):
    """`ldap.group_members`: add and remove members of one group below base_dn."""

    connector: ConnectorId | None = Field(
        default=None, description="The connector whose directory this is (for the record)"
    )
    group_dn: DistinguishedName
    add: list[DistinguishedName] = Field(default_factory=list, max_length=MAX_MEMBER_CHANGES)
    remove: list[DistinguishedName] = Field(default_factory=list, max_length=MAX_MEMBER_CHANGES)
    dry_run: bool = False

    @model_validator(mode="after")
    def _changes_are_sane(self) -> LdapGroupMembersParams:
        if not self.add and not self.remove:
            raise ValueError("nothing to do: add and remove are both empty")
        for dn in (self.group_dn, *self.add, *self.remove):
            if not is_within(dn, self.base_dn):
                raise ValueError(f"{dn!r} is not below base_dn {self.base_dn!r}")
        both = {dn_key(dn) for dn in self.add} & {dn_key(dn) for dn in self.remove}
        if both:
            raise ValueError(f"a DN is both added and removed: {sorted(both)[0]!r}")
        if dn_key(self.group_dn) in {dn_key(dn) for dn in self.add}:
            raise ValueError("a group cannot be a member of itself")
        return self


class LdapSyncResult(JobResult):
    connector: str
    mode: Literal["full", "incremental"]
    flavor: str
    created: int
    updated: int
    deleted: int
    unchanged: int
    total: int
    entries_read: int
    ids_scanned: int
    full_scan: bool
    batches: int = Field(description="`inventory` events sent")
    duration_s: float
    watermark: str | None = Field(description="Where the next incremental run starts")


class LdapGroupMembersResult(JobResult):
    """What was (or, on a dry run, would be) changed."""

    group_dn: str
    attribute: str = Field(description="member or uniqueMember, as the group's class needs")
    dry_run: bool
    applied: bool
    add: list[str] = Field(description="Members added (or to add)")
    remove: list[str] = Field(description="Members removed (or to remove)")
    already_members: list[str]
    not_members: list[str]
