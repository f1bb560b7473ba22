"""The audit trail: append-only records of tokens, enrollments, revocations and jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ulid import ULID

from hostrelay.clock import utcnow
from hostrelay.dal.security_tables import AuditRecord
from hostrelay.domain.audit import AuditEvent

RETENTION = timedelta(days=400)
# ULIDs count milliseconds from the Unix epoch: nothing can have been recorded before it.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AuditRepository:
    def __init__(self, enabled: bool = True) -> None:
        self._enabled = enabled

    def append(
        self, actor: str, action: str, target: str, details: dict[str, Any] | None = None
    ) -> None:
        entry = self.entry(actor, action, target, details)
        if entry is not None:
            entry.save()

    def entry(
        self, actor: str, action: str, target: str, details: dict[str, Any] | None = None
    ) -> AuditRecord | None:
        """The record `append` would write, for a caller that writes it in its own
        transaction (a job and its audit line together); None when auditing is off."""
        if not self._enabled:
            return None
        now = utcnow()
        return AuditRecord(
            day=now.strftime("%Y-%m-%d"),
            event_id=str(ULID.from_datetime(now)),
            at=now,
            actor=actor,
            action=action,
            target=target,
            details=details,
            expires_at=now + RETENTION,
        )

    def read(
        self, since: datetime, until: datetime, limit: int, action: str | None = None
    ) -> list[AuditEvent]:
        """Newest first, day by day back from `until` to `since` (both inclusive)."""
        since, until = max(since, EPOCH).astimezone(UTC), until.astimezone(UTC)
        if until < since:
            return []
        low, high = _ulid_bound(since, "0"), _ulid_bound(until, "Z")
        condition = AuditRecord.action == action if action else None
        events: list[AuditEvent] = []
        day = until
        while day.date() >= since.date() and len(events) < limit:
            for record in AuditRecord.query(
                day.strftime("%Y-%m-%d"),
                AuditRecord.event_id.between(low, high),
                filter_condition=condition,
                scan_index_forward=False,
            ):
                events.append(AuditEvent.model_validate(record))
                if len(events) >= limit:
                    break
            day -= timedelta(days=1)
        return events


def _ulid_bound(moment: datetime, fill: str) -> str:
    """The smallest ("0") or largest ("Z") ULID of the millisecond `moment` falls in."""
    return str(ULID.from_datetime(moment))[:10] + fill * 16
