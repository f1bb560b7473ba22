"""`ldap.sync`: mirror a directory's users, groups and OUs into the connector's inventory."""

from __future__ import annotations

import time
from typing import Any

from hostrelay_contract.jobs.ldap import LdapSyncParams
from hostrelay_relay.directory.batches import InventoryBatch
from hostrelay_relay.directory.credentials import check_job_endpoint, find_credential
from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.directory.state import SyncStateStore
from hostrelay_relay.directory.sync import sync_directory
from hostrelay_relay.handlers.base import Handler, JobContext, JobError

PROGRESS_EVERY_S = 1.0


class LdapSyncHandler(Handler[LdapSyncParams]):
    type = "ldap.sync"
    params_model = LdapSyncParams

    def validate(self, raw: dict[str, Any]) -> LdapSyncParams:
        """The params, refused (before anything is sent) when they would take the named
        credential to a server its config does not list, or weaken its TLS."""
        params = LdapSyncParams.model_validate(raw)
        check_job_endpoint(self.settings.ldap, params)
        return params

    def enabled(self) -> str | None:
        if not self.settings.ldap.credentials:
            return "no ldap.credentials are configured on this relay"
        return None

    def run(self, params: LdapSyncParams, ctx: JobContext) -> dict[str, Any]:
        last_progress = 0.0

        def progress(done: int, total: int | None, message: str) -> None:
            nonlocal last_progress
            now = time.monotonic()
            if now - last_progress >= PROGRESS_EVERY_S:
                last_progress = now
                ctx.progress(done, total, message)

        def emit(batch: InventoryBatch) -> None:
            ctx.report_event("inventory", batch.to_event_body(params.connector))

        try:
            credential = find_credential(self.settings.ldap, params.credential)
            summary = sync_directory(
                params,
                credential,
                SyncStateStore(ctx.state_dir),
                emit,
                settings=self.settings.ldap,
                checkpoint=ctx.check_cancel_or_timeout,
                progress=progress,
            )
        except DirectoryError as error:
            raise JobError(error.code, error.message, retryable=error.retryable) from None
        except NotImplementedError:
            raise JobError(
                "inventory_unsupported", "this relay cannot publish inventory events"
            ) from None
        return summary.to_result()
