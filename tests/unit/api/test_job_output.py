"""When a job's output counts as complete, with in-memory jobs and chunks (no network)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from hostrelay.clock import utcnow
from hostrelay.domain.jobs import Job, JobOutputInfo, JobState
from hostrelay.domain.principal import Principal, Scope
from hostrelay.logic.job_output import JobOutputReader

READER = Principal(token_id="t", name="r", scopes=[Scope.READER])


@dataclass
class Chunk:
    seq: int
    stream: str
    data: bytes


class Jobs:
    def __init__(self, job: Job) -> None:
        self.job = job

    def get(self, job_id: str, principal: Principal) -> Job:
        return self.job


class Store:
    def __init__(self, count: int) -> None:
        self.stored = [Chunk(seq, "stdout", f"{seq}\n".encode()) for seq in range(count)]

    def chunks(
        self, host: str, job_id: str, attempt: int, after_seq: int, limit: int
    ) -> list[Chunk]:
        return [c for c in self.stored if c.seq > after_seq][:limit]


def make_job(state: JobState, *, chunks: int | None = None, ended_ago_s: float = 0) -> Job:
    now = utcnow()
    ended = now - timedelta(seconds=ended_ago_s)
    fields: dict[str, Any] = {}
    if chunks is not None:
        fields["output"] = JobOutputInfo(size=chunks * 2, chunks=chunks)
    return Job(
        id="01ARZ3NDEKTSV4RRFFQ69G5FAV", type="exec", host="dc01", params={}, state=state,
        timeout_s=60, created_by="t", created_at=ended, updated_at=ended, finished_at=ended,
        **fields,
    )  # fmt: skip


def page(job: Job, stored: int, after_seq: int = -1, limit: int = 100) -> Any:
    reader = JobOutputReader(Jobs(job), Store(stored))  # type: ignore[arg-type]
    return reader.page(job.id, READER, after_seq=after_seq, limit=limit)


def test_running_job_is_never_complete() -> None:
    result = page(make_job(JobState.IN_PROGRESS), stored=2)
    assert [c.seq for c in result.chunks] == [0, 1]
    assert result.next_seq == 1 and not result.complete


def test_ended_job_completes_once_every_counted_chunk_is_read() -> None:
    job = make_job(JobState.SUCCEEDED, chunks=3)
    first = page(job, stored=3, limit=2)
    assert first.next_seq == 1 and not first.complete
    rest = page(job, stored=3, after_seq=first.next_seq, limit=2)
    assert rest.next_seq == 2 and rest.complete


def test_chunks_arriving_after_the_result_are_waited_for() -> None:
    # The result counted 3 chunks but only 2 have arrived yet
    assert not page(make_job(JobState.FAILED, chunks=3), stored=2).complete


def test_lost_chunks_stop_blocking_after_a_grace_period() -> None:
    assert page(make_job(JobState.FAILED, chunks=3, ended_ago_s=600), stored=2).complete


@pytest.mark.parametrize("state", [JobState.CANCELED, JobState.EXPIRED])
def test_ended_job_without_output_is_complete(state: JobState) -> None:
    result = page(make_job(state), stored=0)
    assert result.chunks == [] and result.next_seq == -1 and result.complete
