"""`connector.sync`: read a self-hosted source (Authentik, Kubernetes) into the inventory.

A full run reads the whole source (pages of each list); only what changed since the last run
this relay committed is sent, and what the source no longer has is sent as deletes. A
Kubernetes job whose params carry `since` (the cursor the control plane kept from the last
result) reads only the changes after those resourceVersions, deletes included, and falls back
to a full read when the API server no longer has them or this relay has no state to build on.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hostrelay_contract.jobs.sources import ConnectorSyncParams
from hostrelay_relay.directory.batches import BatchCutter, InventoryBatch
from hostrelay_relay.handlers.base import Handler, JobContext, JobError
from hostrelay_relay.settings import SourcesSettings
from hostrelay_relay.source_state import SourceBusy, SourceState, SourceStateStore
from hostrelay_sources.credentials import read_credential_file
from hostrelay_sources.entities import SourceEntity, content_hash
from hostrelay_sources.errors import SourceError
from hostrelay_sources.kubernetes import KubernetesChanges, VersionExpired
from hostrelay_sources.readers import read_kubernetes_changes, read_source
from hostrelay_sources.retry import RetryPolicy

log = logging.getLogger(__name__)


def check_token_destination(sources: SourcesSettings, credential_file: str, url: str) -> None:
    """Refuse (ValueError) a token file outside sources.credential_dir or a URL that is not
    one of sources.origins: a job cannot send a token, or any other file, elsewhere."""
    if not Path(credential_file).is_relative_to(sources.credential_dir):
        raise ValueError(
            f"credential_file must be in this relay's sources.credential_dir"
            f" ({sources.credential_dir})"
        )
    if url.lower() not in sources.origins:
        raise ValueError(f"{url} is not one of this relay's sources.origins")


class ConnectorSyncHandler(Handler[ConnectorSyncParams]):
    type = "connector.sync"
    params_model = ConnectorSyncParams

    def validate(self, raw: dict[str, Any]) -> ConnectorSyncParams:
        """The params, refused before anything is read when the token file is outside
        sources.credential_dir or the URL is not one of sources.origins."""
        params = ConnectorSyncParams.model_validate(raw)
        check_token_destination(
            self.settings.sources, params.credential_file, params.source.base_url
        )
        return params

    def enabled(self) -> str | None:
        if not self.settings.sources.origins:
            return "no sources.origins are configured on this relay"
        return None

    def run(self, params: ConnectorSyncParams, ctx: JobContext) -> dict[str, Any]:
        started = time.monotonic()
        labels = {"connector": params.connector, "kind": params.source.kind}
        store = SourceStateStore(ctx.state_dir)
        fingerprint = hashlib.sha256(
            f"{params.source.kind} {params.source.base_url.lower()}".encode()
        ).hexdigest()

        def should_stop() -> bool:
            ctx.check_cancel_or_timeout()  # raises JobCanceled / JobTimedOut
            return False

        def emit(batch: InventoryBatch) -> None:
            ctx.check_cancel_or_timeout()
            ctx.report_event("inventory", batch.to_event_body(params.connector))

        try:
            with store.locked(params.connector):
                token = read_credential_file(Path(params.credential_file))
                old = store.load(params.connector, fingerprint)
                cutter = BatchCutter(emit)
                sent = Sent(old, SourceState(fingerprint, dict(old.hashes)), cutter)
                mode, entities, versions, api_calls = self._read(params, token, sent, should_stop)
                cutter.flush()
                store.save(params.connector, sent.new)
        except SourceBusy:
            raise JobError(
                "source_busy",
                f"another sync of connector {params.connector!r} is running on this relay",
                result=labels,
                retryable=True,
            ) from None
        except SourceError as error:
            raise JobError(error.code, error.message, result=labels) from None
        except NotImplementedError:
            raise JobError(
                "inventory_unsupported", "this relay cannot publish inventory events", result=labels
            ) from None
        log.info("source sync finished", extra={**labels, "mode": mode, "batches": cutter.batches})
        result: dict[str, Any] = {
            **labels,
            "mode": mode,
            **sent.counts,
            "total": len(entities),
            "by_kind": dict(sorted(Counter(e.kind for e in entities).items())),
            "api_calls": api_calls,
            "batches": cutter.batches,
            "errors": [],
            "duration_s": round(time.monotonic() - started, 3),
        }
        if params.source.kind == "kubernetes":  # a list without a version gives no cursor
            result["resource_versions"] = {name: rv for name, rv in versions.items() if rv}
        return result

    def _read(
        self,
        params: ConnectorSyncParams,
        token: str,
        sent: Sent,
        should_stop: Callable[[], bool],
    ) -> tuple[str, list[SourceEntity], dict[str, str], int]:
        """(mode, entities read, the versions reached, API calls): the changes since
        `params.since` when there are some to build on, else everything."""
        sources = self.settings.sources
        ca_file = str(sources.ca_file) if sources.ca_file else None
        retry = RetryPolicy(max_wait_s=sources.max_wait_s)
        api_calls = 0
        # Changes build on what this relay sent: without that state, read everything.
        if params.since and sent.old.hashes and params.source.kind == "kubernetes":
            since = {str(name): rv for name, rv in params.since.items()}
            try:
                changes, api_calls = read_kubernetes_changes(
                    params.source, token, since, should_stop, ca_file=ca_file, retry=retry
                )
            except VersionExpired as expired:
                api_calls = expired.api_calls
                log.info("source cursor expired", extra={"connector": params.connector})
            else:
                if changes is not None:
                    return "incremental", sent.changes(changes), changes.versions, api_calls
        read = read_source(params.source, token, should_stop, ca_file=ca_file, retry=retry)
        entities = sent.snapshot(read.entities or [])
        return "full", entities, read.positions, api_calls + read.api_calls


class Sent:
    """What this relay sent of a connector (`old`, then `new` as the run goes on): entities
    whose content is unchanged are not sent again, and a delete only for what was sent."""

    def __init__(self, old: SourceState, new: SourceState, cutter: BatchCutter) -> None:
        self.old, self.new, self._cutter = old, new, cutter
        self.counts = Counter({"created": 0, "updated": 0, "unchanged": 0, "deleted": 0})

    def snapshot(self, entities: list[SourceEntity]) -> list[SourceEntity]:
        """A full read: send what changed; whatever was sent before and is not read is gone."""
        self.new.hashes = {}
        for entity in entities:
            self._upsert(entity)
        for gone in sorted(self.old.hashes.keys() - self.new.hashes.keys()):
            self._cutter.delete(gone)
            self.counts["deleted"] += 1
        return entities

    def changes(self, changes: KubernetesChanges) -> list[SourceEntity]:
        """The changes since the last run: send those that changed what is kept, and the
        deletes of objects sent before (one made and deleted in between never was)."""
        for entity in changes.changed:
            self._upsert(entity)
        for gone in sorted(changes.deleted):
            if self.new.hashes.pop(gone, None) is not None:
                self._cutter.delete(gone)
                self.counts["deleted"] += 1
        return changes.changed

    def _upsert(self, entity: SourceEntity) -> None:
        data = entity.serialised()
        digest = self.new.hashes[entity.id] = content_hash(data)
        previous = self.old.hashes.get(entity.id)
        if previous == digest:
            self.counts["unchanged"] += 1
            return
        self.counts["updated" if previous is not None else "created"] += 1
        self._cutter.upsert(entity.to_wire(), len(data))
