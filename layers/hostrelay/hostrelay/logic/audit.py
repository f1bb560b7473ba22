"""Reading the audit trail (admins only), newest first, within a bounded time range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hostrelay.clock import utcnow
from hostrelay.dal.audit_repo import AuditRepository
from hostrelay.domain.audit import AuditEvent
from hostrelay.domain.errors import InvalidRequest
from hostrelay.domain.principal import Principal, Scope

DEFAULT_WINDOW = timedelta(days=1)
MAX_WINDOW = timedelta(days=93)  # one query per day of the range: keep a request bounded


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AuditTrail:
    def __init__(self, repo: AuditRepository) -> None:
        self._repo = repo

    def read(
        self,
        principal: Principal,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        principal.require(Scope.ADMIN)
        end = _aware(until) if until else utcnow()
        start = _aware(since) if since else end - DEFAULT_WINDOW
        if start > end:
            raise InvalidRequest("since must not be after until", details=[{"field": "since"}])
        if end - start > MAX_WINDOW:
            raise InvalidRequest(
                f"the range may span at most {MAX_WINDOW.days} days; page with until=",
                details=[{"field": "since"}],
            )
        return self._repo.read(start, end, limit, action=action)
