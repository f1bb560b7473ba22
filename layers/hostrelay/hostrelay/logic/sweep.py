"""The sweeper: timeouts, expired deliveries, unconfirmed cancels and silent hosts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hostrelay.clock import utcnow
from hostrelay.dal.dispatch_queue import DispatchQueue
from hostrelay.dal.hosts_repo import HostRepository, HostState
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.domain.errors import StaleWrite
from hostrelay.domain.jobs import JobErrorInfo, JobState
from hostrelay.job_types import CLOUD_HOST
from hostrelay.observability import logger

SILENT_HEARTBEATS = 3


@dataclass
class SweepReport:
    timed_out: int = 0
    expired: int = 0
    canceled: int = 0
    hosts_offline: list[str] = field(default_factory=list)


class Sweeper:
    def __init__(
        self,
        jobs: JobRepository,
        hosts: HostRepository,
        queue: DispatchQueue,
        *,
        heartbeat_s: int,
        cancel_grace_s: int,
        timeout_grace_s: int,
    ) -> None:
        self._jobs = jobs
        self._hosts = hosts
        self._queue = queue
        self._heartbeat = timedelta(seconds=heartbeat_s)
        self._cancel_grace = timedelta(seconds=cancel_grace_s)
        self._timeout_grace = timedelta(seconds=timeout_grace_s)

    def sweep(self, now: datetime | None = None) -> SweepReport:
        now = now or utcnow()
        report = SweepReport()
        for job in self._jobs.due(now):
            try:
                if job.state is JobState.QUEUED:
                    self._jobs.transition(
                        job,
                        JobState.EXPIRED,
                        finished_at=now,
                        error=JobErrorInfo(
                            code="expired", message="not delivered before deliver_by"
                        ),
                    )
                    report.expired += 1
                elif job.cancel_requested_at is not None:
                    if now - job.cancel_requested_at >= self._cancel_grace:
                        self._jobs.transition(
                            job,
                            JobState.CANCELED,
                            finished_at=now,
                            error=JobErrorInfo(
                                code="canceled",
                                message=(
                                    "canceled; the relay did not confirm within the grace period"
                                ),
                            ),
                        )
                        report.canceled += 1
                else:
                    started = job.started_at or job.updated_at
                    if now - started >= timedelta(seconds=job.timeout_s) + self._timeout_grace:
                        self._jobs.transition(
                            job,
                            JobState.TIMED_OUT,
                            finished_at=now,
                            error=JobErrorInfo(
                                code="timeout",
                                message=f"no result within timeout_s={job.timeout_s}",
                            ),
                        )
                        if job.host != CLOUD_HOST:
                            # Tell the relay to stop whatever is still running.
                            self._queue.send(job.id, job.attempt, action="cancel")
                        report.timed_out += 1
            except StaleWrite:
                continue  # somebody else moved it; next tick sees the new state
        silent_since = now - self._heartbeat * SILENT_HEARTBEATS
        for host in self._hosts.all():
            if host.state != HostState.ONLINE:
                continue
            silent = host.last_seen is None or host.last_seen < silent_since
            if silent and self._hosts.mark_offline(host.name, last_seen_before=silent_since):
                report.hosts_offline.append(host.name)
        logger.info(
            "sweep finished",
            extra={
                "timed_out": report.timed_out,
                "expired": report.expired,
                "canceled": report.canceled,
                "hosts_offline": len(report.hosts_offline),
            },
        )
        return report
