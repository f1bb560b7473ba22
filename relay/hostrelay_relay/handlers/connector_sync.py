"""`connector.sync`: read a self-hosted source (Authentik, Kubernetes) into the inventory.

Every run reads the whole source (pages of each list); only what changed since the last run
this relay committed is sent, and what the source no longer has is sent as deletes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hostrelay_contract.jobs.sources import ConnectorSyncParams
from hostrelay_relay.directory.batches import BatchCutter, InventoryBatch
from hostrelay_relay.handlers.base import Handler, JobContext, JobError
from hostrelay_relay.settings import SourcesSettings
from hostrelay_relay.source_state import SourceBusy, SourceState, SourceStateStore
from hostrelay_sources.credentials import read_credential_file
from hostrelay_sources.entities import content_hash
from hostrelay_sources.errors import SourceError
from hostrelay_sources.https import RetryPolicy
from hostrelay_sources.readers import read_source

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

        sources = self.settings.sources
        try:
            with store.locked(params.connector):
                token = read_credential_file(Path(params.credential_file))
                read = read_source(
                    params.source,
                    token,
                    should_stop,
                    ca_file=str(sources.ca_file) if sources.ca_file else None,
                    retry=RetryPolicy(max_wait_s=sources.max_wait_s),
                )
                entities = read.entities or []
                old = store.load(params.connector, fingerprint)
                new = SourceState(fingerprint)
                cutter = BatchCutter(emit)
                counts = Counter({"created": 0, "updated": 0, "unchanged": 0, "deleted": 0})
                for entity in entities:
                    data = entity.serialised()
                    digest = new.hashes[entity.id] = content_hash(data)
                    previous = old.hashes.get(entity.id)
                    if previous == digest:
                        counts["unchanged"] += 1
                        continue
                    counts["updated" if previous is not None else "created"] += 1
                    cutter.upsert(entity.to_wire(), len(data))
                for gone in sorted(old.hashes.keys() - new.hashes.keys()):
                    cutter.delete(gone)
                    counts["deleted"] += 1
                cutter.flush()
                store.save(params.connector, new)
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
        log.info("source sync finished", extra={**labels, "batches": cutter.batches})
        return {
            **labels,
            "mode": "full",
            **counts,
            "total": len(entities),
            "by_kind": dict(sorted(Counter(e.kind for e in entities).items())),
            "api_calls": read.api_calls,
            "batches": cutter.batches,
            "errors": [],
            "duration_s": round(time.monotonic() - started, 3),
        }
