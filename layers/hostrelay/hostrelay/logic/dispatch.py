"""Dispatch: sign a queued job (or a cancel) and publish it to its host's jobs topic."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict

from hostrelay.clock import utcnow
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.iot_publisher import IotPublisher
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.dal.signing_keys import SigningKeyStore
from hostrelay.domain.errors import NotFound, StaleWrite
from hostrelay.domain.hosts import HostState
from hostrelay.domain.jobs import NOT_DELIVERED, Job, JobState
from hostrelay.envelope import build_envelope, sign_envelope
from hostrelay.observability import logger
from hostrelay_contract.envelope import CANCEL_TYPE


class DispatchRequest(BaseModel):
    """Body of a dispatch-queue message."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    attempt: int
    action: Literal["publish", "cancel"] = "publish"
    # The job as its creator wrote it, so it need not be read back: acted on only through
    # a write conditional on its version (dal/dispatch_queue.py).
    job: Job | None = None
    # The job's write found its host online (a condition of its transaction): trusted, like
    # a host this container found online, for ONLINE_MEMORY_S after the job's creation.
    host_online: bool = False


DispatchOutcome = Literal["published", "cancel_sent", "host_offline", "expired", "stale", "missing"]

# How long a container trusts that a host it found online still is. Publishing to a host
# that just went offline is harmless (its hello re-publishes the job); a host is never
# remembered offline, so a job is not held back from a host that just came back.
ONLINE_MEMORY_S = 2.0


class Dispatcher:
    def __init__(
        self,
        jobs: JobRepository,
        hosts: HostRepository,
        keys: SigningKeyStore,
        publisher: IotPublisher,
        envelope_ttl_s: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jobs = jobs
        self._hosts = hosts
        self._keys = keys
        self._publisher = publisher
        self._ttl = envelope_ttl_s
        self._monotonic = monotonic
        self._found_online: dict[str, float] = {}  # host -> when this container saw it online

    @cached_property
    def _signing_key(self) -> Ed25519PrivateKey:
        return self._keys.load_or_create()

    def handle_message(self, body: str) -> DispatchOutcome:
        """One message of the dispatch queue: a DispatchRequest as JSON, or the record
        Lambda sends to the on-failure destination of an invocation that failed (its
        `requestPayload` is the DispatchRequest)."""
        message = json.loads(body)
        if isinstance(message, dict) and "requestPayload" in message:
            return self.handle_invocation(message["requestPayload"])
        return self.handle(DispatchRequest.model_validate(message))

    def handle_invocation(self, event: Mapping[str, Any]) -> DispatchOutcome:
        """The event of an asynchronous invocation by the API (a DispatchRequest)."""
        return self.handle(DispatchRequest.model_validate(event))

    def handle(self, request: DispatchRequest, now: datetime | None = None) -> DispatchOutcome:
        now = now or utcnow()
        carried = request.job
        if request.action == "publish" and carried is not None and carried.id == request.job_id:
            job = carried
            if request.host_online:
                self._found_online_at(job.host, job.created_at, now)
        else:
            try:
                job = self._jobs.get(request.job_id)
            except NotFound:
                logger.warning("dispatch for unknown job", extra={"job_id": request.job_id})
                return "missing"
        if job.attempt != request.attempt:
            return "stale"
        if request.action == "cancel":
            # Also after TIMED_OUT/CANCELED: the relay may still be running the job.
            self._publish(job, CANCEL_TYPE, {}, now)
            return "cancel_sent"
        if job.state.terminal:
            return "stale"
        return self._publish_job(job, now)

    def _found_online_at(self, name: str, moment: datetime, now: datetime) -> None:
        """Remember `name` found online at `moment` (earlier than now by so much)."""
        age = max(0.0, (now - moment).total_seconds())
        seen = self._monotonic() - age
        if seen > self._found_online.get(name, float("-inf")):
            self._found_online[name] = seen

    def _host_online(self, name: str) -> bool:
        now = self._monotonic()
        if now - self._found_online.get(name, float("-inf")) < ONLINE_MEMORY_S:
            return True
        host = self._hosts.find(name)
        if host is None or host.state != HostState.ONLINE:
            self._found_online.pop(name, None)
            return False
        self._found_online[name] = now
        return True

    def _publish_job(self, job: Job, now: datetime) -> DispatchOutcome:
        if job.state not in (JobState.QUEUED, JobState.DISPATCHED):
            return "stale"  # already running: the relay has it
        if now >= job.deliver_until:
            # Never delivered late, also when a hello asks to publish it again.
            return self._expire(job, now)
        if not self._host_online(job.host):
            # Stays QUEUED: the relay's hello re-publishes it, the sweeper expires it.
            return "host_offline"
        if job.state is JobState.QUEUED:
            try:
                job = self._jobs.transition(job, JobState.DISPATCHED, dispatched=True)
            except StaleWrite:  # changed since read (or since carried): canceled, say
                current = self._jobs.get(job.id)
                if current.state is not JobState.DISPATCHED or current.attempt != job.attempt:
                    return "stale"
                job = current
        self._publish(job, job.type, job.params, now, not_after=job.deliver_until)
        return "published"

    def _expire(self, job: Job, now: datetime) -> DispatchOutcome:
        """A QUEUED job past deliver_by ends EXPIRED at once (it was never published); a
        DISPATCHED one may still be in its relay's hands: the sweeper ends it after a grace."""
        if job.state is JobState.QUEUED:
            try:
                self._jobs.transition(
                    job,
                    JobState.EXPIRED,
                    finished_at=now,
                    error=NOT_DELIVERED,
                )
            except StaleWrite:
                return "stale"
        logger.info("job not published after deliver_by", extra={"job_id": job.id})
        return "expired"

    def _publish(
        self,
        job: Job,
        job_type: str,
        params: dict[str, object],
        now: datetime,
        *,
        not_after: datetime | None = None,
    ) -> None:
        envelope = build_envelope(
            job_id=job.id,
            attempt=job.attempt,
            job_type=job_type,
            host=job.host,
            params=dict(params),
            timeout_s=job.timeout_s,
            ttl_s=self._ttl,
            not_after=int(not_after.timestamp()) if not_after is not None else None,
            now=now.timestamp(),
        )
        self._publisher.publish(job.host, sign_envelope(envelope, self._signing_key))
        logger.info(
            "envelope published",
            extra={"job_id": job.id, "attempt": job.attempt, "type": job_type, "host": job.host},
        )
