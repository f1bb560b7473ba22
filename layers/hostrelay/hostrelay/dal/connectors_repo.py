"""Connector records: CRUD with optimistic versions, and the scheduler's claim of a due run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.expressions.update import Action

from hostrelay.clock import isoformat, utcnow
from hostrelay.dal.inventory_tables import SCHEDULED, ConnectorRecord
from hostrelay.domain.connectors import Connector, ConnectorKind
from hostrelay.domain.errors import Conflict, NotFound, StaleWrite
from hostrelay.domain.sync_cursor import SyncCursor

_CONDITION_FAILED = "ConditionalCheckFailedException"


def _parse_moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def to_domain(record: ConnectorRecord) -> Connector:
    return Connector(
        id=record.id,
        name=record.name,
        kind=ConnectorKind(record.kind),
        target=record.target,
        settings=record.settings or {},
        schedule=record.schedule,
        enabled=bool(record.enabled),
        next_run_at=_parse_moment(record.next_run_at),
        last_run_at=record.last_run_at,
        last_job_id=record.last_job_id,
        created_by=record.created_by,
        created_at=record.created_at,
        updated_at=record.updated_at,
        version=int(record.version or 0),
    )


def _to_record(connector: Connector) -> ConnectorRecord:
    scheduled = connector.scheduled and connector.next_run_at is not None
    record = ConnectorRecord(
        id=connector.id,
        name=connector.name,
        kind=connector.kind.value,
        target=connector.target,
        settings=connector.settings,
        schedule=connector.schedule,
        enabled=connector.enabled,
        scheduled=SCHEDULED if scheduled else None,
        next_run_at=isoformat(connector.next_run_at) if connector.next_run_at else None,
        last_run_at=connector.last_run_at,
        last_job_id=connector.last_job_id,
        created_by=connector.created_by,
        created_at=connector.created_at,
        updated_at=connector.updated_at,
    )
    if connector.version:
        record.version = connector.version
    return record


class ConnectorRepository:
    def create(self, connector: Connector) -> Connector:
        record = _to_record(connector)
        try:
            record.save(condition=ConnectorRecord.id.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                raise Conflict(f"connector {connector.id} already exists") from exc
            raise
        return to_domain(record)

    def find(self, connector_id: str) -> Connector | None:
        try:
            return to_domain(ConnectorRecord.get(connector_id, consistent_read=True))
        except DoesNotExist:
            return None

    def get(self, connector_id: str) -> Connector:
        found = self.find(connector_id)
        if found is None:
            raise NotFound(f"connector {connector_id} not found")
        return found

    def all(self) -> Iterator[Connector]:
        for record in ConnectorRecord.scan():
            yield to_domain(record)

    def replace(self, connector: Connector) -> Connector:
        """Write `connector` over the stored one if nobody changed it since it was read."""
        record = _to_record(connector)
        try:
            record.save(condition=ConnectorRecord.id.exists())
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                raise StaleWrite(f"connector {connector.id} changed concurrently") from exc
            raise
        return to_domain(record)

    def delete(self, connector_id: str) -> None:
        try:
            ConnectorRecord(id=connector_id).delete(
                condition=ConnectorRecord.id.exists(), add_version_condition=False
            )
        except DeleteError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                raise NotFound(f"connector {connector_id} not found") from exc
            raise

    def due(self, now: datetime) -> Iterator[Connector]:
        """Enabled, scheduled connectors whose next run is at or before `now`, oldest first."""
        for record in ConnectorRecord.due_by_next_run.query(
            SCHEDULED, ConnectorRecord.next_run_at <= isoformat(now)
        ):
            yield to_domain(record)

    def claim_run(
        self, connector_id: str, due: datetime, next_run_at: datetime, job_id: str | None
    ) -> bool:
        """Advance next_run_at from `due` to `next_run_at`; False if someone else already did.

        This conditional write is what makes a scheduled run happen once per period however
        many scheduler invocations see it due at the same time.
        """
        actions: list[Action] = [
            ConnectorRecord.next_run_at.set(isoformat(next_run_at)),
            ConnectorRecord.last_run_at.set(due),
        ]
        if job_id is not None:
            actions.append(ConnectorRecord.last_job_id.set(job_id))
        condition = (ConnectorRecord.next_run_at == isoformat(due)) & (
            ConnectorRecord.scheduled == SCHEDULED
        )
        try:
            ConnectorRecord(id=connector_id).update(
                actions=actions, condition=condition, add_version_condition=False
            )
        except UpdateError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return False
            raise
        return True

    def record_run(self, connector_id: str, job_id: str) -> None:
        """Remember a run started outside the schedule (run now)."""
        try:
            ConnectorRecord(id=connector_id).update(
                actions=[
                    ConnectorRecord.last_job_id.set(job_id),
                    ConnectorRecord.last_run_at.set(utcnow()),
                ],
                condition=ConnectorRecord.id.exists(),
                add_version_condition=False,
            )
        except UpdateError as exc:
            if exc.cause_response_code != _CONDITION_FAILED:
                raise

    def sync_cursor(self, connector_id: str) -> SyncCursor | None:
        """Where the connector's last successful run read up to; None when never or unreadable."""
        try:
            record = ConnectorRecord.get(
                connector_id, consistent_read=True, attributes_to_get=["sync_cursor"]
            )
        except DoesNotExist:
            return None
        if not record.sync_cursor:
            return None
        try:
            return SyncCursor.model_validate(record.sync_cursor)
        except ValueError:
            return None  # an older format: the next run reads everything

    def save_sync_cursor(self, connector_id: str, cursor: SyncCursor) -> None:
        try:
            ConnectorRecord(id=connector_id).update(
                actions=[ConnectorRecord.sync_cursor.set(cursor.model_dump(mode="json"))],
                condition=ConnectorRecord.id.exists(),
                add_version_condition=False,
            )
        except UpdateError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return  # deleted while it ran: nothing to continue from
            raise
