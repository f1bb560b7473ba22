"""Routes of /v1/jobs: create, read, list, cancel, and follow output."""

# No `from __future__ import annotations` here: Powertools reads these signatures at runtime,
# and the Depends() targets are closures it could not resolve from strings.

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from hostrelay.api.models.base import ULID
from hostrelay.api.models.jobs import (
    JobCreateRequest,
    JobOut,
    JobPage,
    OutputChunkOut,
    OutputPage,
)
from hostrelay.api.openapi import BEARER_AUTH, BODY_ERRORS, responses
from hostrelay.api.pagination import encode_next_token
from hostrelay.api.routers import new_router
from hostrelay.api.routers.collections import NextToken, created_response, start_key
from hostrelay.api.services import ApiServices
from hostrelay.domain.jobs import JobState
from hostrelay.domain.principal import Principal
from hostrelay.logic.jobs import NewJob
from hostrelay_contract.names import HOST_NAME

# Chunk numbers stay far below this; the bound keeps the query within DynamoDB's numbers.
MAX_SEQ = 2**31 - 1
JobId = Annotated[str, ULID, Path(description="Job id (a ULID)")]
# The key of each listing: a scan of the table, or a query of the by_host_state index (of one
# host, or of each host a service token may read, merged).
_SCAN_KEYS = frozenset({"id"})
_BY_HOST_KEYS = frozenset({"id", "host", "state_key"})


def to_new_job(body: JobCreateRequest) -> NewJob:
    return NewJob(
        type=body.type,
        host=body.host,
        params=body.params,
        timeout_s=body.timeout_s,
        deliver_by=body.deliver_by,
        max_attempts=body.max_attempts,
        idempotency_key=body.idempotency_key,
    )


def jobs_router(services: ApiServices) -> Router:
    router = new_router()
    access, jobs = services.access, services.jobs()

    @router.post(
        "/v1/jobs",
        summary="Queue a job",
        description=(
            "Validates the type's params, checks the host is enrolled and the token may target "
            "it, stores the job as QUEUED and asks the dispatcher to deliver it. Repeating a "
            "request with the same idempotency_key and body returns the first job (200)."
        ),
        tags=["jobs"],
        security=BEARER_AUTH,
        responses=responses(
            {201: "The job was queued", 200: "Idempotent replay: the first job"},
            403,
            409,
            *BODY_ERRORS,
        ),
    )
    def create_job(
        body: JobCreateRequest,
        principal: Annotated[Principal, Depends(access.authenticated)],
    ) -> Response[JobOut]:
        job, created = jobs.create(to_new_job(body), principal)
        return created_response(
            JobOut.model_validate(job), created=created, location=f"/v1/jobs/{job.id}"
        )

    @router.get(
        "/v1/jobs",
        summary="List jobs",
        description=(
            "Newest first (by state) when filtered by host, and for service tokens that name "
            "their hosts: their pages hold `limit` jobs until the last. Other pages may hold "
            "fewer; keep following `next_token` until it is absent."
        ),
        tags=["jobs"],
        security=BEARER_AUTH,
        responses=responses({200: "A page of jobs"}, 400, 403),
    )
    def list_jobs(
        *,
        principal: Annotated[Principal, Depends(access.authenticated)],
        host: Annotated[
            Annotated[str, HOST_NAME] | None, Query(description="Only this host's jobs")
        ] = None,
        state: Annotated[JobState | None, Query(description="Only jobs in this state")] = None,
        job_type: Annotated[
            str | None, Query(alias="type", max_length=64, description="Only this job type")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
        next_token: NextToken = None,
    ) -> JobPage:
        if not jobs.pages_by_host(principal, host):
            start = start_key(next_token, keys=_SCAN_KEYS)
        else:
            fixed = {"host": host} if host is not None else None
            start = start_key(next_token, keys=_BY_HOST_KEYS, fixed=fixed)
        found, last_key = jobs.list(
            principal, host=host, state=state, job_type=job_type, limit=limit, start_key=start
        )
        return JobPage(
            jobs=[JobOut.model_validate(job) for job in found],
            next_token=encode_next_token(last_key),
        )

    @router.get(
        "/v1/jobs/<job_id>",
        summary="Get a job",
        tags=["jobs"],
        security=BEARER_AUTH,
        responses=responses({200: "The job"}, 403, 404),
    )
    def get_job(
        job_id: JobId, principal: Annotated[Principal, Depends(access.authenticated)]
    ) -> JobOut:
        return JobOut.model_validate(jobs.get(job_id, principal))

    @router.post(
        "/v1/jobs/<job_id>/cancel",
        summary="Cancel a job",
        description=(
            "A QUEUED job is CANCELED at once; a running one gets a cancel request and ends "
            "when the relay confirms (or after a grace period)."
        ),
        tags=["jobs"],
        security=BEARER_AUTH,
        status_code=HTTPStatus.ACCEPTED.value,
        responses=responses({202: "Canceled, or cancel requested"}, 403, 404, 409),
    )
    def cancel_job(
        job_id: JobId, principal: Annotated[Principal, Depends(access.authenticated)]
    ) -> JobOut:
        return JobOut.model_validate(jobs.cancel(job_id, principal))

    @router.get(
        "/v1/jobs/<job_id>/output",
        summary="Read a job's output",
        description=(
            "Chunks of the current attempt after `after_seq`, oldest first. Poll with "
            "`after_seq=next_seq` until `complete` to follow a running job."
        ),
        tags=["jobs"],
        security=BEARER_AUTH,
        responses=responses({200: "A page of output"}, 403, 404),
    )
    def job_output(
        job_id: JobId,
        principal: Annotated[Principal, Depends(access.authenticated)],
        after_seq: Annotated[
            int, Query(ge=-1, le=MAX_SEQ, description="Last seq already read")
        ] = -1,
        limit: Annotated[int, Query(ge=1, le=1000, description="Most chunks to return")] = 100,
    ) -> OutputPage:
        read = services.output().page(job_id, principal, after_seq=after_seq, limit=limit)
        return OutputPage(
            job_id=read.job_id,
            attempt=read.attempt,
            chunks=[OutputChunkOut.from_bytes(c.seq, c.stream, c.data) for c in read.chunks],
            next_seq=read.next_seq,
            complete=read.complete,
        )

    return router
