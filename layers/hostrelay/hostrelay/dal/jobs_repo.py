"""Job persistence: every state change is a conditional write on state and version."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from hostrelay.clock import isoformat, utcnow
from hostrelay.dal.idempotency_repo import IdempotencyKeyTaken
from hostrelay.dal.pynamodb_private import table_connection
from hostrelay.dal.security_tables import AuditRecord
from hostrelay.dal.state_change_events import StateChangePublisher
from hostrelay.dal.tables import HostRecord, IdempotencyRecord, JobRecord
from hostrelay.domain.errors import Conflict, NotFound, StaleWrite
from hostrelay.domain.hosts import HostState
from hostrelay.domain.jobs import (
    Job,
    JobErrorInfo,
    JobOutputInfo,
    JobState,
    can_transition,
    created_at_of,
    next_deadline,
)

ACTIVE = "1"


class TargetHostUnavailable(Exception):
    """The job's host is not enrolled, or revoked: the job was not written."""


_NOT_SET: Any = object()


def _state_key(state: JobState, created_at: datetime, job_id: str) -> str:
    return f"{state.value}#{isoformat(created_at)}#{job_id}"


def _below(state: JobState | None, after: str | None) -> Condition | None:
    """The by_host_state range condition: keys of `state` (if any) at or below `after`."""
    if state is None:
        return JobRecord.state_key < after if after is not None else None
    prefix = f"{state.value}#"
    if after is None:
        return JobRecord.state_key.startswith(prefix)
    return JobRecord.state_key.between(prefix, after)


def to_domain(record: JobRecord) -> Job:
    return Job(
        id=record.id,
        type=record.type,
        host=record.host,
        params=record.params or {},
        state=JobState(record.state),
        attempt=int(record.attempt),
        max_attempts=int(record.max_attempts),
        timeout_s=int(record.timeout_s),
        deliver_by=record.deliver_by,
        idempotency_key=record.idempotency_key,
        created_by=record.created_by,
        created_at=record.created_at,
        updated_at=record.updated_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        cancel_requested_at=record.cancel_requested_at,
        dispatched_at=record.dispatched_at,
        progress=record.progress,
        result=record.result,
        error=JobErrorInfo.model_validate(record.error) if record.error else None,
        output=JobOutputInfo.model_validate(record.output) if record.output else None,
        connector_id=record.connector_id,
        requeued_at=record.requeued_at,
        run_id=record.run_id,
        run_seq=int(record.run_seq) if record.run_seq is not None else None,
        version=int(record.version or 0),
    )


def _to_record(job: Job, retention: timedelta) -> JobRecord:
    """The whole item of `job`, index keys included (its version is the one it was read at)."""
    deadline = next_deadline(job)
    record = JobRecord(
        id=job.id,
        type=job.type,
        host=job.host,
        params=job.params,
        state=job.state.value,
        state_key=_state_key(job.state, job.created_at, job.id),
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        timeout_s=job.timeout_s,
        deliver_by=job.deliver_by,
        idempotency_key=job.idempotency_key,
        created_by=job.created_by,
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        dispatched_at=job.dispatched_at,
        cancel_requested_at=job.cancel_requested_at,
        progress=job.progress,
        result=job.result,
        error=job.error.model_dump() if job.error else None,
        output=job.output.model_dump() if job.output else None,
        active=None if job.state.terminal else ACTIVE,
        deadline=isoformat(deadline) if deadline else None,
        connector_id=job.connector_id,
        requeued_at=job.requeued_at,
        run_id=job.run_id,
        run_seq=job.run_seq,
    )
    if job.version:
        record.version = job.version
    if job.state.terminal:
        record.purge_at = job.updated_at + retention
    return record


class JobRepository:
    """Reads and conditional writes of job records.

    With `events`, the write that ends a job (the only one that can: terminal states never
    change) is followed by its `Job State Change` event: at most one per job.
    """

    def __init__(
        self,
        retention: timedelta = timedelta(days=90),
        events: StateChangePublisher | None = None,
        on_run_job_finished: Callable[[Job], None] | None = None,
    ) -> None:
        self._retention = retention
        self._events = events
        # Told of every terminal transition of a fleet run's job, after it is written: the
        # one place every path that ends a job (results, sweeper, cancel) passes through.
        self._on_run_job_finished = on_run_job_finished

    def notify_run_job_finished(self, listener: Callable[[Job], None]) -> None:
        self._on_run_job_finished = listener

    def to_record(self, job: Job) -> JobRecord:
        """The item a new job is written as (a run writes it in its own transaction)."""
        return _to_record(job, self._retention)

    def create(
        self,
        job: Job,
        claim: IdempotencyRecord | None = None,
        *,
        host_must_be_active: str | None = None,
        host_must_be_online: bool = False,
        audit: AuditRecord | None = None,
    ) -> Job:
        """Write a new job, and with it (in one transaction) the claim of its idempotency
        key: either both exist or neither, so a failed write leaves no claim behind that
        would hold the key's retries off. With `host_must_be_active`, the same transaction
        checks that this host is enrolled and not revoked (no separate read of it), or with
        `host_must_be_online` that it is online, and writes the `audit` line of the job's
        creation.

        Raises TargetHostUnavailable when the host check failed, IdempotencyKeyTaken when
        the key was claimed first, StaleWrite when a concurrent transaction touched the
        same items."""
        record = _to_record(job, self._retention)
        if claim is None and host_must_be_active is None and audit is None:
            try:
                record.save(condition=JobRecord.id.does_not_exist())
            except PutError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise Conflict(f"job {job.id} already exists") from exc
                raise
            return to_domain(record)
        # The position of each item in the transaction, to read its cancellation reason.
        items: list[str] = []
        try:
            with TransactWrite(connection=table_connection(JobRecord).connection) as write:
                if host_must_be_active is not None:
                    write.condition_check(
                        HostRecord,
                        host_must_be_active,
                        condition=HostRecord.state == HostState.ONLINE.value
                        if host_must_be_online
                        else HostRecord.name.exists()
                        & (HostRecord.state != HostState.REVOKED.value),
                    )
                    items.append("host")
                if claim is not None:
                    write.save(claim, condition=IdempotencyRecord.key.does_not_exist())
                    items.append("claim")
                write.save(record, condition=JobRecord.id.does_not_exist())
                items.append("job")
                if audit is not None:
                    write.save(audit)
                    items.append("audit")
        except TransactWriteError as exc:
            reasons = dict(
                zip(items, [r.code if r else None for r in exc.cancellation_reasons], strict=False)
            )
            if reasons.get("host") == "ConditionalCheckFailed":
                raise TargetHostUnavailable(host_must_be_active or "") from exc
            if reasons.get("claim") == "ConditionalCheckFailed" and claim is not None:
                raise IdempotencyKeyTaken(claim.key) from exc
            if "TransactionConflict" in reasons.values():
                raise StaleWrite(f"job {job.id}: its items are being written concurrently") from exc
            raise
        return to_domain(record)

    def get_many(self, job_ids: Sequence[str]) -> dict[str, Job]:
        """The jobs of `job_ids` that exist, by id (consistent reads, 100 a request)."""
        found: dict[str, Job] = {}
        for record in JobRecord.batch_get(list(dict.fromkeys(job_ids)), consistent_read=True):
            found[record.id] = to_domain(record)
        return found

    def get(self, job_id: str) -> Job:
        try:
            return to_domain(JobRecord.get(job_id, consistent_read=True))
        except DoesNotExist:
            raise NotFound(f"job {job_id} not found") from None

    def transition(
        self,
        job: Job,
        target: JobState,
        *,
        attempt: int | None = None,
        started_at: datetime | None = _NOT_SET,
        finished_at: datetime | None = _NOT_SET,
        cancel_requested_at: datetime | None = _NOT_SET,
        result: dict[str, Any] | None = _NOT_SET,
        error: JobErrorInfo | None = _NOT_SET,
        output: JobOutputInfo | None = _NOT_SET,
        progress: dict[str, Any] | None = _NOT_SET,
        dispatched: bool = False,
        requeued: bool = False,
    ) -> Job:
        """Move `job` to `target` only if nobody changed it since it was read.

        Staying in the same state is allowed (to record progress or a cancel request);
        terminal states never change. Raises StaleWrite when the condition fails.
        """
        if job.state.terminal:
            raise StaleWrite(f"job {job.id} is already {job.state.value}")
        if target is not job.state and not can_transition(job.state, target):
            raise StaleWrite(f"job {job.id} cannot go from {job.state.value} to {target.value}")
        now = utcnow()
        changes: dict[str, Any] = {"state": target, "updated_at": now}
        if attempt is not None:
            changes["attempt"] = attempt
        if dispatched:
            changes["dispatched_at"] = now
        if requeued:
            changes["requeued_at"] = now
        elif target is JobState.QUEUED and job.state is not JobState.QUEUED:
            changes["requeued_at"] = None  # a new attempt: the sweeper may re-send it once
        for name, value in (
            ("started_at", started_at),
            ("finished_at", finished_at),
            ("cancel_requested_at", cancel_requested_at),
            ("result", result),
            ("error", error),
            ("output", output),
            ("progress", progress),
        ):
            if value is not _NOT_SET:
                changes[name] = value
        # The whole item is written back, on condition that nobody wrote it since it was
        # read (pynamodb adds `version = <read version>` and bumps it). A PutItem of the
        # item costs DynamoDB the same write units as an UpdateItem of it, and it is several
        # times cheaper to evaluate than a dozen SET/REMOVE actions (notably in moto).
        record = _to_record(job.model_copy(update=changes), self._retention)
        condition = (JobRecord.state == job.state.value) & (JobRecord.attempt == job.attempt)
        try:
            record.save(condition=condition)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise StaleWrite(f"job {job.id} changed concurrently") from exc
            raise
        return self._written(to_domain(record), previous_state=job.state)

    def finish_unread(
        self,
        job_id: str,
        *,
        host: str,
        attempt: int,
        target: JobState,
        finished_at: datetime,
        started_at: datetime,
        result: dict[str, Any] | None,
        error: JobErrorInfo | None,
    ) -> Job:
        """End a job of `host` at `attempt` in the terminal `target` without reading it first:
        one UpdateItem, on condition that the job is that host's, at that attempt, in a state
        that may go to `target`, and was created at the moment its id says (true of every job
        made by `new_job_identity`; its index key needs it). `started_at` is kept if the job
        has one already. What `transition` would write, with the same event and run hook
        after it; raises StaleWrite when the condition fails (read the job, then decide).
        """
        created_at = created_at_of(job_id)
        if not target.terminal or created_at is None:
            raise StaleWrite(f"job {job_id} cannot be finished unread")
        now = utcnow()
        condition = (
            (JobRecord.host == host)
            & (JobRecord.attempt == attempt)
            & JobRecord.state.is_in(*(s.value for s in JobState if can_transition(s, target)))
            & (JobRecord.created_at == created_at)
        )
        actions = [
            JobRecord.state.set(target.value),
            JobRecord.state_key.set(_state_key(target, created_at, job_id)),
            JobRecord.updated_at.set(now),
            JobRecord.finished_at.set(finished_at),
            JobRecord.started_at.set(JobRecord.started_at | started_at),
            JobRecord.purge_at.set(now + self._retention),
            JobRecord.active.remove(),
            JobRecord.deadline.remove(),
            JobRecord.version.add(1),
            JobRecord.result.set(result) if result is not None else JobRecord.result.remove(),
            JobRecord.error.set(error.model_dump())
            if error is not None
            else JobRecord.error.remove(),
            # Like `transition`'s output=None: a result without output leaves none.
            JobRecord.output.remove(),
        ]
        try:
            answer = table_connection(JobRecord).update_item(
                job_id, actions=actions, condition=condition, return_values=ALL_OLD
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise StaleWrite(f"job {job_id} is not one to finish unread") from exc
            raise
        before = to_domain(JobRecord.from_raw_data(answer["Attributes"]))
        written = before.model_copy(
            update={
                "state": target,
                "updated_at": now,
                "finished_at": finished_at,
                "started_at": before.started_at or started_at,
                "result": result,
                "error": error,
                "output": None,
                "version": before.version + 1,
            }
        )
        return self._written(written, previous_state=before.state)

    def _written(self, written: Job, *, previous_state: JobState) -> Job:
        """After every state change: a job that ended is announced and moves its run on."""
        if written.state.terminal and self._events is not None:
            self._events.job_finished(written, previous_state=previous_state.value)
        if written.state.terminal and written.run_id and self._on_run_job_finished:
            self._on_run_job_finished(written)
        return written

    def list_for_connector(
        self, connector_id: str, *, limit: int = 50, start_key: dict[str, Any] | None = None
    ) -> tuple[list[Job], dict[str, Any] | None]:
        """A page of a connector's jobs, newest first; returns (jobs, next start key)."""
        results = JobRecord.by_connector.query(
            connector_id, limit=limit, last_evaluated_key=start_key, scan_index_forward=False
        )
        jobs = [to_domain(record) for record in results]
        return jobs, results.last_evaluated_key

    def replace_output(self, job: Job, output: JobOutputInfo) -> None:
        """Refresh the output summary of a finished job (a late chunk arrived); state stays."""
        record = JobRecord(id=job.id, version=job.version)
        try:
            record.update(
                actions=[JobRecord.output.set(output.model_dump())],
                condition=JobRecord.state == job.state.value,
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            raise StaleWrite(f"job {job.id} changed concurrently") from exc

    def list_across_hosts(
        self,
        hosts: Sequence[str],
        *,
        state: JobState | None = None,
        job_types: Sequence[str] | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> tuple[list[Job], dict[str, Any] | None]:
        """A full page of the jobs of `hosts` (and `job_types`), merged from one by_host_state
        query per host in the index's order (state, then newest first).

        `after` is the `state_key` of the previous page's last job: every host continues
        below it. Returns (jobs, the last job's index key, or None on the last page).
        """

        def of_host(host: str) -> Iterator[JobRecord]:
            for record in JobRecord.by_host_state.query(
                host,
                _below(state, after),
                filter_condition=JobRecord.type.is_in(*job_types) if job_types else None,
                scan_index_forward=False,
                page_size=limit + 1,
            ):
                if after is None or record.state_key < after:  # `between` includes `after`
                    yield record

        if (
            state is not None and after is not None and not after.startswith(f"{state.value}#")
        ) or (job_types is not None and not job_types):
            return [], None
        merged = heapq.merge(
            *(of_host(host) for host in sorted(set(hosts))),
            key=lambda record: record.state_key,
            reverse=True,
        )
        records = list(itertools.islice(merged, limit + 1))
        page = records[:limit]
        if len(records) <= limit:
            return [to_domain(record) for record in page], None
        last = page[-1]
        last_key = {
            "id": {"S": last.id},
            "host": {"S": last.host},
            "state_key": {"S": last.state_key},
        }
        return [to_domain(record) for record in page], last_key

    def list(
        self,
        *,
        host: str | None = None,
        state: JobState | None = None,
        job_type: str | None = None,
        job_types: Sequence[str] | None = None,
        limit: int = 50,
        start_key: dict[str, Any] | None = None,
    ) -> tuple[list[Job], dict[str, Any] | None]:
        """A page of jobs, newest first when a host is given; returns (jobs, next start key).

        `job_types` (non-empty) keeps only jobs of those types, in place of `job_type`.
        """
        filter_condition: Condition | None = JobRecord.type == job_type if job_type else None
        if job_types:
            filter_condition = JobRecord.type.is_in(*job_types)
        if host is not None:
            range_condition = (
                JobRecord.state_key.startswith(f"{state.value}#") if state is not None else None
            )
            results = JobRecord.by_host_state.query(
                host,
                range_condition,
                filter_condition=filter_condition,
                limit=limit,
                last_evaluated_key=start_key,
                scan_index_forward=False,
            )
        else:
            if state is not None:
                state_filter = JobRecord.state == state.value
                filter_condition = (
                    state_filter if filter_condition is None else filter_condition & state_filter
                )
            results = JobRecord.scan(
                filter_condition=filter_condition, limit=limit, last_evaluated_key=start_key
            )
        jobs = [to_domain(record) for record in results]
        return jobs, results.last_evaluated_key

    def due(self, now: datetime) -> Iterator[Job]:
        """Non-terminal jobs whose deadline has passed (sparse index, oldest first)."""
        for record in JobRecord.active_by_deadline.query(
            ACTIVE, JobRecord.deadline <= isoformat(now)
        ):
            yield to_domain(record)

    def by_host_and_state(
        self, host: str, state: JobState, job_type: str | None = None
    ) -> Iterator[Job]:
        """Every job of a host in one state (optionally of one type)."""
        for record in JobRecord.by_host_state.query(
            host,
            JobRecord.state_key.startswith(f"{state.value}#"),
            filter_condition=(JobRecord.type == job_type) if job_type else None,
        ):
            yield to_domain(record)

    def pending_for_host(self, host: str) -> Iterator[Job]:
        """QUEUED and DISPATCHED jobs of a host: what a relay saying hello should receive."""
        for state in (JobState.QUEUED, JobState.DISPATCHED):
            for record in JobRecord.by_host_state.query(
                host, JobRecord.state_key.startswith(f"{state.value}#")
            ):
                yield to_domain(record)
