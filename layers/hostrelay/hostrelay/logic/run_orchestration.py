"""Drives fleet runs: starts targets in a sliding window, counts their ends, stops and ends runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from hostrelay.clock import utcnow
from hostrelay.dal.dispatch_queue import DispatchQueue, QueueUnavailable
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.dal.runs_repo import (
    MAX_ADDS_PER_TRANSACTION,
    MAX_STARTS_PER_TRANSACTION,
    RunRepository,
)
from hostrelay.dal.state_change_events import StateChangePublisher
from hostrelay.dal.tables import JobRecord
from hostrelay.domain.errors import NotFound, StaleWrite
from hostrelay.domain.jobs import NOT_DELIVERED, Job, JobState, new_job_identity
from hostrelay.domain.runs import (
    MAX_TARGETS,
    TARGET_STATE_OF_JOB,
    Run,
    RunState,
    RunTarget,
    TargetState,
)
from hostrelay.domain.state_changes import RunStateChange
from hostrelay.observability import logger

# Conditional writes lost in a row before a caller leaves the rest to the sweeper.
MAX_CONFLICTS = 20
# Targets one call starts at most (transactions of up to MAX_STARTS_PER_TRANSACTION, and
# message batches of 10): a wide window fills over the next job ends and sweeper ticks,
# never in one request that outlives its timeout.
MAX_STARTS_PER_CALL = 100


@dataclass
class RunSweepReport:
    runs: int = 0
    repaired: int = 0
    added: int = 0


class RunOrchestrator:
    """Every change of a run or a target is one conditional transaction; a step whose
    condition fails re-reads and tries again, so a second container or a redelivered
    message finds the step done and changes nothing."""

    def __init__(
        self,
        runs: RunRepository,
        jobs: JobRepository,
        hosts: HostRepository,
        queue: DispatchQueue,
        *,
        clock: Callable[[], datetime] | None = None,
        events: StateChangePublisher | None = None,
    ) -> None:
        self._runs = runs
        self._jobs = jobs
        self._hosts = hosts
        self._queue = queue
        self._clock = clock or _now
        # `Run State Change` on the bus, after the one conditional write that ends the run.
        self._events = events

    # ------------------------------------------------------------ the window

    def advance(self, run: Run) -> Run:
        """Start targets while the window has room; stop the run once its failures exceed
        max_errors; end it when nothing is pending or in flight."""
        conflicts = starts = 0
        while not run.state.terminal:
            try:
                if (
                    run.stopping is None
                    and run.pending > 0
                    and run.deliver_by is not None
                    and self._clock() >= run.deliver_by
                ):
                    run = self._expire_pending(run)
                elif run.stopping is None and run.errors > run.error_limit:
                    run = self.stop(
                        run,
                        RunState.ABORTED,
                        f"{run.errors} failed targets exceed max_errors={run.error_limit}",
                    )
                elif run.in_flight == 0 and (
                    run.stopping is not None or (run.pending == 0 and not run.continuous)
                ):
                    run = self._end(run)
                elif (room := min(self._room(run), MAX_STARTS_PER_CALL - starts)) > 0:
                    run, started = self._start_next(run, room)
                    starts += started
                else:
                    return run
            except StaleWrite:
                conflicts += 1
                if conflicts > MAX_CONFLICTS:
                    logger.warning(
                        "run keeps changing; the sweeper goes on", extra={"run_id": run.id}
                    )
                    return run
                run = self._runs.get(run.id)
        return run

    def _room(self, run: Run) -> int:
        """How many targets the window may start now: none once the run stops, is past its
        deliver_by or has more failures than max_errors (those steps come first)."""
        if (
            run.stopping is not None
            or run.pending <= 0
            or run.errors > run.error_limit
            or (run.deliver_by is not None and self._clock() >= run.deliver_by)
        ):
            return 0
        return max(0, min(run.window - run.in_flight, run.pending))

    def _start_next(
        self, run: Run, limit: int, finished: RunTarget | None = None
    ) -> tuple[Run, int]:
        """Start up to `limit` targets from `next_seq` on in one transaction, then ask for
        their dispatch in batches, each message carrying its job. With `finished`, the end
        of that in-flight target is written (and counted) in the same transaction. Returns
        the run and the count started."""
        targets = self._runs.next_targets(run, min(limit, MAX_STARTS_PER_TRANSACTION))
        # Only the unbroken run of seqs from next_seq: next_seq says all below it started.
        targets = [t for index, t in enumerate(targets) if t.seq == run.next_seq + index]
        if not targets:
            raise NotFound(f"target {run.next_seq} of run {run.id} not found")
        jobs: list[Job] = []
        started: list[tuple[RunTarget, JobRecord]] = []
        now = self._clock()
        for target in targets:
            job_id, created_at = new_job_identity(now)
            job = Job(
                id=job_id,
                type=run.type,
                host=target.host,
                params=run.params,
                state=JobState.QUEUED,
                timeout_s=run.timeout_s,
                deliver_by=run.deliver_by,
                created_by=run.created_by,
                created_at=created_at,
                updated_at=created_at,
                run_id=run.id,
                run_seq=target.seq,
            )
            # Carried as the transaction writes it (a new item's version starts at 1): the
            # dispatcher's write is conditional on that version.
            jobs.append(job.model_copy(update={"version": 1}))
            started.append(
                (
                    target.model_copy(
                        update={
                            "state": TargetState.IN_FLIGHT,
                            "job_id": job.id,
                            "started_at": created_at,
                        }
                    ),
                    self._jobs.to_record(job),
                )
            )
        counts = dict(run.counts)
        if finished is not None:
            counts = _moved(counts, TargetState.IN_FLIGHT, finished.state)
        counts[TargetState.PENDING] = counts.get(TargetState.PENDING, 0) - len(targets)
        counts[TargetState.IN_FLIGHT] = counts.get(TargetState.IN_FLIGHT, 0) + len(targets)
        run = self._runs.start_targets(
            run,
            {"next_seq": run.next_seq + len(targets), "counts": counts, "updated_at": now},
            started,
            finished,
        )
        try:
            self._queue.send_jobs(jobs)
        except QueueUnavailable:
            # The jobs are written: the sweeper hands them to the dispatcher after
            # REQUEUE_AFTER.
            logger.warning("run jobs written but not all queued", extra={"run_id": run.id})
        return run, len(targets)

    # ------------------------------------------------------------ ends of jobs

    def job_finished(self, job: Job) -> None:
        """A run's job reached a terminal state: its target takes that state (once), and the
        window moves on. Called after the job's own write, by whoever ended it."""
        if job.run_id is None or job.run_seq is None or not job.state.terminal:
            return
        state = TARGET_STATE_OF_JOB[job.state]
        # The target as it ends, written on condition it is still in flight with this job:
        # not read first (a duplicate or a second container finds the condition failing).
        finished = RunTarget(
            run_id=job.run_id,
            seq=job.run_seq,
            host=job.host,
            state=state,
            job_id=job.id,
            error=job.error,
            started_at=job.created_at,  # as _start_next wrote it
            finished_at=job.finished_at or self._clock(),
        )
        try:
            for _ in range(MAX_CONFLICTS):
                run = self._runs.get(job.run_id)
                counts = _moved(run.counts, TargetState.IN_FLIGHT, state)
                # The room this end makes is filled in the same transaction (a sliding window
                # moves one write per end), unless the run stops, expires or aborts first.
                room = min(
                    self._room(run.model_copy(update={"counts": counts})), MAX_STARTS_PER_CALL
                )
                try:
                    if room > 0:
                        run, _ = self._start_next(run, room, finished)
                    else:
                        run = self._runs.finish_target(
                            run, {"counts": counts, "updated_at": self._clock()}, finished
                        )
                except StaleWrite:
                    target = self._runs.target(job.run_id, job.run_seq)
                    if target.state is not TargetState.IN_FLIGHT or target.job_id != job.id:
                        return  # counted already (a duplicate, or another container)
                    continue  # the run moved since it was read
                self.advance(run)
                return
        except NotFound:
            logger.warning("job of an unknown run finished", extra={"job_id": job.id})
            return
        logger.warning("run target not counted; the sweeper goes on", extra={"job_id": job.id})

    # ------------------------------------------------------------ stopping and ending

    def stop(self, run: Run, state: RunState, reason: str) -> Run:
        """Start no more targets: the pending ones end SKIPPED (aborted) or CANCELED, and the
        run ends as `state` once its in-flight jobs have. Raises StaleWrite on a race."""
        if run.stopping is not None:
            return run
        left = TargetState.CANCELED if state is RunState.CANCELED else TargetState.SKIPPED
        run = self._close_pending(run, left, stopping=state, reason=reason)
        logger.info("run stopping", extra={"run_id": run.id, "state": state.value})
        return run

    def _expire_pending(self, run: Run) -> Run:
        """Past the run's deliver_by, a target not started yet cannot reach its host in time:
        it ends EXPIRED at once, without a job. Raises StaleWrite on a race."""
        run = self._close_pending(run, TargetState.EXPIRED)
        logger.info("run targets expired before they started", extra={"run_id": run.id})
        return run

    def _close_pending(
        self,
        run: Run,
        state: TargetState,
        *,
        stopping: RunState | None = None,
        reason: str | None = None,
    ) -> Run:
        """Every pending target ends `state`: first in the run's counts (and `next_seq` moves
        past them, so nothing starts them), then in their own items."""
        counts = dict(run.counts)
        counts[state] = counts.get(state, 0) + counts.pop(TargetState.PENDING, 0)
        update: dict[str, object] = {
            "counts": counts,
            "next_seq": run.total,
            "updated_at": self._clock(),
        }
        if stopping is not None:
            update |= {"stopping": stopping, "reason": reason}
        run = self._runs.update_run(run, update)
        self._settle_pending(run)
        return run

    def _settle_pending(self, run: Run) -> None:
        """Target items still PENDING below `next_seq` take the state the run's counts already
        gave them; nobody else writes them (nothing starts a target below `next_seq`)."""
        if run.stopping is RunState.CANCELED:
            state, error = TargetState.CANCELED, None
        elif run.stopping is RunState.ABORTED:
            state, error = TargetState.SKIPPED, None
        else:
            state, error = TargetState.EXPIRED, NOT_DELIVERED
        now = self._clock()
        self._runs.put_targets(
            target.model_copy(update={"state": state, "error": error, "finished_at": now})
            for target in self._runs.all_targets(run.id, TargetState.PENDING)
            if target.seq < run.next_seq
        )

    def _end(self, run: Run) -> Run:
        now = self._clock()
        final = run.final_state()
        reason = run.reason
        if reason is None and final is RunState.FAILED:
            failed = run.total - run.count(TargetState.SUCCEEDED)
            reason = f"{failed} of {run.total} targets did not succeed"
        run = self._runs.update_run(
            run, {"state": final, "reason": reason, "finished_at": now, "updated_at": now}
        )
        logger.info("run ended", extra={"run_id": run.id, "state": final.value})
        if self._events is not None:
            self._events.run_finished(_state_change(run, now))
        return run

    # ------------------------------------------------------------ the sweeper

    def sweep(self) -> RunSweepReport:
        """Repair what a crash between two writes left behind, add hosts to continuous runs,
        and move every open run's window."""
        report = RunSweepReport()
        for listed in self._runs.active():
            report.runs += 1
            try:
                report.repaired += self._count_missed_ends(listed)
                run = self._runs.get(listed.id)
                if run.stopping is not None or (
                    run.deliver_by is not None and self._clock() >= run.deliver_by
                ):
                    self._settle_pending(run)
                elif run.continuous:
                    added, run = self._add_new_hosts(run)
                    report.added += added
                self.advance(run)
            except StaleWrite:
                continue  # another container moved it: the next tick looks again
        return report

    def _count_missed_ends(self, run: Run) -> int:
        """In-flight targets whose jobs ended without the run hearing of it."""
        in_flight = list(self._runs.all_targets(run.id, TargetState.IN_FLIGHT))
        jobs = self._jobs.get_many([t.job_id for t in in_flight if t.job_id])
        missed = [job for job in jobs.values() if job.state.terminal]
        for job in missed:
            self.job_finished(job)
        return len(missed)

    def _add_new_hosts(self, run: Run) -> tuple[int, Run]:
        """Hosts that gained the run's tags (or enrolled with them) since it started."""
        matched = self._hosts.names_with_tags(run.targets.tags)
        if run.allowed_hosts is not None:
            allowed = set(run.allowed_hosts)
            matched = [host for host in matched if host in allowed]
        known = {t.host for t in self._runs.all_targets(run.id) if t.seq < run.total}
        new_hosts = [host for host in matched if host not in known][: MAX_TARGETS - run.total]
        if not new_hosts:
            return 0, run
        for first in range(0, len(new_hosts), MAX_ADDS_PER_TRANSACTION):
            batch = new_hosts[first : first + MAX_ADDS_PER_TRANSACTION]
            counts = dict(run.counts)
            counts[TargetState.PENDING] = counts.get(TargetState.PENDING, 0) + len(batch)
            run = self._runs.add_targets(
                run,
                {"total": run.total + len(batch), "counts": counts, "updated_at": self._clock()},
                [
                    RunTarget(run_id=run.id, seq=run.total + index, host=host)
                    for index, host in enumerate(batch)
                ],
            )
        logger.info("continuous run added hosts", extra={"run_id": run.id, "added": len(new_hosts)})
        return len(new_hosts), run


def _state_change(run: Run, finished_at: datetime) -> RunStateChange:
    return RunStateChange(
        run_id=run.id,
        type=run.type,
        state=run.state.value,
        reason=run.reason,
        counts={state.value: count for state, count in run.counts.items()},
        created_by=run.created_by,
        created_at=run.created_at,
        finished_at=finished_at,
    )


def _now() -> datetime:
    return utcnow()


def _moved(
    counts: dict[TargetState, int], source: TargetState, target: TargetState
) -> dict[TargetState, int]:
    moved = dict(counts)
    moved[source] = moved.get(source, 0) - 1
    moved[target] = moved.get(target, 0) + 1
    return moved
