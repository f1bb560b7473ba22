"""Reading a job's output chunks page by page, for `jobs logs --follow`."""

from __future__ import annotations

from dataclasses import dataclass

from hostrelay.clock import utcnow
from hostrelay.dal.output_store import OutputStore
from hostrelay.domain.output import OutputChunk, output_complete
from hostrelay.domain.principal import Principal
from hostrelay.logic.jobs import JobService


@dataclass(frozen=True)
class OutputRead:
    """One page of a job's output: the chunks of its current attempt after a seq."""

    job_id: str
    attempt: int
    chunks: list[OutputChunk]
    next_seq: int
    complete: bool


class JobOutputReader:
    def __init__(self, jobs: JobService, output: OutputStore) -> None:
        self._jobs = jobs
        self._output = output

    def page(self, job_id: str, principal: Principal, *, after_seq: int, limit: int) -> OutputRead:
        """Chunks of the job's current attempt after `after_seq`, and whether that is all."""
        job = self._jobs.get(job_id, principal)  # read first: the state decides `complete`
        chunks = self._output.chunks(
            job.host, job.id, job.attempt, after_seq=after_seq, limit=limit
        )
        next_seq = chunks[-1].seq if chunks else after_seq
        complete = output_complete(
            job, next_seq=next_seq, short_page=len(chunks) < limit, now=utcnow()
        )
        return OutputRead(job.id, job.attempt, chunks, next_seq, complete)
