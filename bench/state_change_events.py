"""Bench: what putting a `Job State Change` event adds to the write that ends a job.

In-process moto with the resources of template.yaml (the bus included, plus the local
recorder rule and queue, so each event is also matched and delivered as on the stack). Each
round creates `--jobs` QUEUED ping jobs and ends them SUCCEEDED through
`JobRepository.transition`: once with the state-change publisher (the terminal write, then
PutEvents) and once without it (the baseline, the same write alone), interleaved so both see
the same machine. It prints the median and p95 per job and the ratio with/without. moto's
absolute timings mean little; the ratio and the added milliseconds show the extra request
the ending function makes per job (one PutEvents of ~0.6 KB: on AWS a few ms, $1 a million).

    .venv/bin/python bench/state_change_events.py [--jobs 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

import boto3
from moto import mock_aws
from ulid import ULID

from hostrelay.clock import utcnow
from hostrelay.dal.aws_clients import client
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.dal.state_change_events import StateChangePublisher
from hostrelay.dal.tables import JobRecord, bind_table
from hostrelay.domain.jobs import Job, JobState
from hostrelay_local.aws_resources import create_resources
from hostrelay_local.event_recorder import EventRecorder, attach_recorder


def new_job() -> Job:
    now = utcnow()
    return Job(
        id=str(ULID()),
        type="ping",
        host="dc01",
        params={},
        state=JobState.QUEUED,
        timeout_s=60,
        created_by="bench",
        created_at=now,
        updated_at=now,
    )


def end_jobs(repo: JobRepository, count: int) -> list[float]:
    """Seconds each terminal write took (QUEUED jobs ended SUCCEEDED, as a result would)."""
    jobs = [repo.create(new_job()) for _ in range(count)]
    took = []
    for job in jobs:
        started = time.perf_counter()
        repo.transition(job, JobState.SUCCEEDED, finished_at=utcnow(), result={"pong": True})
        took.append(time.perf_counter() - started)
    return took


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=300, help="jobs ended per side and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with mock_aws():
        client.cache_clear()
        session = boto3.session.Session(region_name="us-east-1")
        resources = create_resources(session)
        bus = resources.refs["StateChangeBus"]
        recorder = EventRecorder(session.client("sqs"), attach_recorder(session, bus))
        bind_table(JobRecord, resources.refs["JobsTable"], region="us-east-1")
        baseline = JobRepository(retention=timedelta(days=1))
        with_events = JobRepository(retention=timedelta(days=1), events=StateChangePublisher(bus))
        end_jobs(baseline, 20)  # warm both paths (clients, moto's first requests)
        end_jobs(with_events, 20)
        recorder.poll()
        without: list[float] = []
        with_: list[float] = []
        for _ in range(args.rounds):
            without += end_jobs(baseline, args.jobs)
            with_ += end_jobs(with_events, args.jobs)
            recorder.poll()  # the stack reads its queue all along: keep it as short here
        delivered = len(recorder.events) - 20
    base_median, base_p95 = summary(without)
    events_median, events_p95 = summary(with_)
    total = args.jobs * args.rounds
    print(f"jobs ended per side: {total} (in-process moto, {args.rounds} interleaved rounds)")
    print(f"{'':34}{'median ms':>10}{'p95 ms':>10}")
    print(f"{'terminal write (baseline)':34}{base_median:10.2f}{base_p95:10.2f}")
    print(f"{'terminal write + PutEvents':34}{events_median:10.2f}{events_p95:10.2f}")
    print(
        f"added per job: {events_median - base_median:.2f} ms median "
        f"(ratio with/without: {events_median / base_median:.2f}x median, "
        f"{events_p95 / base_p95:.2f}x p95)"
    )
    print(f"events delivered to the recorder queue: {delivered} of {total}")


if __name__ == "__main__":
    main()
