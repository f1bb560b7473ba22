"""Routes of /v1/macct: the machine-account endpoints LINBO hooks call."""

# No `from __future__ import annotations`: Powertools reads these signatures at runtime.

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends

from hostrelay.api.models.jobs import JobOut
from hostrelay.api.models.macct import (
    MacctCaptureRequest,
    MacctRepairRequest,
    MacctRepairResponse,
)
from hostrelay.api.openapi import BEARER_AUTH, BODY_ERRORS, responses
from hostrelay.api.routers import new_router
from hostrelay.api.services import ApiServices
from hostrelay.domain.principal import Principal
from hostrelay.logic.macct import MacctService


def macct_router(services: ApiServices, macct: MacctService) -> Router:
    router = new_router()
    access = services.access

    @router.post(
        "/v1/macct/repair",
        summary="Restore captured machine-account secrets after a LINBO restore",
        description=(
            "Queues one macct.repair job for the computers that have no pending repair on "
            "this host; computers that already have one keep it (like LINBO's worker, a "
            "second request never queues a duplicate). Needs the operator scope, or a "
            "service token allowed macct.repair on this host."
        ),
        tags=["macct"],
        security=BEARER_AUTH,
        responses=responses(
            {201: "A repair job was queued", 200: "Every computer already had a pending repair"},
            403,
            *BODY_ERRORS,
        ),
    )
    def repair(
        body: MacctRepairRequest,
        principal: Annotated[Principal, Depends(access.authenticated)],
    ) -> Response[MacctRepairResponse]:
        outcome = macct.request_repair(
            body.host,
            body.image,
            list(body.computers),
            principal,
            school=body.school,
            dry_run=body.dry_run,
        )
        return Response(
            status_code=(HTTPStatus.CREATED if outcome.created else HTTPStatus.OK).value,
            content_type=content_types.APPLICATION_JSON,
            body=MacctRepairResponse(
                created=JobOut.model_validate(outcome.created) if outcome.created else None,
                reused=[JobOut.model_validate(job) for job in outcome.reused],
                computers=outcome.computers,
            ),
        )

    @router.post(
        "/v1/macct/capture",
        summary="Capture a computer's machine-account secrets for an image",
        description=(
            "Queues a macct.capture job: the relay on the domain controller stores the "
            "secrets for the image on the DC only; they never reach the control plane."
        ),
        tags=["macct"],
        security=BEARER_AUTH,
        responses=responses({201: "The capture job was queued"}, 403, *BODY_ERRORS),
    )
    def capture(
        body: MacctCaptureRequest,
        principal: Annotated[Principal, Depends(access.authenticated)],
    ) -> Response[JobOut]:
        job = macct.request_capture(body.host, body.image, body.computer, principal)
        return Response(
            status_code=HTTPStatus.CREATED.value,
            content_type=content_types.APPLICATION_JSON,
            body=JobOut.model_validate(job),
        )

    return router
