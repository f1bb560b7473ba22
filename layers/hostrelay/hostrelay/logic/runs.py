"""Starting, reading, listing and cancelling fleet runs (the orchestration is run_orchestration)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ulid import ULID

from hostrelay.clock import utcnow
from hostrelay.dal.audit_repo import AuditRepository
from hostrelay.dal.idempotency_repo import IdempotencyKeyTaken, IdempotencyRepository
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.dal.run_tables import state_item
from hostrelay.dal.runs_repo import RunRepository
from hostrelay.domain.errors import Conflict, Forbidden, InvalidRequest, NotFound, StaleWrite
from hostrelay.domain.job_params import check_job_params
from hostrelay.domain.jobs import JobState
from hostrelay.domain.principal import Principal, Scope
from hostrelay.domain.runs import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_ERRORS,
    MAX_TARGETS,
    Run,
    RunState,
    RunTarget,
    TargetSelector,
    TargetState,
    parse_limit,
)
from hostrelay.logic.hosts import HostService
from hostrelay.logic.jobs import JobService
from hostrelay.logic.run_orchestration import RunOrchestrator
from hostrelay_contract.canonical_json import canonical_json
from hostrelay_contract.job_types import JOB_TYPES


@dataclass(frozen=True)
class NewRun:
    type: str
    params: dict[str, Any]
    hosts: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    max_concurrency: int | str = DEFAULT_MAX_CONCURRENCY
    max_errors: int | str = DEFAULT_MAX_ERRORS
    timeout_s: int | None = None
    deliver_by: datetime | None = None
    continuous: bool = False
    expired_counts_as_error: bool = True
    idempotency_key: str | None = None


@dataclass(frozen=True)
class TargetView:
    """A target as users see it: an in-flight target shows its job's live state."""

    target: RunTarget
    state: str


class RunService:
    def __init__(
        self,
        runs: RunRepository,
        orchestrator: RunOrchestrator,
        jobs: JobService,
        job_records: JobRepository,
        *,
        hosts: HostService,
        idempotency: IdempotencyRepository,
        audit: AuditRepository | None = None,
    ) -> None:
        self._runs = runs
        self._orchestrator = orchestrator
        self._jobs = jobs
        self._job_records = job_records
        self._hosts = hosts
        self._idempotency = idempotency
        self._audit = audit or AuditRepository(enabled=False)

    # ------------------------------------------------------------ create

    def create(self, request: NewRun, principal: Principal) -> tuple[Run, bool]:
        """Select the targets, write the run and start its first window; returns (run,
        created). An idempotent replay returns the first run."""
        principal.require_run_create(request.type)
        params = check_job_params(request.type, request.params)
        spec = JOB_TYPES[request.type]
        if spec.runs_in == "cloud":
            raise InvalidRequest(f"{request.type} runs in the cloud: it has no fleet runs")
        max_concurrency = parse_limit(request.max_concurrency, "max_concurrency")
        max_errors = parse_limit(request.max_errors, "max_errors")
        if max_concurrency in (0, "0%"):
            raise InvalidRequest("max_concurrency must be at least 1 (or 1%)")
        if not request.hosts and not request.tags:
            raise InvalidRequest("targets needs hosts, tags or both")
        if request.continuous and not request.tags:
            raise InvalidRequest("a continuous run selects hosts by targets.tags")
        now = utcnow()
        if request.deliver_by is not None and request.deliver_by <= now:
            raise InvalidRequest("deliver_by must be in the future")
        hosts = self._hosts.select_hosts(principal, request.hosts, request.tags)
        if not hosts and not request.continuous:
            raise InvalidRequest("no enrolled host matches the run's targets")
        if len(hosts) > MAX_TARGETS:
            raise InvalidRequest(
                f"a run has at most {MAX_TARGETS} targets, these select {len(hosts)}"
            )
        run = Run(
            id=str(ULID()),
            type=request.type,
            params=params,
            targets=TargetSelector(hosts=request.hosts, tags=request.tags),
            max_concurrency=max_concurrency,
            max_errors=max_errors,
            timeout_s=request.timeout_s or spec.default_timeout_s,
            deliver_by=request.deliver_by,
            continuous=request.continuous,
            expired_counts_as_error=request.expired_counts_as_error,
            idempotency_key=request.idempotency_key,
            created_by=principal.label,
            allowed_hosts=principal.targetable_hosts(),
            total=len(hosts),
            counts={TargetState.PENDING: len(hosts)} if hosts else {},
            created_at=now,
            updated_at=now,
        )
        targets = [RunTarget(run_id=run.id, seq=seq, host=host) for seq, host in enumerate(hosts)]
        if request.idempotency_key:
            written = self._create_once(run, targets, request, principal)
            if written is None:
                return self._replay(request, principal), False
            run = written
        else:
            run = self._runs.create(run, targets)
        self._audit.append(
            principal.label, "run.create", f"run:{run.id}", {"type": run.type, "targets": run.total}
        )
        return self._orchestrator.advance(run), True

    def _create_once(
        self, run: Run, targets: list[RunTarget], request: NewRun, principal: Principal
    ) -> Run | None:
        claim = self._idempotency.new_claim(
            _idempotency_key(request, principal), run.id, _body_digest(request)
        )
        for _ in range(3):
            try:
                return self._runs.create(run, targets, claim)
            except IdempotencyKeyTaken:
                return None
            except StaleWrite:
                continue
        raise Conflict("a request with this idempotency_key is still being processed")

    def _replay(self, request: NewRun, principal: Principal) -> Run:
        claim = self._idempotency.find(_idempotency_key(request, principal))
        if claim is None:
            raise Conflict("idempotency_key expired just now; retry")
        if claim.body_sha256 != _body_digest(request):
            raise Conflict("idempotency_key was already used with a different request body")
        return self._runs.get(claim.job_id)

    # ------------------------------------------------------------ read

    def get(self, run_id: str, principal: Principal) -> Run:
        run = self._runs.get(run_id)
        if not _may_read(run, principal):
            raise NotFound(f"run {run_id} not found")
        return run

    def newest(
        self, principal: Principal, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Run], dict[str, Any] | None]:
        """A page of runs, newest first; a service token sees the runs it started."""
        return self._runs.newest(
            limit=limit, start_key=start_key, created_by=readable_creator(principal)
        )

    def targets(
        self,
        run_id: str,
        principal: Principal,
        *,
        state: str | None,
        limit: int,
        start_key: dict[str, Any] | None,
    ) -> tuple[list[TargetView], dict[str, Any] | None]:
        """A page of a run's targets, `limit` of them unless it is the last. `state` is a
        target state, or a job's in-flight state (QUEUED, DISPATCHED, IN_PROGRESS): those are
        IN_FLIGHT targets whose job says so (read with the targets, so a page may take more
        than one query: each asks for what the page still lacks, so the next page starts
        right after the last target read)."""
        run = self.get(run_id, principal)
        stored = stored_target_state(state)
        views: list[TargetView] = []
        last_key = start_key
        while True:
            page, last_key = self._runs.targets(
                run.id, state=stored, limit=limit - len(views), start_key=last_key
            )
            views.extend(self._views(run, page, state))
            if len(views) >= limit or last_key is None:
                return views, last_key

    def _views(self, run: Run, page: list[RunTarget], state: str | None) -> list[TargetView]:
        # Targets at or past `total` were added to a continuous run after it was read here.
        page = [target for target in page if target.seq < run.total]
        jobs = self._job_records.get_many(
            [t.job_id for t in page if t.state is TargetState.IN_FLIGHT and t.job_id]
        )
        views = []
        for target in page:
            shown = target.state.value
            job = jobs.get(target.job_id or "")
            if target.state is TargetState.IN_FLIGHT and job is not None:
                # A job that just ended shows its end; the run counts it in a moment.
                shown = job.state.value
            if state in _LIVE_STATES and shown != state:
                continue
            views.append(TargetView(target=target, state=shown))
        return views

    # ------------------------------------------------------------ cancel

    def cancel(self, run_id: str, principal: Principal) -> Run:
        """Pending targets end CANCELED at once; in-flight jobs are canceled as jobs are
        (QUEUED at once, running ones on the relay's confirmation). The run ends CANCELED
        once none is in flight."""
        run = self.get(run_id, principal)
        if not _may_cancel(run, principal):
            raise Forbidden("this token may not cancel this run")
        for _ in range(5):
            if run.state.terminal:
                raise Conflict(f"run {run_id} is already {run.state.value}")
            try:
                run = self._orchestrator.stop(
                    run, RunState.CANCELED, f"canceled by {principal.label}"
                )
                break
            except StaleWrite:
                run = self._runs.get(run_id)
        else:
            raise Conflict(f"run {run_id} keeps changing; try again")
        for target in self._runs.all_targets(run.id, TargetState.IN_FLIGHT):
            if target.job_id is None:
                continue
            try:
                self._jobs.cancel(target.job_id, principal)
            except (Conflict, NotFound):
                continue  # ended meanwhile: the run counts its end
        self._audit.append(principal.label, "run.cancel", f"run:{run.id}", {})
        return self._orchestrator.advance(self._runs.get(run.id))


_LIVE_STATES = frozenset(
    {JobState.QUEUED.value, JobState.DISPATCHED.value, JobState.IN_PROGRESS.value}
)


def readable_creator(principal: Principal) -> str | None:
    """Whose runs `principal` may read: everyone's (None) with the reader scope, else (a
    service token) the runs it started."""
    return None if principal.has(Scope.READER) else principal.label


def _may_read(run: Run, principal: Principal) -> bool:
    creator = readable_creator(principal)
    return creator is None or run.created_by == creator


def _may_cancel(run: Run, principal: Principal) -> bool:
    """Operators cancel any run, a service token the runs it started (the console offers the
    cancel by the same rule: console/static/runs.js, with the label from GET /v1/whoami)."""
    return principal.has(Scope.OPERATOR) or run.created_by == principal.label


def target_page_prefix(state: str | None) -> str | None:
    """What the sort key of every target a `?state=` listing reads starts with (None: the
    listing of all targets, by item)."""
    stored = stored_target_state(state)
    return None if stored is None else state_item(stored.value)


def stored_target_state(state: str | None) -> TargetState | None:
    """The stored target state a `?state=` asks for: itself, or IN_FLIGHT for a job's
    in-flight state; unknown states are refused."""
    if state is None:
        return None
    if state in _LIVE_STATES:
        return TargetState.IN_FLIGHT
    try:
        return TargetState(state)
    except ValueError:
        raise InvalidRequest(f"unknown target state {state!r}") from None


def _idempotency_key(request: NewRun, principal: Principal) -> str:
    return f"{principal.token_id}#run#{request.idempotency_key}"


def _body_digest(request: NewRun) -> str:
    body = {k: v for k, v in asdict(request).items() if k != "idempotency_key"}
    return hashlib.sha256(
        canonical_json(body | {"deliver_by": str(body["deliver_by"])})
    ).hexdigest()
