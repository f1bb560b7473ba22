"""`ldap.group_members`: add or remove members of a directory group (or preview with dry_run)."""

from __future__ import annotations

from typing import Any

from hostrelay_contract.jobs.ldap import LdapGroupMembersParams
from hostrelay_relay.directory.credentials import check_job_endpoint, find_credential
from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.directory.group_members import change_group_members
from hostrelay_relay.handlers.base import Handler, JobContext, JobError


class LdapGroupMembersHandler(Handler[LdapGroupMembersParams]):
    type = "ldap.group_members"
    params_model = LdapGroupMembersParams
    repeatable = True  # reads only

    def validate(self, raw: dict[str, Any]) -> LdapGroupMembersParams:
        """The params, refused (before anything is sent) when they would take the named
        credential to a server its config does not list, or weaken its TLS."""
        params = LdapGroupMembersParams.model_validate(raw)
        check_job_endpoint(self.settings.ldap, params)
        return params

    def enabled(self) -> str | None:
        if not self.settings.ldap.credentials:
            return "no ldap.credentials are configured on this relay"
        return None

    def run(self, params: LdapGroupMembersParams, ctx: JobContext) -> dict[str, Any]:
        ctx.check_cancel_or_timeout()
        try:
            credential = find_credential(self.settings.ldap, params.credential)
            change = change_group_members(params, credential, self.settings.ldap)
        except DirectoryError as error:
            raise JobError(error.code, error.message, retryable=error.retryable) from None
        return change.to_result()
