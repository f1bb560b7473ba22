"""Routes of /v1/audit: who did what (admin)."""

# No `from __future__ import annotations`: Powertools reads these signatures at runtime.

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import AfterValidator

from hostrelay.api.models.audit import AuditEventOut, AuditPage
from hostrelay.api.openapi import BEARER_AUTH, responses
from hostrelay.api.routers import new_router
from hostrelay.api.services import ApiServices
from hostrelay.domain.principal import Principal
from hostrelay.logic.audit import MAX_WINDOW
from hostrelay_contract.text_patterns import TextPattern

# The trail's ids are ULIDs (from the Unix epoch); the end keeps a day's margin so that a
# range computed from a moment never leaves the calendar Python can count in.
AUDIT_ACTION_PATTERN = r"^[a-z_]+\.[a-z_]+$"
AUDIT_ACTION = TextPattern(
    AUDIT_ACTION_PATTERN, "an action: two words of a-z and '_' joined by '.', e.g. host.revoke"
)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _within_trail(moment: datetime) -> datetime:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not EARLIEST <= aware <= LATEST:
        raise ValueError("must be between 1970-01-01 and 9999-12-30 (UTC)")
    return aware


AuditMoment = Annotated[datetime, AfterValidator(_within_trail)]


def audit_router(services: ApiServices) -> Router:
    router = new_router()
    access, trail = services.access, services.audit

    @router.get(
        "/v1/audit",
        summary="Read the audit trail",
        description=(
            "Token, enrollment, revocation and job actions, newest first. The default range is "
            f"the day before `until` (default: now); a range may span {MAX_WINDOW.days} days, "
            "`since` must not be after `until`, and both lie between 1970-01-01 and 9999-12-30 "
            "(ISO 8601; UTC when no offset is given). To page back, pass the oldest `at` seen "
            "as `until`."
        ),
        tags=["audit"],
        security=BEARER_AUTH,
        responses=responses({200: "Audit events, newest first"}, 403),
    )
    def read_audit(
        *,
        principal: Annotated[Principal, Depends(access.admin)],
        since: Annotated[AuditMoment | None, Query(description="Oldest time (ISO 8601)")] = None,
        until: Annotated[AuditMoment | None, Query(description="Newest time (ISO 8601)")] = None,
        action: Annotated[
            Annotated[str, AUDIT_ACTION] | None,
            Query(description="Only this action, e.g. host.revoke"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="Most events to return")] = 100,
    ) -> AuditPage:
        events = trail.read(principal, since=since, until=until, action=action, limit=limit)
        return AuditPage(events=[AuditEventOut.model_validate(event) for event in events])

    return router
