"""Run persistence: the run item and its targets change together, in conditional transactions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from hostrelay.dal.idempotency_repo import IdempotencyKeyTaken
from hostrelay.dal.pynamodb_private import table_connection
from hostrelay.dal.run_tables import (
    ACTIVE,
    LISTED,
    RUN_ITEM,
    RunRecord,
    RunTargetRecord,
    state_item,
    target_item,
)
from hostrelay.dal.tables import IdempotencyRecord, JobRecord
from hostrelay.domain.errors import Conflict, NotFound, StaleWrite
from hostrelay.domain.jobs import JobErrorInfo
from hostrelay.domain.runs import Run, RunState, RunTarget, TargetSelector, TargetState

# A transaction holds 100 items: the run's, a target's and a job's per target started, and
# the target whose end made room for them.
MAX_STARTS_PER_TRANSACTION = 49
# The run's item and the new targets of a continuous run, in one transaction.
MAX_ADDS_PER_TRANSACTION = 99


def _run_of(record: RunRecord) -> Run:
    return Run(
        id=record.run_id,
        type=record.type,
        params=record.params or {},
        targets=TargetSelector.model_validate(record.targets),
        max_concurrency=record.max_concurrency,
        max_errors=record.max_errors,
        timeout_s=int(record.timeout_s),
        deliver_by=record.deliver_by,
        continuous=bool(record.continuous),
        expired_counts_as_error=bool(record.expired_counts_as_error),
        idempotency_key=record.idempotency_key,
        created_by=record.created_by,
        allowed_hosts=record.allowed_hosts,
        state=RunState(record.state),
        stopping=RunState(record.stopping) if record.stopping else None,
        reason=record.reason,
        total=int(record.total),
        next_seq=int(record.next_seq),
        counts={TargetState(k): int(v) for k, v in (record.counts or {}).items()},
        created_at=record.created_at,
        updated_at=record.updated_at,
        finished_at=record.finished_at,
        version=int(record.version or 0),
    )


def _run_record(run: Run) -> RunRecord:
    record = RunRecord(
        run_id=run.id,
        item=RUN_ITEM,
        type=run.type,
        params=run.params,
        targets=run.targets.model_dump(),
        max_concurrency=run.max_concurrency,
        max_errors=run.max_errors,
        timeout_s=run.timeout_s,
        deliver_by=run.deliver_by,
        continuous=run.continuous,
        expired_counts_as_error=run.expired_counts_as_error,
        idempotency_key=run.idempotency_key,
        created_by=run.created_by,
        allowed_hosts=run.allowed_hosts,
        state=run.state.value,
        stopping=run.stopping.value if run.stopping else None,
        reason=run.reason,
        total=run.total,
        next_seq=run.next_seq,
        counts={state.value: n for state, n in run.counts.items() if n},
        created_at=run.created_at,
        updated_at=run.updated_at,
        finished_at=run.finished_at,
        listed=LISTED,
        active=None if run.state.terminal else ACTIVE,
    )
    if run.version:
        record.version = run.version
    return record


def _target_of(record: RunTargetRecord) -> RunTarget:
    return RunTarget(
        run_id=record.run_id,
        seq=int(record.seq),
        host=record.host,
        state=TargetState(record.state),
        job_id=record.job_id,
        error=JobErrorInfo.model_validate(record.error) if record.error else None,
        started_at=record.started_at,
        finished_at=record.finished_at,
    )


def _target_record(target: RunTarget) -> RunTargetRecord:
    return RunTargetRecord(
        run_id=target.run_id,
        item=target_item(target.seq),
        seq=target.seq,
        host=target.host,
        state=target.state.value,
        job_id=target.job_id,
        error=target.error.model_dump() if target.error else None,
        started_at=target.started_at,
        finished_at=target.finished_at,
        state_item=state_item(target.state.value, target.seq),
    )


def _counts_of(run: Run) -> dict[str, int]:
    return {state.value: n for state, n in run.counts.items() if n}


def _set_or_remove(attribute: Any, value: Any) -> Action:
    action: Action = attribute.remove() if value is None else attribute.set(value)
    return action


def _progress_actions(before: Run, after: Run) -> list[Action]:
    """What changed from `before` to `after` among the fields a run's progress moves, as
    update actions: the rest of the item (params, the selector, the allowed hosts) is written
    once, by `create`, and never again."""
    actions: list[Action] = [RunRecord.updated_at.set(after.updated_at)]
    if after.state is not before.state:
        actions.append(RunRecord.state.set(after.state.value))
        if after.state.terminal:
            actions.append(RunRecord.active.remove())
    if after.stopping is not before.stopping:
        actions.append(
            _set_or_remove(RunRecord.stopping, after.stopping.value if after.stopping else None)
        )
    if after.reason != before.reason:
        actions.append(_set_or_remove(RunRecord.reason, after.reason))
    if after.total != before.total:
        actions.append(RunRecord.total.set(after.total))
    if after.next_seq != before.next_seq:
        actions.append(RunRecord.next_seq.set(after.next_seq))
    if _counts_of(after) != _counts_of(before):
        actions.append(RunRecord.counts.set(_counts_of(after)))
    if after.finished_at != before.finished_at:
        actions.append(_set_or_remove(RunRecord.finished_at, after.finished_at))
    return actions


def _at_version(run: Run) -> RunRecord:
    """The run's key at the version it was read at: an update of it is conditional on that
    version and raises it by one (pynamodb's version attribute)."""
    return RunRecord(run_id=run.id, item=RUN_ITEM, version=run.version)


def _finish(write: TransactWrite, target: RunTarget) -> None:
    """The end of an in-flight target, on condition it is still in flight with its job.
    Target items are small and written whole: moto evaluates a PutItem several times faster
    than an update expression, and DynamoDB charges an update by the item's size anyway."""
    write.save(
        _target_record(target),
        condition=(RunTargetRecord.state == TargetState.IN_FLIGHT.value)
        & (RunTargetRecord.job_id == target.job_id),
    )


def _connection() -> Connection:
    return table_connection(RunRecord).connection


class RunRepository:
    """Reads and conditional writes of runs and their targets."""

    def create(
        self, run: Run, targets: list[RunTarget], claim: IdempotencyRecord | None = None
    ) -> Run:
        """Write the targets, then the run (with the claim of its idempotency key, in one
        transaction). Targets written for a run that never appears are unreachable: the run
        id is new, so nothing reads them."""
        self.put_targets(targets)
        record = _run_record(run)
        if claim is None:
            try:
                record.save(condition=RunRecord.run_id.does_not_exist())
            except PutError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise Conflict(f"run {run.id} already exists") from exc
                raise
            return _run_of(record)
        try:
            with TransactWrite(connection=_connection()) as write:
                write.save(claim, condition=IdempotencyRecord.key.does_not_exist())
                write.save(record, condition=RunRecord.run_id.does_not_exist())
        except TransactWriteError as exc:
            reasons = [r.code if r else None for r in exc.cancellation_reasons]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise IdempotencyKeyTaken(claim.key) from exc
            if "TransactionConflict" in reasons:
                raise StaleWrite(f"run {run.id}: its idempotency key is being claimed") from exc
            raise
        return _run_of(record)

    def put_targets(self, targets: Iterable[RunTarget]) -> None:
        """Write targets as they are (batches of 25): only for targets nobody else writes,
        those of a new run and pending targets of a run that has stopped starting any."""
        with RunTargetRecord.batch_write() as batch:
            for target in targets:
                batch.save(_target_record(target))

    def get(self, run_id: str) -> Run:
        try:
            return _run_of(RunRecord.get(run_id, RUN_ITEM, consistent_read=True))
        except DoesNotExist:
            raise NotFound(f"run {run_id} not found") from None

    def newest(
        self,
        *,
        limit: int,
        start_key: dict[str, Any] | None,
        created_by: str | None = None,
    ) -> tuple[list[Run], dict[str, Any] | None]:
        """A page of runs, newest first: every run, or those `created_by` started (a key
        condition of its own index, so pages are full)."""
        if created_by is None:
            results = RunRecord.by_created.query(
                LISTED, scan_index_forward=False, limit=limit, last_evaluated_key=start_key
            )
        else:
            results = RunRecord.by_creator.query(
                created_by, scan_index_forward=False, limit=limit, last_evaluated_key=start_key
            )
        runs = [_run_of(record) for record in results]
        return runs, results.last_evaluated_key

    def active(self) -> Iterator[Run]:
        for record in RunRecord.active_runs.query(ACTIVE):
            yield _run_of(record)

    def target(self, run_id: str, seq: int) -> RunTarget:
        try:
            return _target_of(RunTargetRecord.get(run_id, target_item(seq), consistent_read=True))
        except DoesNotExist:
            raise NotFound(f"target {seq} of run {run_id} not found") from None

    def next_targets(self, run: Run, limit: int) -> list[RunTarget]:
        """Up to `limit` targets from `next_seq` on, below `total`, in start order: one
        BatchGetItem of their keys (a query's cost would grow with the run's size in moto)."""
        keys = [
            (run.id, target_item(seq))
            for seq in range(run.next_seq, min(run.next_seq + limit, run.total))
        ]
        records = RunTargetRecord.batch_get(keys, consistent_read=True)
        return sorted((_target_of(record) for record in records), key=lambda t: t.seq)

    def targets(
        self,
        run_id: str,
        *,
        state: TargetState | None = None,
        limit: int = 100,
        start_key: dict[str, Any] | None = None,
    ) -> tuple[list[RunTarget], dict[str, Any] | None]:
        """A page of a run's targets in start order, optionally of one state (a key condition
        of `targets_by_state`, so pages are full)."""
        if state is None:
            results = RunTargetRecord.query(
                run_id,
                RunTargetRecord.item.startswith("t#"),
                limit=limit,
                last_evaluated_key=start_key,
                consistent_read=True,
            )
        else:
            results = RunTargetRecord.by_state.query(
                run_id,
                RunTargetRecord.state_item.startswith(state_item(state.value)),
                limit=limit,
                last_evaluated_key=start_key,
                consistent_read=True,
            )
        return [_target_of(record) for record in results], results.last_evaluated_key

    def all_targets(self, run_id: str, state: TargetState | None = None) -> Iterator[RunTarget]:
        if state is None:
            records = RunTargetRecord.query(
                run_id, RunTargetRecord.item.startswith("t#"), consistent_read=True
            )
        else:
            records = RunTargetRecord.by_state.query(
                run_id,
                RunTargetRecord.state_item.startswith(state_item(state.value)),
                consistent_read=True,
            )
        for record in records:
            yield _target_of(record)

    def update_run(self, run: Run, changes: Mapping[str, Any]) -> Run:
        """Apply `changes` (fields of Run) to the run on condition nobody wrote it since
        `run` was read: one UpdateItem of what changed, never the whole item."""
        after = run.model_copy(update=changes)
        try:
            _at_version(run).update(actions=_progress_actions(run, after))
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise StaleWrite(f"run {run.id} changed concurrently") from exc
            raise
        return after.model_copy(update={"version": run.version + 1})

    def start_targets(
        self,
        run: Run,
        changes: Mapping[str, Any],
        started: Sequence[tuple[RunTarget, JobRecord]],
        finished: RunTarget | None = None,
    ) -> Run:
        """In one transaction (at most MAX_STARTS_PER_TRANSACTION targets): the run (read at
        its version) takes `changes`, each target (still PENDING) names its job, and each job
        (new) is written; with `finished`, that target ends as `finish_target` ends it."""
        if len(started) > MAX_STARTS_PER_TRANSACTION:
            raise ValueError(f"at most {MAX_STARTS_PER_TRANSACTION} targets a transaction")
        after = run.model_copy(update=changes)
        pending = RunTargetRecord.state == TargetState.PENDING.value
        try:
            with TransactWrite(connection=_connection()) as write:
                write.update(_at_version(run), actions=_progress_actions(run, after))
                for target, job in started:
                    write.save(_target_record(target), condition=pending)
                    write.save(job, condition=JobRecord.id.does_not_exist())
                if finished is not None:
                    _finish(write, finished)
        except TransactWriteError as exc:
            seqs = ", ".join(str(target.seq) for target, _ in started)
            raise StaleWrite(f"run {run.id}: targets {seqs} not started") from exc
        return after.model_copy(update={"version": run.version + 1})

    def add_targets(
        self, run: Run, changes: Mapping[str, Any], targets: Sequence[RunTarget]
    ) -> Run:
        """In one transaction (at most MAX_ADDS_PER_TRANSACTION targets): the run (read at its
        version) takes `changes` (its new total and counts) and the new targets are written.
        A second container adding from the same read fails as a whole, so it never rewrites
        a target the first one added and may have started since."""
        if len(targets) > MAX_ADDS_PER_TRANSACTION:
            raise ValueError(f"at most {MAX_ADDS_PER_TRANSACTION} targets a transaction")
        after = run.model_copy(update=changes)
        try:
            with TransactWrite(connection=_connection()) as write:
                write.update(_at_version(run), actions=_progress_actions(run, after))
                for target in targets:
                    write.save(_target_record(target))
        except TransactWriteError as exc:
            raise StaleWrite(f"run {run.id}: targets not added") from exc
        return after.model_copy(update={"version": run.version + 1})

    def finish_target(self, run: Run, changes: Mapping[str, Any], target: RunTarget) -> Run:
        """In one transaction: the target (still in flight with its job id, not read) takes
        its end state, error and finished_at, and the run (read at its version) `changes`."""
        after = run.model_copy(update=changes)
        try:
            with TransactWrite(connection=_connection()) as write:
                write.update(_at_version(run), actions=_progress_actions(run, after))
                _finish(write, target)
        except TransactWriteError as exc:
            raise StaleWrite(f"run {run.id}: target {target.seq} not finished") from exc
        return after.model_copy(update={"version": run.version + 1})
