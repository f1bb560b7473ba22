"""Creating, reading, listing and cancelling jobs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hostrelay.clock import utcnow
from hostrelay.dal.audit_repo import AuditRepository
from hostrelay.dal.dispatch_function import DispatchFunction, InvokeUnavailable
from hostrelay.dal.dispatch_queue import DispatchQueue, QueueUnavailable
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.idempotency_repo import IdempotencyKeyTaken, IdempotencyRepository
from hostrelay.dal.jobs_repo import JobRepository, TargetHostUnavailable
from hostrelay.dal.security_tables import AuditRecord
from hostrelay.dal.tables import IdempotencyRecord
from hostrelay.domain.errors import Conflict, Forbidden, InvalidRequest, NotFound, StaleWrite
from hostrelay.domain.hosts import HostState
from hostrelay.domain.job_params import check_job_params
from hostrelay.domain.jobs import Job, JobErrorInfo, JobState, is_write_back, new_job_identity
from hostrelay.domain.principal import Principal
from hostrelay.observability import logger
from hostrelay_contract.canonical_json import canonical_json
from hostrelay_contract.job_types import JOB_TYPES
from hostrelay_contract.names import CLOUD_HOST


@dataclass(frozen=True)
class NewJob:
    type: str
    host: str
    params: dict[str, Any]
    timeout_s: int | None = None
    deliver_by: datetime | None = None
    max_attempts: int = 1
    idempotency_key: str | None = None
    connector_id: str | None = None


class JobService:
    def __init__(
        self,
        jobs: JobRepository,
        hosts: HostRepository,
        idempotency: IdempotencyRepository,
        queue: DispatchQueue,
        *,
        cloud_queue: DispatchQueue | None = None,
        audit: AuditRepository | None = None,
        dispatcher: DispatchFunction | None = None,
    ) -> None:
        self._jobs = jobs
        self._hosts = hosts
        self._idempotency = idempotency
        self._queue = queue
        self._cloud_queue = cloud_queue
        self._dispatcher = dispatcher
        self._audit = audit or AuditRepository(enabled=False)

    @property
    def records(self) -> JobRepository:
        """The job records this service writes (fleet runs write their jobs through them)."""
        return self._jobs

    def _route(self, job_type: str) -> tuple[DispatchQueue, DispatchFunction | None]:
        """Cloud jobs go to the function that runs them (through its queue), host jobs to
        the dispatcher (invoked directly when wired, else through its queue)."""
        spec = JOB_TYPES.get(job_type)  # internal types (cert.install) run on hosts
        if spec is not None and spec.runs_in == "cloud":
            if self._cloud_queue is None:
                raise InvalidRequest(f"{job_type} jobs are not enabled in this deployment")
            return self._cloud_queue, None
        return self._queue, self._dispatcher

    def create(self, request: NewJob, principal: Principal) -> tuple[Job, bool]:
        """Queue a job; returns (job, created). An idempotent replay returns the first job."""
        params = check_job_params(request.type, request.params)
        principal.require_job_create(request.type, request.host)
        self._check_target(request.type, request.host)
        queue, dispatcher = self._route(request.type)
        job_id, now = new_job_identity(utcnow())
        if request.deliver_by is not None and request.deliver_by <= now:
            raise InvalidRequest("deliver_by must be in the future")
        spec = JOB_TYPES[request.type]
        job = Job(
            id=job_id,
            type=request.type,
            host=request.host,
            params=params,
            state=JobState.QUEUED,
            attempt=1,
            max_attempts=request.max_attempts,
            timeout_s=request.timeout_s or spec.default_timeout_s,
            deliver_by=request.deliver_by,
            idempotency_key=request.idempotency_key,
            created_by=principal.label,
            created_at=now,
            updated_at=now,
            connector_id=request.connector_id,
        )
        details: dict[str, Any] = {"type": job.type, "host": job.host}
        if is_write_back(job.type):  # who asked for which change
            details["params"] = job.params
        # One transaction: the host check (a host job's host, instead of a read), the
        # idempotency claim, the job and its audit line.
        host_check = None if spec.runs_in == "cloud" else request.host
        audit = self._audit.entry(principal.label, "job.create", f"job:{job.id}", details)
        claim = (
            self._idempotency.new_claim(
                _idempotency_key(request, principal), job.id, _body_digest(request)
            )
            if request.idempotency_key
            else None
        )
        # A host job's write first asks for its host online: the dispatcher then need not
        # read the host's presence. Only when that fails is the host read, to refuse the
        # job (unknown or revoked host) or to write it for a host that is offline.
        online = host_check is not None
        try:
            written = self._write(job, claim, host_check, audit, online=online)
        except TargetHostUnavailable:
            refusal = self._refusal(request.host)
            if refusal is not None:
                raise refusal from None
            online = False
            try:
                written = self._write(job, claim, host_check, audit, online=False)
            except TargetHostUnavailable:
                raise self._refusal(request.host) or _host_changed(request.host) from None
        if written is None:
            return self._replay(request, principal), False
        self._queue_new(queue, dispatcher, written, host_online=online)
        return written, True

    def _queue_new(
        self,
        queue: DispatchQueue,
        dispatcher: DispatchFunction | None,
        job: Job,
        *,
        host_online: bool,
    ) -> None:
        """Ask for dispatch of a job already written: by invoking `dispatcher` (a host job's:
        one request, where the queue costs three), else, or should the invocation fail,
        through `queue`. Should that fail too, the job is not lost: the sweeper sends
        it again after REQUEUE_AFTER, so the caller gets its job rather than an error
        inviting a duplicate. The job is offered to the queue, which carries it only if its
        consumer reads carried jobs (decided where the queue is wired)."""
        if dispatcher is not None:
            try:
                dispatcher.start(job, host_online=host_online)
                return
            except InvokeUnavailable:
                logger.warning("dispatch not invoked; queued instead", extra={"job_id": job.id})
        try:
            queue.send(job.id, job.attempt, job=job, host_online=host_online)
        except QueueUnavailable:
            logger.warning("job written but not queued", extra={"job_id": job.id})

    def _write(
        self,
        job: Job,
        claim: IdempotencyRecord | None,
        host_check: str | None,
        audit: AuditRecord | None,
        *,
        online: bool,
    ) -> Job | None:
        """Write `job` (with the claim of its idempotency key, if any); None when the key
        was taken. A transaction that met another one on its items (a twin request claiming
        the key, the host's presence being written) is tried again."""
        for _ in range(3):
            try:
                return self._jobs.create(
                    job,
                    claim,
                    host_must_be_active=host_check,
                    host_must_be_online=online,
                    audit=audit,
                )
            except IdempotencyKeyTaken:
                return None
            except StaleWrite:
                continue
        if claim is not None:
            raise Conflict("a request with this idempotency_key is still being processed")
        raise Conflict("the job's host is being changed right now; retry")

    def _replay(self, request: NewJob, principal: Principal) -> Job:
        """The job the first request with this key created (written with its claim)."""
        claim = self._idempotency.find(_idempotency_key(request, principal))
        if claim is None:  # expired between the two reads
            raise Conflict("idempotency_key expired just now; retry")
        if claim.body_sha256 != _body_digest(request):
            raise Conflict("idempotency_key was already used with a different request body")
        # Were it never queued, the sweeper queues it (sending it here on every replay
        # would publish it twice whenever the first send did succeed).
        return self._jobs.get(claim.job_id)

    @staticmethod
    def _check_target(job_type: str, host: str) -> None:
        """A cloud job names the cloud; a host job's host is checked when it is written."""
        if JOB_TYPES[job_type].runs_in == "cloud" and host != CLOUD_HOST:
            raise InvalidRequest(f"{job_type} runs in the cloud: host must be {CLOUD_HOST!r}")

    def _refusal(self, host: str) -> InvalidRequest | None:
        """Why the write's host check failed (read only then): unknown or revoked; None for
        a host that may have jobs (offline, or back online since)."""
        record = self._hosts.find(host)
        if record is None:
            return InvalidRequest(
                f"unknown host {host!r}", details=[{"field": "host", "message": "not enrolled"}]
            )
        if record.state == HostState.REVOKED:
            return InvalidRequest(f"host {host!r} is revoked")
        return None

    def get(self, job_id: str, principal: Principal) -> Job:
        job = self._jobs.get(job_id)
        if not principal.may_read_job(job.type, job.host):
            raise NotFound(f"job {job_id} not found")
        return job

    def list(
        self,
        principal: Principal,
        *,
        host: str | None,
        state: JobState | None,
        job_type: str | None,
        limit: int,
        start_key: dict[str, Any] | None,
    ) -> tuple[list[Job], dict[str, Any] | None]:
        """A page of the jobs `principal` may read; a restricted token's pages are full pages
        of its own jobs (queried per host it may read), not a filtered page of everyone's."""
        hosts, types = principal.readable_hosts(), principal.readable_job_types()
        if hosts is None and types is None:
            return self._jobs.list(
                host=host, state=state, job_type=job_type, limit=limit, start_key=start_key
            )
        if job_type is not None:
            types = [job_type] if types is None or job_type in types else []
        if host is not None:
            hosts = [host] if hosts is None or host in hosts else []
        if hosts == [] or types == []:
            return [], None
        if hosts is None:  # every host (`*`), some types: a scan filtered by type, read
            # on (page after page) until the page is full; it costs reads, not short pages
            jobs, next_key = self._jobs.list(
                state=state, job_types=types, limit=limit, start_key=start_key
            )
        else:
            after = start_key["state_key"]["S"] if start_key else None
            jobs, next_key = self._jobs.list_across_hosts(
                hosts, state=state, job_types=types, limit=limit, after=after
            )
        return [j for j in jobs if principal.may_read_job(j.type, j.host)], next_key

    @staticmethod
    def pages_by_host(principal: Principal, host: str | None) -> bool:
        """Whether a listing's next_token is a by_host_state key (else a table-scan key)."""
        return host is not None or principal.readable_hosts() is not None

    def cancel(self, job_id: str, principal: Principal) -> Job:
        """QUEUED jobs end at once; running ones get a cancel message and end on confirmation."""
        job = self.get(job_id, principal)
        try:
            principal.require_job_create(job.type, job.host)
        except Forbidden:
            raise Forbidden("this token may not cancel this job") from None
        for _ in range(5):
            if job.state.terminal:
                raise Conflict(f"job {job_id} is already {job.state.value}")
            try:
                if job.state is JobState.QUEUED:
                    job = self._jobs.transition(
                        job,
                        JobState.CANCELED,
                        finished_at=utcnow(),
                        error=_canceled_error(principal),
                    )
                else:
                    if job.cancel_requested_at is None:
                        job = self._jobs.transition(job, job.state, cancel_requested_at=utcnow())
                    self._route(job.type)[0].send(job.id, job.attempt, action="cancel")
            except StaleWrite:
                job = self._jobs.get(job_id)
                continue
            self._audit.append(
                principal.label, "job.cancel", f"job:{job.id}", {"state": job.state.value}
            )
            return job
        raise Conflict(f"job {job_id} keeps changing; try again")


def _host_changed(host: str) -> Conflict:
    """The host was enrolled between the write and the read of it."""
    return Conflict(f"host {host!r} changed while the job was written; retry")


def _idempotency_key(request: NewJob, principal: Principal) -> str:
    return f"{principal.token_id}#{request.idempotency_key}"


def _body_digest(request: NewJob) -> str:
    body = {k: v for k, v in request.__dict__.items() if k != "idempotency_key"}
    return hashlib.sha256(
        canonical_json(body | {"deliver_by": str(body["deliver_by"])})
    ).hexdigest()


def _canceled_error(principal: Principal) -> JobErrorInfo:
    return JobErrorInfo(code="canceled", message=f"canceled by {principal.label}")
