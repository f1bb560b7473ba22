"""`connector.group_members`: add or remove users of an Authentik group a relay reaches
(a dry run, the default, only shows the diff)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hostrelay_contract.jobs.sources import RelayGroupMembersParams
from hostrelay_relay.handlers.base import Handler, JobContext, JobError
from hostrelay_relay.handlers.connector_sync import check_token_destination
from hostrelay_sources.authentik import AuthentikApi, change_group_members
from hostrelay_sources.credentials import read_credential_file
from hostrelay_sources.errors import Rejected, SourceError
from hostrelay_sources.retry import RetryPolicy


class ConnectorGroupMembersHandler(Handler[RelayGroupMembersParams]):
    type = "connector.group_members"
    params_model = RelayGroupMembersParams
    repeatable = True  # reads only

    def validate(self, raw: dict[str, Any]) -> RelayGroupMembersParams:
        params = RelayGroupMembersParams.model_validate(raw)
        check_token_destination(
            self.settings.sources, params.credential_file, params.source.base_url
        )
        return params

    def enabled(self) -> str | None:
        if not self.settings.sources.allow_write_back:
            return "sources.allow_write_back is false on this relay"
        return None

    def run(self, params: RelayGroupMembersParams, ctx: JobContext) -> dict[str, Any]:
        ctx.check_cancel_or_timeout()
        sources = self.settings.sources
        labels = {"connector": params.connector, "kind": "authentik"}
        try:
            api = AuthentikApi.connect(
                params.source.base_url,
                read_credential_file(Path(params.credential_file)),
                page_size=params.source.page_size,
                ca_file=str(sources.ca_file) if sources.ca_file else None,
                retry=RetryPolicy(max_wait_s=sources.max_wait_s),
            )
            try:
                change = change_group_members(api, params)
            finally:
                api.close()
        except Rejected as error:
            if error.status == 404:
                raise JobError(
                    "group_not_found", f"authentik group {params.group} not found", result=labels
                ) from None
            raise JobError(error.code, error.message, result=labels) from None
        except SourceError as error:
            raise JobError(error.code, error.message, result=labels) from None
        if change.failures:
            raise JobError(
                "write_back_partial", f"{change.failures} change(s) failed", result=change.result
            )
        return change.result
