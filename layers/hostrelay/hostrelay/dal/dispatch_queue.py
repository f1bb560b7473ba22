"""The dispatch queue: asks the dispatch function to publish a job or a cancel."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError

from hostrelay.dal.aws_clients import client
from hostrelay.domain.jobs import MAX_DISPATCH_DELAY, Job

DispatchAction = Literal["publish", "cancel"]
MAX_SQS_DELAY_S = int(MAX_DISPATCH_DELAY.total_seconds())
# SQS takes 256 KiB a message (and Lambda as much an asynchronous invocation's event): a
# job bigger than this goes by its id alone.
MAX_CARRIED_JOB_BYTES = 200_000
# SendMessageBatch takes 10 messages and 256 KiB in all.
MAX_BATCH_MESSAGES = 10
MAX_BATCH_BYTES = 250_000


class QueueUnavailable(RuntimeError):
    """SQS did not take the message (throttled, unreachable, denied)."""


class DispatchQueue:
    """A queue of dispatch requests. Whether its messages carry the job is the queue's own
    property, told at wiring by the consumer it feeds: the dispatcher takes the carried job
    (logic/dispatch.py DispatchRequest.job), the cloud-jobs function refuses any field it
    does not know (logic/cloud_jobs.py CloudJobRequest) and reads the job when it runs it."""

    def __init__(self, queue_url: str, *, carries_jobs: bool) -> None:
        self._queue_url = queue_url
        self.carries_jobs = carries_jobs

    def send(
        self,
        job_id: str,
        attempt: int,
        action: DispatchAction = "publish",
        delay_s: int = 0,
        *,
        job: Job | None = None,
        host_online: bool = False,
    ) -> None:
        """Ask for `action` on the job. With `job` (as just written), a queue that carries
        jobs puts it in the message, so the dispatcher need not read it back (its write is
        conditional on the version carried, so a copy that is no longer current is never
        acted on); a queue that does not leaves it out."""
        carried = job if self.carries_jobs else None
        body = dispatch_body(job_id, attempt, action, carried, host_online=host_online)
        try:
            client("sqs").send_message(
                QueueUrl=self._queue_url,
                MessageBody=body,
                DelaySeconds=max(0, min(MAX_SQS_DELAY_S, delay_s)),
            )
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(f"dispatch queue refused job {job_id}: {exc}") from exc

    def send_jobs(self, jobs: Sequence[Job]) -> None:
        """Ask for the publish of new jobs, each message carrying its job as `send` does, in
        batches of up to 10 (SendMessageBatch). Every batch is tried; raises QueueUnavailable
        afterwards if any message was not taken."""
        refused: list[str] = []
        carried = self.carries_jobs
        for batch in _batches(
            [
                (job.id, dispatch_body(job.id, job.attempt, "publish", job if carried else None))
                for job in jobs
            ]
        ):
            entries = [
                {"Id": str(index), "MessageBody": body} for index, (_, body) in enumerate(batch)
            ]
            try:
                answer = client("sqs").send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            except (BotoCoreError, ClientError):
                refused.extend(job_id for job_id, _ in batch)
                continue
            refused.extend(batch[int(failed["Id"])][0] for failed in answer.get("Failed", []))
        if refused:
            raise QueueUnavailable(f"dispatch queue refused jobs {', '.join(refused)}")


def dispatch_body(
    job_id: str,
    attempt: int,
    action: DispatchAction = "publish",
    job: Job | None = None,
    *,
    host_online: bool = False,
) -> str:
    """A dispatch request as JSON (logic/dispatch.py's DispatchRequest), carrying `job` when
    it fits in a message, and `host_online` when the job's write found its host online."""
    request: dict[str, object] = {"job_id": job_id, "attempt": attempt, "action": action}
    if host_online:
        request["host_online"] = True
    body = json.dumps(request)
    if job is not None:
        carried = f'{body[:-1]}, "job": {job.model_dump_json()}}}'
        if len(carried.encode()) <= MAX_CARRIED_JOB_BYTES:
            body = carried
    return body


def _batches(messages: list[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
    """(job id, body) pairs in groups SendMessageBatch takes: 10 at most, 250 KB in all."""
    batch: list[tuple[str, str]] = []
    size = 0
    for job_id, body in messages:
        length = len(body.encode())
        if batch and (len(batch) == MAX_BATCH_MESSAGES or size + length > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((job_id, body))
        size += length
    if batch:
        yield batch
