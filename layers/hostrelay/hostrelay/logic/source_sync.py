"""One handler for every SaaS/cloud connector: a full read applied as a snapshot, or, for a
source with a change feed, only what changed since the last run.

A source brings how to connect (its settings → a client that counts its API calls) and how to
read (client → entities; optionally, a position → the changes since); this handler owns the
rest: params, the connector lookup, full or incremental (domain.sync_cursor), errors as run
errors, the snapshot (what a full run no longer sees is deleted), the cursor, and the result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from hostrelay.clock import utcnow
from hostrelay.dal.connectors_repo import ConnectorRepository
from hostrelay.domain.connectors import Connector, ConnectorKind
from hostrelay.domain.inventory import (
    ApplyReport,
    EntityUpsert,
    InventoryChanges,
    InventoryEntity,
    SourceReadError,
)
from hostrelay.domain.jobs import Job, JobState
from hostrelay.domain.sync_cursor import (
    CursorExpired,
    IncrementalSchedule,
    next_cursor,
    run_is_full,
    settings_fingerprint,
)
from hostrelay.logic.cloud_jobs import CANCELED, RunEnd, failed
from hostrelay.logic.inventory import InventoryService
from hostrelay.observability import logger
from hostrelay_contract.jobs.cloud import SourceSyncParams


class SourceClient(Protocol):
    @property
    def calls(self) -> int: ...


SettingsT = TypeVar("SettingsT", bound=BaseModel)
ClientT = TypeVar("ClientT", bound=SourceClient)
# The connector's stored, live entities among some ids (what an incremental read builds on).
StoredEntities = Callable[[Iterable[str]], dict[str, InventoryEntity]]


@dataclass
class ChangeRead:
    """What changed since a position, and the position the next run starts from."""

    upserts: list[EntityUpsert]
    deletes: list[str]
    position: dict[str, str]


@dataclass(frozen=True)
class SyncOutcome:
    """What one run read, and what the inventory did with it."""

    mode: Literal["full", "incremental"]
    read: list[EntityUpsert]
    report: ApplyReport


@dataclass(frozen=True)
class ChangeFeed(Generic[SettingsT, ClientT]):
    """How a source reads only what changed since a stored position."""

    # The position a full read that started at the given moment leaves the next run at.
    position_after_full: Callable[[ClientT, datetime], dict[str, str]]
    # The changes since `position`, for a run that started at the given moment (None when
    # should_stop() said to stop); raises CursorExpired when the source no longer has them.
    read_changes: Callable[
        [ClientT, SettingsT, dict[str, str], datetime, StoredEntities, Callable[[], bool]],
        ChangeRead | None,
    ]


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
    # Sources that can read their changes since the last run; their settings carry an
    # IncrementalSchedule (how often a run reads everything anyway).
    changes: ChangeFeed[SettingsT, ClientT] | None = None

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
            outcome = self._read_and_apply(connector, settings, client, started, should_stop)
        except SourceReadError as exc:
            calls = client.calls if client is not None else 0
            logger.warning(
                "source sync failed",
                extra={"job_id": job.id, "connector": connector.id, "code": exc.code},
            )
            return failed(exc.code, exc.message, {"connector": connector.id, "api_calls": calls})
        if outcome is None:
            return CANCELED
        counts = outcome.report.counts()
        result: dict[str, Any] = {
            "connector": connector.id,
            "mode": outcome.mode,
            **counts,
            "total": len(outcome.read),
            "by_kind": by_kind(outcome.read),
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
                "mode": outcome.mode,
                "counts": counts,
            },
        )
        return RunEnd(JobState.SUCCEEDED, result)

    def _read_and_apply(
        self,
        connector: Connector,
        settings: SettingsT,
        client: ClientT,
        started: datetime,
        should_stop: Callable[[], bool],
    ) -> SyncOutcome | None:
        """A full or an incremental run, whichever is due; None when stopped. The cursor is
        stored only after the inventory took the run's changes."""
        feed = self._spec.changes
        if feed is None:
            return self._full(connector, settings, client, started, should_stop)
        schedule = settings if isinstance(settings, IncrementalSchedule) else IncrementalSchedule()
        fingerprint = settings_fingerprint(settings)
        cursor = self._connectors.sync_cursor(connector.id)
        changes: ChangeRead | None = None
        if cursor is not None and not run_is_full(cursor, fingerprint, schedule, started):
            try:
                changes = feed.read_changes(
                    client,
                    settings,
                    cursor.position,
                    started,
                    lambda ids: self._inventory.live(connector.id, ids),
                    should_stop,
                )
            except CursorExpired:
                logger.info("source cursor expired", extra={"connector": connector.id})
            else:
                if changes is None:
                    return None
        if changes is not None:
            report = self._inventory.apply_all(
                connector.id,
                InventoryChanges(upserts=changes.upserts, deletes=changes.deletes),
                started,
            )
            outcome = SyncOutcome("incremental", changes.upserts, report)
            position = changes.position
        else:
            full = self._full(connector, settings, client, started, should_stop)
            if full is None:
                return None
            outcome, position = full, feed.position_after_full(client, started)
        self._connectors.save_sync_cursor(
            connector.id,
            next_cursor(
                cursor, fingerprint, position, full=outcome.mode == "full", started=started
            ),
        )
        return outcome

    def _full(
        self,
        connector: Connector,
        settings: SettingsT,
        client: ClientT,
        started: datetime,
        should_stop: Callable[[], bool],
    ) -> SyncOutcome | None:
        entities = self._spec.read(client, settings, should_stop)
        if entities is None:
            return None
        report = self._inventory.replace_all(
            connector.id, entities, started, complete_kinds=self._spec.complete_kinds(settings)
        )
        return SyncOutcome("full", entities, report)


def by_kind(entities: Iterable[EntityUpsert]) -> dict[str, int]:
    return dict(sorted(Counter(e.kind for e in entities).items()))
