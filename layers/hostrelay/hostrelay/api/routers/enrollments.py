"""Routes of enrollment: offer a one-shot command (admin), serve its script, sign the CSR."""

# No `from __future__ import annotations`: Powertools reads these signatures at runtime.

import re
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler import Request, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path

from hostrelay.api.models.enrollments import (
    ENROLLMENT_TOKEN,
    EnrollCsrRequest,
    EnrollmentBundleOut,
    EnrollmentCreated,
    EnrollmentCreateRequest,
)
from hostrelay.api.openapi import BEARER_AUTH, BODY_ERRORS, responses
from hostrelay.api.routers import new_router
from hostrelay.api.services import ApiServices
from hostrelay.domain.errors import InvalidRequest
from hostrelay.domain.principal import Principal

if TYPE_CHECKING:
    from hostrelay.logic.enrollment import EnrollmentService

SHELL_SCRIPT = "text/x-shellscript"
EnrollmentToken = Annotated[
    str, ENROLLMENT_TOKEN, Path(description="The one-shot enrollment token")
]
_HOST_HEADER = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")


def request_base_url(request: Request) -> str:
    """Where this API was reached (API Gateway sets Host and X-Forwarded-Proto)."""
    host = request.headers.get("host", "")
    if not _HOST_HEADER.fullmatch(host):
        raise InvalidRequest("cannot tell this API's URL from the request; set PUBLIC_API_URL")
    proto = request.headers.get("x-forwarded-proto", "https").split(",")[0].strip()
    return f"{'http' if proto == 'http' else 'https'}://{host}"


def enrollments_router(
    services: ApiServices, enrollment: Callable[[], "EnrollmentService"]
) -> Router:
    router = new_router()
    access = services.access

    @router.post(
        "/v1/enrollments",
        summary="Enroll a host",
        description=(
            "Returns a one-shot token and the single command to paste as root on the new host. "
            "The token expires after a few minutes and works once; only its hash is stored."
        ),
        tags=["hosts"],
        security=BEARER_AUTH,
        status_code=HTTPStatus.CREATED.value,
        responses=responses({201: "The enrollment command"}, 403, 409, *BODY_ERRORS),
    )
    def create_enrollment(
        body: EnrollmentCreateRequest,
        principal: Annotated[Principal, Depends(access.admin)],
        base_url: Annotated[str, Depends(request_base_url)],
    ) -> EnrollmentCreated:
        offer = enrollment().offer(
            body.host,
            principal,
            roles=body.roles,
            replace=body.replace,
            base_url=base_url,
            tags=body.tags,
        )
        return EnrollmentCreated.model_validate(offer)

    @router.get(
        "/v1/enroll/<token>.sh",
        summary="The enrollment script",
        description=(
            "What the pasted command pipes into bash. An unknown, expired or used token gets "
            "a script that says so and exits 1 without changing anything."
        ),
        tags=["hosts"],
        responses={200: {"description": "A bash script", "content": {SHELL_SCRIPT: {}}}},
    )
    def enrollment_script(
        token: str, base_url: Annotated[str, Depends(request_base_url)]
    ) -> Response[str]:
        return Response(
            status_code=HTTPStatus.OK.value,
            content_type=SHELL_SCRIPT,
            body=enrollment().bootstrap_script(token, base_url=base_url),
            headers={"Cache-Control": "no-store"},
        )

    @router.post(
        "/v1/enroll/<token>/csr",
        summary="Sign an enrolling host's CSR",
        description=(
            "The token authenticates (no bearer): it must be unused, unexpired and for this "
            "host, and the CSR must name exactly CN=<host>. Consumes the token."
        ),
        tags=["hosts"],
        responses=responses(
            {200: "The certificate and how to reach the broker"}, 403, 404, 409, *BODY_ERRORS
        ),
    )
    def enroll_with_csr(
        token: EnrollmentToken,
        body: EnrollCsrRequest,
        base_url: Annotated[str, Depends(request_base_url)],
    ) -> EnrollmentBundleOut:
        bundle = enrollment().complete(token, body.host, body.csr, base_url=base_url)
        return EnrollmentBundleOut.model_validate(bundle)

    return router
