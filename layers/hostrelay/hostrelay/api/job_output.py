"""Reading a job's output chunks page by page, for `jobs logs --follow`."""

from __future__ import annotations

from datetime import timedelta

from hostrelay.api.models import OutputChunkOut, OutputPage
from hostrelay.clock import utcnow
from hostrelay.dal.output_store import OutputStore
from hostrelay.domain.principal import Principal
from hostrelay.logic.jobs import JobService

# Chunks may arrive after the result; past this, missing ones are taken as lost.
LATE_CHUNK_GRACE = timedelta(seconds=60)


class JobOutputReader:
    def __init__(self, jobs: JobService, output: OutputStore) -> None:
        self._jobs = jobs
        self._output = output

    def page(self, job_id: str, principal: Principal, *, after_seq: int, limit: int) -> OutputPage:
        """Chunks of the job's current attempt after `after_seq`.

        `complete` once the job has ended and nothing is left to read: every chunk the result
        counted has been returned, or (no count, or a grace period after the end) the page
        came back short.
        """
        job = self._jobs.get(job_id, principal)  # read first: the state decides `complete`
        stored = self._output.chunks(
            job.host, job.id, job.attempt, after_seq=after_seq, limit=limit
        )
        chunks = [OutputChunkOut.from_bytes(c.seq, c.stream, c.data) for c in stored]
        next_seq = chunks[-1].seq if chunks else after_seq
        short = len(chunks) < limit
        if not job.state.terminal:
            complete = False
        elif job.output is not None and job.output.chunks:
            ended = job.finished_at or job.updated_at
            late = utcnow() - ended > LATE_CHUNK_GRACE
            sent = job.output.chunks + job.output.missing
            complete = next_seq >= sent - 1 or (short and late)
        else:
            complete = short
        return OutputPage(
            job_id=job.id, attempt=job.attempt, chunks=chunks, next_seq=next_seq, complete=complete
        )
