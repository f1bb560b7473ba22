"""Apply relay events to jobs and hosts; idempotent, so duplicates and reordering are harmless."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from hostrelay.clock import utcnow
from hostrelay.dal.dispatch_queue import DispatchQueue
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.dal.output_store import OutputStore
from hostrelay.domain.errors import NotFound, StaleWrite
from hostrelay.domain.jobs import Job, JobErrorInfo, JobOutputInfo, JobState, created_at_of
from hostrelay.logic.relay_events import (
    AcceptedEvent,
    BadMessageEvent,
    CertRenewalEvent,
    HeartbeatEvent,
    HelloEvent,
    InventoryEvent,
    OutputEvent,
    ProgressEvent,
    RejectedEvent,
    RelayEvent,
    ResultEvent,
    output_batch,
)
from hostrelay.observability import logger
from hostrelay_contract.envelope import HARMLESS_REJECTIONS, UNATTRIBUTED_REJECTIONS
from hostrelay_contract.error_codes import rejection_code

if TYPE_CHECKING:  # built on first use by the wiring: renewals are rare
    from hostrelay.logic.certificate_renewal import CertificateRenewal

_OUTCOMES = {
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "timed_out": JobState.TIMED_OUT,
    "canceled": JobState.CANCELED,
}
MAX_RETRY_DELAY_S = 900
# Jobs this container wrote last: the next event of a job (its result after `accepted`)
# starts from what was written instead of reading it again. Safe because every change is a
# conditional write on state, attempt and version: if anyone else changed the job since,
# the write fails and the job is read afresh.
WRITTEN_JOBS_KEPT = 1024

T = TypeVar("T")


class OutputIncomplete(RuntimeError):
    """A result came before all of its job's output was stored; deliver it again later."""


def _relay_time(value: float | None, earliest: datetime, latest: datetime) -> datetime:
    """A relay's unix timestamp, kept within [earliest, latest] (its clock may be off)."""
    if value is None:
        return latest
    try:
        moment = datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return latest
    return min(max(moment, earliest), latest)


def _error_of(event: ResultEvent) -> JobErrorInfo | None:
    return JobErrorInfo(code=event.error.code, message=event.error.message) if event.error else None


class EventIngester:
    def __init__(
        self,
        jobs: JobRepository,
        hosts: HostRepository,
        outputs: OutputStore,
        queue: DispatchQueue,
        *,
        retry_base_s: int = 5,
        inventory_sink: Callable[[str, InventoryEvent], None] | None = None,
        renewal: Callable[[], CertificateRenewal] | None = None,
        output_wait_s: float = 3.0,
        on_result: Callable[[Job], None] | None = None,
    ) -> None:
        self._jobs = jobs
        self._hosts = hosts
        self._outputs = outputs
        self._queue = queue
        self._retry_base_s = retry_base_s
        self._inventory_sink = inventory_sink
        self._renewal = renewal
        self._output_wait_s = output_wait_s
        # Told of each job a result ended, once, after it is written (a sync's cursor).
        self._on_result = on_result
        self._output_wait_left = output_wait_s
        self._written: OrderedDict[str, Job] = OrderedDict()

    def begin_batch(self) -> None:
        """A new batch of events: results of one batch wait `output_wait_s` in all, so a
        batch full of early results cannot outlast the function's timeout."""
        self._output_wait_left = self._output_wait_s

    def apply(self, host: str, event: RelayEvent, *, final_delivery: bool = True) -> str:
        """Apply one event from `host`; returns a short word saying what happened.

        A result whose output is not all stored yet waits for it a little; then it raises
        OutputIncomplete, unless this is the event's `final_delivery`: then the job ends
        with the log it has and `output.missing` says how many chunks never came.
        """
        if isinstance(event, HelloEvent):
            return self._hello(host, event)
        if isinstance(event, HeartbeatEvent):
            # Presence is the hello's and the heartbeat's (every heartbeat_s, a third of the
            # sweeper's silence limit): job and data events would only repeat it, a write per
            # result for a fleet run whose hosts answer once each.
            self._hosts.seen(host, relay_version=event.relay_version or None)
            return "heartbeat"
        if isinstance(event, BadMessageEvent):
            logger.warning(
                "relay reported a bad message", extra={"host": host, "reason": event.reason}
            )
            return "bad_message"
        if isinstance(event, RejectedEvent):
            return self._rejected(host, event)
        if isinstance(event, CertRenewalEvent):
            return self._renewal().renew(host, event.csr) if self._renewal else "ignored"
        if isinstance(event, OutputEvent):
            return self.store_outputs([(host, event)])[0]
        if isinstance(event, ResultEvent) and event.job_id not in self._written:
            finished = self._finish_unread(host, event)
            if finished is not None:
                return finished
        # Data events may arrive after the result (SQS does not keep order): they still count.
        data_event = isinstance(event, InventoryEvent)
        job = self._job_of(host, event.job_id, event.attempt, allow_terminal=data_event)
        if job is None:
            return "ignored"
        if isinstance(event, InventoryEvent):
            if self._inventory_sink is None:
                return "ignored"
            self._inventory_sink(host, event)
            return "inventory"
        return self._with_retries(
            job, lambda current: self._job_event(current, event, final_delivery)
        )

    def store_outputs(self, events: Sequence[tuple[str, OutputEvent]]) -> list[str]:
        """Apply many `output` events at once: one job read per job, one batched write.

        What `apply` does for each of them, in a handful of calls instead of two per event.
        Returns what happened to each event, in order; raises if the write failed (then
        none of them counts as stored, and storing them again is harmless).
        """
        jobs: dict[tuple[str, str, int], Job | None] = {}
        keys = []
        for host, event in events:
            key = (host, event.job_id, event.attempt)
            if key not in jobs:
                jobs[key] = self._job_of(host, event.job_id, event.attempt, allow_terminal=True)
            keys.append(key)
        writes = [
            (host, event.job_id, event.attempt, output_batch(event))
            for key, (host, event) in zip(keys, events, strict=True)
            if jobs[key] is not None
        ]
        if writes:
            self._outputs.put_batches(writes)
        # Late chunks of a finished job: its log is rebuilt once for all of them.
        outcome = {key: self._after_output(job) for key, job in jobs.items() if job is not None}
        return [outcome.get(key, "ignored") for key in keys]

    def _after_output(self, job: Job) -> str:
        # Chunks the log lacked (its result gave up waiting): the log is rebuilt with them.
        if job.state.terminal and job.output is not None and job.output.missing:
            output = self._outputs.finalize(
                job.host,
                job.id,
                job.attempt,
                expected_chunks=job.output.chunks + job.output.missing,
                accept_missing=True,
            )
            assert output is not None  # accept_missing
            self._jobs.replace_output(job, output)
            return "output_late"
        return "output"

    def _output_of(self, job: Job, chunks: int, final_delivery: bool) -> JobOutputInfo:
        """The job's log once all `chunks` the relay sent are stored (see `apply`)."""
        started = time.monotonic()
        deadline = started + self._output_wait_left
        pause = 0.01
        while True:
            # Once the wait is over, the last delivery takes what there is in the same read.
            waited_enough = time.monotonic() >= deadline
            output = self._outputs.finalize(
                job.host,
                job.id,
                job.attempt,
                expected_chunks=chunks,
                accept_missing=final_delivery and waited_enough,
            )
            if output is not None or waited_enough:
                break
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.5)
        self._output_wait_left = max(0.0, self._output_wait_left - (time.monotonic() - started))
        if output is None:
            raise OutputIncomplete(f"output of job {job.id} is not all stored yet")
        if output.missing:
            logger.warning(
                "job output incomplete", extra={"job_id": job.id, "missing_chunks": output.missing}
            )
        return output

    def _hello(self, host: str, event: HelloEvent) -> str:
        self._hosts.seen(host, relay_version=event.relay_version or None, connected=True)
        if self._renewal is not None and event.cert_id:
            self._renewal().confirm(host, event.cert_id)
        republished = 0
        for job in self._jobs.pending_for_host(host):
            self._queue.send(job.id, job.attempt)
            republished += 1
        logger.info("relay said hello", extra={"host": host, "republished": republished})
        return "hello"

    def _job_of(
        self, host: str, job_id: str, attempt: int, *, allow_terminal: bool = False
    ) -> Job | None:
        job = None if allow_terminal else self._written.get(job_id)
        if job is None or job.attempt < attempt:
            # Data events read afresh: they must see a result another container just wrote.
            try:
                job = self._jobs.get(job_id)
            except NotFound:
                logger.warning("event for unknown job", extra={"host": host, "job_id": job_id})
                return None
        if job.host != host:
            # A host may only speak for its own jobs: the topic names the sender.
            logger.warning("event for another host's job", extra={"host": host, "job_id": job_id})
            return None
        if job.attempt != attempt or (job.state.terminal and not allow_terminal):
            return None
        return job

    def _remember(self, written: Job) -> Job:
        """Keep a job this container just wrote, for the next event of it."""
        self._written[written.id] = written
        self._written.move_to_end(written.id)
        while len(self._written) > WRITTEN_JOBS_KEPT:
            self._written.popitem(last=False)
        return written

    def _with_retries(self, job: Job, step: Callable[[Job], str]) -> str:
        for _ in range(5):
            try:
                return step(job)
            except StaleWrite:
                self._written.pop(job.id, None)
                refreshed = self._jobs.get(job.id)
                if refreshed.state.terminal or refreshed.attempt != job.attempt:
                    return "stale"
                job = refreshed
        return "stale"

    def _job_event(self, job: Job, event: RelayEvent, final_delivery: bool) -> str:
        now = utcnow()
        if isinstance(event, AcceptedEvent):
            if job.state in (JobState.QUEUED, JobState.DISPATCHED):
                self._remember(self._jobs.transition(job, JobState.IN_PROGRESS, started_at=now))
                return "started"
            return "duplicate"
        if isinstance(event, ProgressEvent):
            progress = {"done": event.done, "total": event.total, "message": event.message}
            if job.state in (JobState.QUEUED, JobState.DISPATCHED):
                self._remember(
                    self._jobs.transition(
                        job, JobState.IN_PROGRESS, started_at=now, progress=progress
                    )
                )
            else:
                self._remember(self._jobs.transition(job, job.state, progress=progress))
            return "progress"
        if isinstance(event, ResultEvent):
            return self._result(job, event, final_delivery)
        return "ignored"

    def _result(self, job: Job, event: ResultEvent, final_delivery: bool) -> str:
        now = utcnow()
        error = _error_of(event)
        retry = (
            event.outcome == "failed"
            and event.error is not None
            and event.error.retryable
            and job.attempt < job.max_attempts
        )
        if retry:
            delay = min(MAX_RETRY_DELAY_S, self._retry_base_s * 2 ** (job.attempt - 1))
            self._remember(
                self._jobs.transition(
                    job,
                    JobState.QUEUED,
                    attempt=job.attempt + 1,
                    started_at=None,
                    error=error,
                    result=event.result,
                    progress=None,
                )
            )
            self._queue.send(job.id, job.attempt + 1, delay_s=delay)
            return "retrying"
        output = None
        if event.output is not None and event.output.chunks > 0:
            output = self._output_of(job, event.output.chunks, final_delivery)
        self._ended(
            self._jobs.transition(
                job,
                _OUTCOMES[event.outcome],
                # A job that ended at once was never reported `accepted`: its result says when.
                started_at=job.started_at or _relay_time(event.started_at, job.created_at, now),
                finished_at=now,
                result=event.result,
                error=error,
                output=output,
            )
        )
        return event.outcome

    def _ended(self, written: Job) -> None:
        self._remember(written)
        if self._on_result is not None:
            self._on_result(written)

    def _finish_unread(self, host: str, event: ResultEvent) -> str | None:
        """The usual result (no output to wait for, no retry to schedule) ends its job in one
        conditional write, without reading the job first; None when it is not that simple
        (or the write's condition failed): then the job is read and the result applied."""
        if event.output is not None and event.output.chunks > 0:
            return None
        if event.outcome == "failed" and event.error is not None and event.error.retryable:
            return None  # a retry, if attempts are left: that needs the job
        created_at = created_at_of(event.job_id)
        if created_at is None:
            return None
        now = utcnow()
        try:
            written = self._jobs.finish_unread(
                event.job_id,
                host=host,
                attempt=event.attempt,
                target=_OUTCOMES[event.outcome],
                finished_at=now,
                started_at=_relay_time(event.started_at, created_at, now),
                result=event.result,
                error=_error_of(event),
            )
        except StaleWrite:
            return None
        self._ended(written)
        return event.outcome

    def _rejected(self, host: str, event: RejectedEvent) -> str:
        if event.job_id is None or event.reason in UNATTRIBUTED_REJECTIONS:
            logger.warning(
                "relay rejected an unverified envelope",
                extra={"host": host, "reason": event.reason},
            )
            return "rejected_unattributed"
        logger.warning(
            "relay rejected an envelope",
            extra={"host": host, "job_id": event.job_id, "reason": event.reason},
        )
        if event.reason in HARMLESS_REJECTIONS:
            return "rejected_ignored"
        job = self._job_of(host, event.job_id, event.attempt or 1)
        if job is None:
            return "ignored"
        error = JobErrorInfo(code=rejection_code(event.reason), message=event.message)

        def reject(current: Job) -> str:
            self._remember(
                self._jobs.transition(current, JobState.REJECTED, finished_at=utcnow(), error=error)
            )
            return "rejected"

        return self._with_retries(job, reject)
