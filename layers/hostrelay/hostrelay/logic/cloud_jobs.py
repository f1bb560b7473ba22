"""Cloud jobs (host `cloud`): claim one from the queue, run its type's handler, record the end.

The discovery function runs every connector that reads a cloud or SaaS source; each source
brings one handler (discovery.aws/gcp/azure, okta.*, workspace.sync), this module owns the job's
state changes, cancellation and the connector metrics, once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from hostrelay.clock import utcnow
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.domain.errors import NotFound, StaleWrite
from hostrelay.domain.jobs import Job, JobErrorInfo, JobState, is_write_back
from hostrelay.observability import logger

CloudJobOutcome = Literal[
    "succeeded", "failed", "canceled", "stale", "missing", "ignored", "cancel_noted"
]
# Per-operation counts a sync result carries, reported as connector_entities_synced.
SYNC_OPERATIONS = ("created", "updated", "unchanged", "deleted")


class CloudJobRequest(BaseModel):
    """Body of a cloud-jobs queue message (the same shape as a dispatch-queue message)."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    attempt: int
    action: Literal["publish", "cancel"] = "publish"


@dataclass(frozen=True)
class RunEnd:
    """How a handler's run ended: the job's final state, result and error."""

    state: JobState
    result: dict[str, Any] | None = None
    error: JobErrorInfo | None = None


class CloudJobHandler(Protocol):
    kind: str  # the connector kind, for metrics

    def run(self, job: Job, should_stop: Callable[[], bool]) -> RunEnd: ...


def job_error(code: str, message: str) -> JobErrorInfo:
    return JobErrorInfo(code=code, message=message[:4096])


def failed(code: str, message: str, result: dict[str, Any] | None = None) -> RunEnd:
    return RunEnd(JobState.FAILED, result, job_error(code, message))


CANCELED = RunEnd(JobState.CANCELED, None, job_error("canceled", "canceled on request"))


def record_sync_metrics(kind: str, job: Job, end: RunEnd, duration_s: float) -> None:
    """Elder's connector counters as EMF metrics, one set per run, by connector and kind."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    connector = job.connector_id or str(job.params.get("connector", ""))
    dimensions = {"kind": kind, "connector": connector}
    result = end.result or {}
    status = "success" if end.state is JobState.SUCCEEDED else end.state.value.lower()
    errors = len(result.get("errors") or []) + (0 if end.error is None else 1)
    points: list[tuple[str, MetricUnit, float, dict[str, str]]] = [
        ("connector_sync_total", MetricUnit.Count, 1, {"status": status}),
        ("connector_sync_errors_total", MetricUnit.Count, errors, {}),
        ("connector_sync_duration_seconds", MetricUnit.Seconds, duration_s, {}),
        ("connector_last_sync_timestamp", MetricUnit.Seconds, utcnow().timestamp(), {}),
    ]
    points += [
        ("connector_entities_synced", MetricUnit.Count, result[op], {"operation": op})
        for op in SYNC_OPERATIONS
        if isinstance(result.get(op), int)
    ]
    for name, unit, value, extra in points:
        with single_metric(
            name=name, unit=unit, value=value, default_dimensions={**dimensions, **extra}
        ):
            pass


class CloudJobRunner:
    """Runs the cloud jobs taken from the cloud-jobs queue; idempotent per message."""

    def __init__(
        self,
        jobs: JobRepository,
        handlers: Mapping[str, CloudJobHandler],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._jobs = jobs
        self._handlers = handlers
        self._clock = clock

    def handle_message(self, body: str) -> CloudJobOutcome:
        """One message of the cloud-jobs queue (a CloudJobRequest as JSON)."""
        return self.handle(CloudJobRequest.model_validate_json(body))

    def handle(self, request: CloudJobRequest) -> CloudJobOutcome:
        try:
            job = self._jobs.get(request.job_id)
        except NotFound:
            logger.warning("cloud job not found", extra={"job_id": request.job_id})
            return "missing"
        handler = self._handlers.get(job.type)
        if handler is None:
            return "ignored"
        if job.attempt != request.attempt or job.state.terminal:
            return "stale"
        if request.action == "cancel":
            return self._cancel(job)
        if job.state in (JobState.QUEUED, JobState.DISPATCHED):
            try:
                job = self._jobs.transition(job, JobState.IN_PROGRESS, started_at=self._clock())
            except StaleWrite:
                return "stale"
        started = self._clock()
        end = handler.run(job, lambda: self._cancel_requested(job))
        duration = (self._clock() - started).total_seconds()
        outcome = self._finish(job, end)
        if outcome != "stale" and not is_write_back(job.type):  # a write-back is no sync run
            record_sync_metrics(handler.kind, job, end, duration)
        return outcome

    def _cancel(self, job: Job) -> CloudJobOutcome:
        """A running job checks for cancel requests itself; a stuck one ends here."""
        if job.cancel_requested_at is None:
            return "cancel_noted"
        return self._finish(job, CANCELED)

    def _cancel_requested(self, job: Job) -> bool:
        try:
            return self._jobs.get(job.id).cancel_requested_at is not None
        except NotFound:
            return True

    def _finish(self, job: Job, end: RunEnd) -> CloudJobOutcome:
        for _ in range(3):
            try:
                self._jobs.transition(
                    job,
                    end.state,
                    started_at=job.started_at or self._clock(),
                    finished_at=self._clock(),
                    result=end.result,
                    error=end.error,
                )
            except StaleWrite:
                job = self._jobs.get(job.id)
                if job.state.terminal:
                    return "stale"
                continue
            if end.state is JobState.SUCCEEDED:
                return "succeeded"
            return "canceled" if end.state is JobState.CANCELED else "failed"
        return "stale"
