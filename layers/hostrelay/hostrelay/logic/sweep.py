"""The sweeper: timeouts, expired deliveries, unconfirmed cancels and silent hosts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hostrelay.clock import utcnow
from hostrelay.dal.dispatch_queue import DispatchQueue
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.domain.errors import StaleWrite
from hostrelay.domain.hosts import HostState
from hostrelay.domain.jobs import (
    ACCEPT_GRACE,
    NOT_DELIVERED,
    Job,
    JobErrorInfo,
    JobState,
    requeue_due,
)
from hostrelay.logic.run_orchestration import RunOrchestrator
from hostrelay.observability import logger
from hostrelay_contract.names import CLOUD_HOST

SILENT_HEARTBEATS = 3


@dataclass
class SweepReport:
    timed_out: int = 0
    expired: int = 0
    canceled: int = 0
    requeued: int = 0
    runs_open: int = 0
    run_ends_repaired: int = 0
    run_targets_added: int = 0
    hosts_offline: list[str] = field(default_factory=list)


class Sweeper:
    def __init__(
        self,
        jobs: JobRepository,
        hosts: HostRepository,
        queue: DispatchQueue,
        *,
        cloud_queue: DispatchQueue | None = None,
        heartbeat_s: int,
        cancel_grace_s: int,
        timeout_grace_s: int,
        runs: RunOrchestrator | None = None,
    ) -> None:
        self._jobs = jobs
        self._runs = runs
        self._hosts = hosts
        self._queue = queue
        self._cloud_queue = cloud_queue
        self._heartbeat = timedelta(seconds=heartbeat_s)
        self._cancel_grace = timedelta(seconds=cancel_grace_s)
        self._timeout_grace = timedelta(seconds=timeout_grace_s)

    def sweep(self, now: datetime | None = None) -> SweepReport:
        now = now or utcnow()
        report = SweepReport()
        online: dict[str, bool] = {}
        for job in self._jobs.due(now):
            try:
                self._sweep_job(job, now, report, online)
            except StaleWrite:
                continue  # somebody else moved it; next tick sees the new state
        silent_since = now - self._heartbeat * SILENT_HEARTBEATS
        for host in self._hosts.all():
            if host.state != HostState.ONLINE:
                continue
            silent = host.last_seen is None or host.last_seen < silent_since
            if silent and self._hosts.mark_offline(host.name, last_seen_before=silent_since):
                report.hosts_offline.append(host.name)
        if self._runs is not None:
            # After the jobs: a job this tick ended has already moved its run's window.
            runs = self._runs.sweep()
            report.runs_open = runs.runs
            report.run_ends_repaired = runs.repaired
            report.run_targets_added = runs.added
        logger.info(
            "sweep finished",
            extra={
                "timed_out": report.timed_out,
                "expired": report.expired,
                "canceled": report.canceled,
                "requeued": report.requeued,
                "hosts_offline": len(report.hosts_offline),
            },
        )
        return report

    def _sweep_job(
        self, job: Job, now: datetime, report: SweepReport, online: dict[str, bool]
    ) -> None:
        if job.state is JobState.QUEUED:
            if now >= job.deliver_until:
                self._jobs.transition(job, JobState.EXPIRED, finished_at=now, error=NOT_DELIVERED)
                report.expired += 1
            elif job.requeued_at is None and now >= requeue_due(job):
                report.requeued += self._requeue(job, online)
        elif job.cancel_requested_at is not None:
            if now - job.cancel_requested_at >= self._cancel_grace:
                self._jobs.transition(
                    job,
                    JobState.CANCELED,
                    finished_at=now,
                    error=JobErrorInfo(
                        code="canceled",
                        message="canceled; the relay did not confirm within the grace period",
                    ),
                )
                report.canceled += 1
        elif job.state is JobState.DISPATCHED and now >= job.deliver_until + ACCEPT_GRACE:
            # Published, never accepted, and no relay would accept its envelope any more.
            self._jobs.transition(job, JobState.EXPIRED, finished_at=now, error=NOT_DELIVERED)
            report.expired += 1
        else:
            started = job.started_at or job.updated_at
            if now - started >= timedelta(seconds=job.timeout_s) + self._timeout_grace:
                self._jobs.transition(
                    job,
                    JobState.TIMED_OUT,
                    finished_at=now,
                    error=JobErrorInfo(
                        code="timeout", message=f"no result within timeout_s={job.timeout_s}"
                    ),
                )
                if job.host != CLOUD_HOST:
                    # Tell the relay to stop whatever is still running.
                    self._queue.send(job.id, job.attempt, action="cancel")
                report.timed_out += 1

    def _requeue(self, job: Job, online: dict[str, bool]) -> bool:
        """Recovery of a job written but maybe never queued (its send to the queue failed):
        hand it to its queue once more, if its host is online now (an offline host's hello
        re-publishes its jobs anyway). Done once per attempt. Should the first message
        arrive after all, the dispatcher publishes a job at most once more, and a relay
        runs a (job, attempt) at most once.

        Why the sweeper and not a DynamoDB stream on the jobs table: it needs no new
        function, event source or local stream emulation, it also rescues a dispatch
        message that was lost later (e.g. dead-lettered), and the delay it adds to a
        stranded job (REQUEUE_AFTER plus one schedule tick) only hits the rare failure.
        """
        if job.host == CLOUD_HOST:
            queue = self._cloud_queue
        else:
            if job.host not in online:
                host = self._hosts.find(job.host)
                online[job.host] = host is not None and host.state == HostState.ONLINE
            queue = self._queue if online[job.host] else None
        if queue is not None:
            queue.send(job.id, job.attempt)
            logger.info("stranded job queued again", extra={"job_id": job.id})
        self._jobs.transition(job, JobState.QUEUED, requeued=True)
        return queue is not None
