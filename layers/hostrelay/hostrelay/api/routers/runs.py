"""Routes of /v1/runs: start a fleet run, read it and its targets, list runs, cancel one."""

# No `from __future__ import annotations` here: Powertools reads these signatures at runtime.

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from hostrelay.api.models.base import ULID
from hostrelay.api.models.jobs import JobErrorOut
from hostrelay.api.models.runs import (
    RunCreateRequest,
    RunOut,
    RunPage,
    RunTargetOut,
    RunTargetPage,
)
from hostrelay.api.openapi import BEARER_AUTH, BODY_ERRORS, responses
from hostrelay.api.pagination import encode_next_token
from hostrelay.api.routers import new_router
from hostrelay.api.routers.collections import NextToken, created_response, start_key
from hostrelay.api.services import ApiServices
from hostrelay.domain.principal import Principal
from hostrelay.domain.runs import Run
from hostrelay.logic.runs import (
    NewRun,
    RunService,
    TargetView,
    readable_creator,
    target_page_prefix,
)
from hostrelay_contract.text_patterns import TextPattern

RunId = Annotated[str, ULID, Path(description="Run id (a ULID)")]
TARGET_STATE_PATTERN = r"^[A-Z_]{1,16}$"
# Any upper-case word is read (a state no target has finds none); the words say the shape.
TARGET_STATE = TextPattern(TARGET_STATE_PATTERN, "a target state: 1-16 of A-Z and '_'")
# The key of each listing: every run (by_created), a creator's runs (by_creator), a run's
# targets (the table), or a run's targets of one state (targets_by_state).
_LIST_KEYS = frozenset({"run_id", "item", "listed"})
_BY_CREATOR_KEYS = frozenset({"run_id", "item", "created_by"})
_TARGET_KEYS = frozenset({"run_id", "item"})
_BY_STATE_KEYS = frozenset({"run_id", "item", "state_item"})


def to_new_run(body: RunCreateRequest) -> NewRun:
    return NewRun(
        type=body.type,
        params=body.params,
        hosts=list(body.targets.hosts),
        tags=dict(body.targets.tags),
        max_concurrency=body.max_concurrency,
        max_errors=body.max_errors,
        timeout_s=body.timeout_s,
        deliver_by=body.deliver_by,
        continuous=body.continuous,
        expired_counts_as_error=body.expired_counts_as_error,
        idempotency_key=body.idempotency_key,
    )


def run_out(run: Run) -> RunOut:
    return RunOut(
        id=run.id,
        type=run.type,
        params=run.params,
        targets=run.targets.model_dump(),
        state=run.state.value,
        reason=run.reason,
        stopping=run.stopping.value if run.stopping else None,
        max_concurrency=run.max_concurrency,
        max_errors=run.max_errors,
        window=run.window,
        error_limit=run.error_limit,
        timeout_s=run.timeout_s,
        deliver_by=run.deliver_by,
        continuous=run.continuous,
        expired_counts_as_error=run.expired_counts_as_error,
        total=run.total,
        counts={state.value: n for state, n in run.counts.items() if n},
        in_flight=run.in_flight,
        errors=run.errors,
        created_by=run.created_by,
        created_at=run.created_at,
        updated_at=run.updated_at,
        finished_at=run.finished_at,
    )


def target_out(view: TargetView) -> RunTargetOut:
    target = view.target
    return RunTargetOut(
        seq=target.seq,
        host=target.host,
        job_id=target.job_id,
        state=view.state,
        error=None if target.error is None else JobErrorOut.model_validate(target.error),
        started_at=target.started_at,
        finished_at=target.finished_at,
    )


def runs_router(services: ApiServices, runs: RunService) -> Router:
    router = new_router()
    access = services.access

    @router.post(
        "/v1/runs",
        summary="Start a fleet run",
        description=(
            "One job per target host (named, or carrying every given tag), at most "
            "`max_concurrency` in flight (QUEUED, DISPATCHED or IN_PROGRESS) at once: the next "
            "target starts as soon as one ends. Once more than `max_errors` targets failed "
            "(FAILED, TIMED_OUT, REJECTED, and EXPIRED unless `expired_counts_as_error` is "
            "false) no target starts any more and the run ends ABORTED. Defaults: "
            "max_concurrency 10, max_errors 0. Repeating a request with the same "
            "idempotency_key and body returns the first run (200)."
        ),
        tags=["runs"],
        security=BEARER_AUTH,
        responses=responses(
            {201: "The run was started", 200: "Idempotent replay: the first run"},
            403,
            409,
            *BODY_ERRORS,
        ),
    )
    def create_run(
        body: RunCreateRequest,
        principal: Annotated[Principal, Depends(access.authenticated)],
    ) -> Response[RunOut]:
        run, created = runs.create(to_new_run(body), principal)
        return created_response(run_out(run), created=created, location=f"/v1/runs/{run.id}")

    @router.get(
        "/v1/runs",
        summary="List runs",
        description="Newest first; a service token sees the runs it started. Pages hold "
        "`limit` runs until the last; follow `next_token` until it is absent.",
        tags=["runs"],
        security=BEARER_AUTH,
        responses=responses({200: "A page of runs"}, 400, 403),
    )
    def list_runs(
        *,
        principal: Annotated[Principal, Depends(access.authenticated)],
        limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
        next_token: NextToken = None,
    ) -> RunPage:
        creator = readable_creator(principal)
        if creator is None:
            start = start_key(next_token, keys=_LIST_KEYS)
        else:
            start = start_key(next_token, keys=_BY_CREATOR_KEYS, fixed={"created_by": creator})
        found, last_key = runs.newest(principal, limit=limit, start_key=start)
        return RunPage(runs=[run_out(run) for run in found], next_token=encode_next_token(last_key))

    @router.get(
        "/v1/runs/<run_id>",
        summary="Get a run",
        description="Its state, counts of targets by state, in-flight and error counts, and "
        "the reason it ended.",
        tags=["runs"],
        security=BEARER_AUTH,
        responses=responses({200: "The run"}, 403, 404),
    )
    def get_run(
        run_id: RunId, principal: Annotated[Principal, Depends(access.authenticated)]
    ) -> RunOut:
        return run_out(runs.get(run_id, principal))

    @router.get(
        "/v1/runs/<run_id>/targets",
        summary="List a run's targets",
        description=(
            "In start order. `state` is a target state (PENDING, IN_FLIGHT, SUCCEEDED, FAILED, "
            "TIMED_OUT, REJECTED, EXPIRED, CANCELED, SKIPPED) or an in-flight job's (QUEUED, "
            "DISPATCHED, IN_PROGRESS). Pages hold `limit` targets until the last; follow "
            "`next_token` until it is absent."
        ),
        tags=["runs"],
        security=BEARER_AUTH,
        responses=responses({200: "A page of targets"}, 400, 403, 404),
    )
    def run_targets(
        run_id: RunId,
        principal: Annotated[Principal, Depends(access.authenticated)],
        state: Annotated[
            Annotated[str, TARGET_STATE] | None,
            Query(description="Only targets in this state"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500, description="Page size")] = 100,
        next_token: NextToken = None,
    ) -> RunTargetPage:
        fixed = {"run_id": run_id}
        prefix = target_page_prefix(state)
        if prefix is None:
            start = start_key(next_token, keys=_TARGET_KEYS, fixed=fixed)
        else:
            start = start_key(
                next_token, keys=_BY_STATE_KEYS, fixed=fixed, prefixed={"state_item": prefix}
            )
        views, last_key = runs.targets(run_id, principal, state=state, limit=limit, start_key=start)
        return RunTargetPage(
            targets=[target_out(view) for view in views], next_token=encode_next_token(last_key)
        )

    @router.post(
        "/v1/runs/<run_id>/cancel",
        summary="Cancel a run",
        description=(
            "Targets not started end CANCELED at once; in-flight jobs are canceled as "
            "POST /v1/jobs/{id}/cancel does. The run ends CANCELED when none is in flight."
        ),
        tags=["runs"],
        security=BEARER_AUTH,
        status_code=HTTPStatus.ACCEPTED.value,
        responses=responses({202: "Canceled, or canceling"}, 403, 404, 409),
    )
    def cancel_run(
        run_id: RunId, principal: Annotated[Principal, Depends(access.authenticated)]
    ) -> RunOut:
        return run_out(runs.cancel(run_id, principal))

    return router
