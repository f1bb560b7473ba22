"""Routes of /v1/audit: who did what (admin)."""

# No `from __future__ import annotations`: Powertools reads these signatures at runtime.

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Query

from hostrelay.api.models import AuditEventOut, AuditPage
from hostrelay.api.openapi import BEARER_AUTH, responses
from hostrelay.api.routers import new_router
from hostrelay.api.services import ApiServices
from hostrelay.domain.principal import Principal
from hostrelay.logic.audit import AuditTrail


def audit_router(services: ApiServices) -> Router:
    router = new_router()
    access, trail = services.access, AuditTrail(services.audit)

    @router.get(
        "/v1/audit",
        summary="Read the audit trail",
        description=(
            "Token, enrollment, revocation and job actions, newest first. The default range is "
            "the last day; a range may span 93 days. To page back, pass the oldest `at` seen "
            "as `until`."
        ),
        tags=["audit"],
        security=BEARER_AUTH,
        responses=responses({200: "Audit events, newest first"}, 403),
    )
    def read_audit(
        *,
        principal: Annotated[Principal, Depends(access.admin)],
        since: Annotated[datetime | None, Query(description="Oldest time (ISO 8601)")] = None,
        until: Annotated[datetime | None, Query(description="Newest time (ISO 8601)")] = None,
        action: Annotated[
            str | None,
            Query(pattern=r"^[a-z_]+\.[a-z_]+$", description="Only this action, e.g. host.revoke"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="Most events to return")] = 100,
    ) -> AuditPage:
        records = trail.read(principal, since=since, until=until, action=action, limit=limit)
        return AuditPage(events=[AuditEventOut.from_record(record) for record in records])

    return router
