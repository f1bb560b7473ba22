"""Job params of the directory handlers: checked strictly before a job is accepted."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from hostrelay_relay.directory.names import (
    check_connector_id,
    check_credential_name,
    check_dn,
    check_server_url,
    dn_key,
    is_within,
)
from hostrelay_relay.handlers.base import StrictParams

DistinguishedName = Annotated[str, Field(max_length=2048), AfterValidator(check_dn)]
ConnectorId = Annotated[str, AfterValidator(check_connector_id)]
CredentialName = Annotated[str, AfterValidator(check_credential_name)]
ServerUrl = Annotated[str, Field(max_length=512), AfterValidator(check_server_url)]
# Filters are checked when the job runs so a bad one fails as `ldap_filter` with the position.
SearchFilter = Annotated[str, Field(min_length=1, max_length=4096)]


class LdapConnectionParams(StrictParams):
    """Which relay credential to bind with, and which of its servers; the password stays in
    relay config, and so do the servers it may be sent to (`url` must be one of them)."""

    url: ServerUrl | None = None
    base_dn: DistinguishedName
    credential: CredentialName
    start_tls: bool = False
    # Only `true` (verify even where the relay config does not) is accepted: a job cannot
    # weaken TLS; `ldap.credentials.<name>.verify_tls` in the relay config decides.
    verify_tls: bool | None = None

    @field_validator("verify_tls")
    @classmethod
    def _cannot_weaken_tls(cls, value: bool | None) -> bool | None:
        if value is False:
            raise ValueError(
                "verify_tls false is not accepted from a job: only the relay config"
                " (ldap.credentials.<name>.verify_tls) can turn TLS verification off"
            )
        return value

    @model_validator(mode="after")
    def _start_tls_needs_plain_ldap(self) -> LdapConnectionParams:
        if self.start_tls and self.url is not None and self.url.startswith("ldaps:"):
            raise ValueError("start_tls applies to ldap:// URLs; ldaps:// is already TLS")
        return self


class LdapSyncParams(LdapConnectionParams):
    """`ldap.sync`: mirror users, groups and OUs under base_dn into the connector's inventory."""

    connector: ConnectorId
    user_filter: SearchFilter | None = None
    group_filter: SearchFilter | None = None
    ou_filter: SearchFilter | None = None
    page_size: int = Field(default=500, ge=1, le=5000)
    mode: Literal["auto", "full", "incremental"] = "auto"
    flavor: Literal["ad", "openldap", "auto"] = "auto"
    full_scan_every: int = Field(default=10, ge=1, le=100_000)


class LdapGroupMembersParams(LdapConnectionParams):
    """`ldap.group_members`: add and remove members of one group below base_dn."""

    connector: ConnectorId | None = None
    group_dn: DistinguishedName
    add: list[DistinguishedName] = Field(default_factory=list, max_length=1000)
    remove: list[DistinguishedName] = Field(default_factory=list, max_length=1000)
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
