"""One handler for every SaaS/cloud connector whose run is a full read applied as a snapshot.

A source brings how to connect (its settings → a client that counts its API calls) and how to
read (client → entities); this handler owns the rest: params, the connector lookup, errors as
run errors, the snapshot (what a complete run no longer sees is deleted), and the result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from hostrelay.clock import utcnow
from hostrelay.dal.connectors_repo import ConnectorRepository
from hostrelay.domain.connectors import ConnectorKind
from hostrelay.domain.inventory import EntityUpsert, SourceReadError
from hostrelay.domain.jobs import Job, JobState
from hostrelay.logic.cloud_jobs import CANCELED, RunEnd, failed
from hostrelay.logic.inventory import InventoryService
from hostrelay.observability import logger
from hostrelay_contract.jobs.cloud import SourceSyncParams


class SourceClient(Protocol):
    @property
    def calls(self) -> int: ...


SettingsT = TypeVar("SettingsT", bound=BaseModel)
ClientT = TypeVar("ClientT", bound=SourceClient)


@dataclass(frozen=True)
class SourceSpec(Generic[SettingsT, ClientT]):
    """What one source brings: its kind, settings model, entity kinds and how to read it."""

    kind: ConnectorKind
    settings: type[SettingsT]
    entity_kinds: frozenset[str]
    # Entities read, or None when should_stop() said to stop.
    read: Callable[[ClientT, SettingsT, Callable[[], bool]], list[EntityUpsert] | None]
    # The kinds one run reads in full (what it no longer sees of them is deleted); default
    # entity_kinds. A connector asking for fewer resource types leaves the others alone.
    read_kinds: Callable[[SettingsT], frozenset[str]] | None = None

    def complete_kinds(self, settings: SettingsT) -> frozenset[str]:
        return self.entity_kinds if self.read_kinds is None else self.read_kinds(settings)


class SourceSync(Generic[SettingsT, ClientT]):
    """The `<kind>.sync` handler of the cloud-jobs runner for one source."""

    def __init__(
        self,
        spec: SourceSpec[SettingsT, ClientT],
        connectors: ConnectorRepository,
        inventory: InventoryService,
        connect: Callable[[SettingsT], ClientT],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._spec = spec
        self._connectors = connectors
        self._inventory = inventory
        self._connect = connect
        self._clock = clock
        self.kind = spec.kind.value

    def run(self, job: Job, should_stop: Callable[[], bool]) -> RunEnd:
        started = self._clock()
        try:
            params = SourceSyncParams.model_validate(job.params)
        except ValidationError:
            return failed("invalid_params", "bad params")
        connector = self._connectors.find(params.connector)
        if connector is None or connector.kind is not self._spec.kind:
            return failed("connector_missing", f"no {self.kind} connector {params.connector}")
        settings = self._spec.settings.model_validate(connector.settings)
        client: ClientT | None = None
        try:
            client = self._connect(settings)
            entities = self._spec.read(client, settings, should_stop)
        except SourceReadError as exc:
            calls = client.calls if client is not None else 0
            logger.warning(
                "source sync failed",
                extra={"job_id": job.id, "connector": connector.id, "code": exc.code},
            )
            return failed(exc.code, exc.message, {"connector": connector.id, "api_calls": calls})
        if entities is None:
            return CANCELED
        report = self._inventory.replace_all(
            connector.id, entities, started, complete_kinds=self._spec.complete_kinds(settings)
        )
        result: dict[str, Any] = {
            "connector": connector.id,
            **report.counts(),
            "total": len(entities),
            "by_kind": by_kind(entities),
            "api_calls": client.calls,
            "errors": [],
            "duration_s": round((self._clock() - started).total_seconds(), 3),
        }
        logger.info(
            "source sync finished",
            extra={
                "job_id": job.id,
                "connector": connector.id,
                "kind": self.kind,
                "counts": report.counts(),
            },
        )
        return RunEnd(JobState.SUCCEEDED, result)


def by_kind(entities: Iterable[EntityUpsert]) -> dict[str, int]:
    return dict(sorted(Counter(e.kind for e in entities).items()))
