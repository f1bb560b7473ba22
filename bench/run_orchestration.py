"""Bench: a fleet run of `ping` over 200 hosts, in process (moto), against 200 single jobs.

The control plane of template.yaml runs in this process as in bench/cost_per_job.py (the same
pipeline: API, dispatch and results functions fed by their SQS event sources, the relays' result
events routed by the template's topic rules). The relays answer every envelope published, at
once. Scenarios, each in a fresh moto account with 200 enrolled, online hosts:

  baseline   200 POST /v1/jobs (one per host), then dispatch and results until all ended
  run W      one POST /v1/runs over the 200 hosts with max_concurrency W (200, 50, 10)

Printed per scenario: wall time from the first POST to the last target's end (the run's
terminal state), this process's CPU time per target over the same span (the machine is
shared: CPU time is the steadier figure), targets dispatched per second, the peak of jobs in
flight (from the jobs' own created/finished timestamps), and DynamoDB and SQS calls per
target (botocore's calls, all callers; by operation at the end). Runs are compared with the
baseline measured in the same process: the ratio is run / baseline. Functions run one after
another here (one core, moto in process); in AWS the dispatch and results functions scale
out, so wall time here is an upper bound.

moto runs as the local stack runs it (moto_endpoint.tune_moto). `--whole-table-rollback`
keeps moto's own TransactWriteItems rollback, which deep-copies every table a transaction
touches once per item, so each start or end of a target costs time in proportion to the
jobs and runs tables' sizes: the "before" of the per-item rollback. DynamoDB's cost of a
transaction does not grow with the table; the calls-per-target columns carry over to AWS.

    python bench/run_orchestration.py            # 200 hosts, windows 200 50 10
    python bench/run_orchestration.py --hosts 50 --windows 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import Counter
from datetime import datetime
from typing import Any

from cost_per_job import REGION, PingPipeline, RequestCounter, Tally
from moto import mock_aws

from hostrelay_local.moto_endpoint import tune_moto


class FleetPipeline(PingPipeline):
    """The ping pipeline with many hosts, driven in batches as Lambda's event sources do."""

    def __init__(self, counter: RequestCounter, hosts: int) -> None:
        super().__init__(counter)
        from hostrelay.dal.hosts_repo import HostRepository

        repo = HostRepository()
        self.hosts = [f"agent{n:04d}" for n in range(hosts)]
        for name in self.hosts:
            repo.register(name)
            repo.seen(name, connected=True)

    def post(self, tally: Tally, path: str, body: dict[str, Any]) -> dict[str, Any]:
        from hostrelay_local.http_api import build_event

        request = build_event(
            method="POST",
            target=path,
            headers=[
                ("Authorization", f"Bearer {self.token}"),
                ("Content-Type", "application/json"),
            ],
            body=json.dumps(body).encode(),
            source_ip="127.0.0.1",
        )
        tally.http_requests += 1
        response = self._invoke(tally, "ApiFunction", request)
        if response["statusCode"] != 201:
            raise RuntimeError(f"POST {path} answered {response['statusCode']}: {response}")
        answer: dict[str, Any] = json.loads(response["body"])
        return answer

    def drain(self, tally: Tally, queue: str, function: str) -> int:
        """Invoke `function` on batches of 10 until `queue` is empty; returns the batches."""
        batches = 0
        url = self.resources.refs[queue]
        while int(
            self.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        ):
            self._event_source(tally, queue, function)
            batches += 1
        return batches

    def answer_published(self, tally: Tally) -> int:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.iotdata.models import iotdata_backends

        payloads = iotdata_backends[DEFAULT_ACCOUNT_ID][REGION].published_payloads
        fresh = payloads[self.published :]
        self.published = len(payloads)
        for _, payload in fresh:
            self._relay_result(tally, json.loads(bytes(payload))["envelope"])
        return len(fresh)

    def _event_source(self, tally: Tally, queue: str, function: str) -> None:
        """What Lambda's SQS event source does: receive, invoke, delete what succeeded."""
        from hostrelay_local.event_sources import sqs_event

        url = self.resources.refs[queue]
        got = self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        )
        messages = got.get("Messages", [])
        if not messages:
            raise RuntimeError(f"nothing on {queue}")
        answer = self._invoke(
            tally, function, sqs_event(messages, f"arn:aws:sqs:{REGION}:0:{queue}", REGION)
        )
        failed = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)
                ],
            )

    def invoke_pending(self, tally: Tally) -> int:
        """Run the dispatch function on the API's asynchronous invocations (a fresh single
        job starts it so; a run's targets go through the dispatch queue)."""
        taken = 0
        while self.invocations:
            self._invoke(tally, "DispatchFunction", self.invocations.pop(0))
            taken += 1
        return taken

    def settle(self, tally: Tally, done: Any) -> None:
        while not done():
            moved = self.invoke_pending(tally)
            moved += self.drain(tally, "DispatchQueue", "DispatchFunction")
            moved += self.answer_published(tally)
            moved += self.drain(tally, "ResultsQueue", "ResultsFunction")
            if not moved:
                raise RuntimeError("nothing moves, and it is not done")


def peak_in_flight(intervals: list[tuple[datetime, datetime]]) -> int:
    edges = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda edge: (edge[0], edge[1]),
    )
    peak = current = 0
    for _, delta in edges:
        current += delta
        peak = max(peak, current)
    return peak


def _figures(
    tally: Tally, targets: int, wall: float, cpu: float, intervals: list[Any]
) -> dict[str, Any]:
    services = tally.by_service()
    return {
        "operations": {
            f"{service} {operation}": count / targets
            for (service, operation), count in sorted(tally.calls.items())
            if service in ("dynamodb", "sqs")
        },
        "wall_s": wall,
        "cpu_ms": 1000 * cpu / targets,
        "per_s": targets / wall,
        "peak": peak_in_flight(intervals),
        "dynamodb": services["dynamodb"] / targets,
        "sqs": services["sqs"] / targets,
    }


def baseline(hosts: int) -> dict[str, Any]:
    from hostrelay.dal.jobs_repo import JobRepository

    counter = RequestCounter()
    with mock_aws():
        pipeline = FleetPipeline(counter, hosts)
        with counter.installed():
            tally = counter.tally
            started, cpu_started = time.perf_counter(), time.process_time()
            ids = [
                pipeline.post(tally, "/v1/jobs", {"type": "ping", "host": h, "params": {}})["id"]
                for h in pipeline.hosts
            ]
            jobs = JobRepository()
            pipeline.settle(
                tally, lambda: all(j.state.terminal for j in jobs.get_many(ids).values())
            )
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            tally = counter.reset()
        ended = jobs.get_many(ids).values()
        assert Counter(j.state.value for j in ended) == Counter({"SUCCEEDED": hosts})
        intervals = [(j.created_at, j.finished_at) for j in ended]
    return _figures(tally, hosts, wall, cpu, intervals)


def fleet_run(hosts: int, window: int) -> dict[str, Any]:
    from hostrelay.dal.jobs_repo import JobRepository
    from hostrelay.dal.runs_repo import RunRepository

    counter = RequestCounter()
    with mock_aws():
        pipeline = FleetPipeline(counter, hosts)
        with counter.installed():
            tally = counter.tally
            started, cpu_started = time.perf_counter(), time.process_time()
            run = pipeline.post(
                tally,
                "/v1/runs",
                {
                    "type": "ping",
                    "targets": {"hosts": pipeline.hosts},
                    "max_concurrency": window,
                },
            )
            runs = RunRepository()
            pipeline.settle(tally, lambda: runs.get(run["id"]).state.terminal)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            tally = counter.reset()
        final = runs.get(run["id"])
        assert final.state.value == "SUCCEEDED", final
        ids = [t.job_id for t in runs.all_targets(run["id"]) if t.job_id]
        intervals = [(j.created_at, j.finished_at) for j in JobRepository().get_many(ids).values()]
    return _figures(tally, hosts, wall, cpu, intervals)


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--windows", type=int, nargs="+", default=[200, 50, 10])
    parser.add_argument(
        "--whole-table-rollback",
        action="store_true",
        help="keep moto's whole-table copy per transaction item (the figures before the patch)",
    )
    args = parser.parse_args(argv)
    tune_moto(per_item_rollback=not args.whole_table_rollback)
    base = baseline(args.hosts)
    header = f"{'scenario':<18}{'wall s':>8}{'targets/s':>11}{'peak':>6}{'ddb/target':>12}"
    rollback = "whole-table" if args.whole_table_rollback else "per-item"
    print(
        f"ping over {args.hosts} hosts, in process (moto, {rollback} transaction rollback); "
        "ratio = scenario / baseline"
    )
    print(header + f"{'sqs/target':>12}{'wall ratio':>12}{'CPU ms/target':>15}{'CPU ratio':>11}")

    scenarios: dict[str, dict[str, Any]] = {}

    def line(name: str, f: dict[str, Any]) -> None:
        scenarios[name] = f
        print(
            f"{name:<18}{f['wall_s']:>8.2f}{f['per_s']:>11.1f}{f['peak']:>6.0f}"
            f"{f['dynamodb']:>12.2f}{f['sqs']:>12.2f}{f['wall_s'] / base['wall_s']:>12.2f}"
            f"{f['cpu_ms']:>15.1f}{f['cpu_ms'] / base['cpu_ms']:>11.2f}"
        )

    line(f"baseline {args.hosts} jobs", base)
    for window in args.windows:
        line(f"run window {window}", fleet_run(args.hosts, window))
    print_operations(scenarios)
    return 0


def print_operations(scenarios: dict[str, dict[str, Any]]) -> None:
    """DynamoDB and SQS calls per target by operation, one column per scenario."""
    names = list(scenarios)
    operations = sorted({op for f in scenarios.values() for op in f["operations"]})
    print("\ncalls per target by operation")
    print(f"{'operation':<34}" + "".join(f"{name:>18}" for name in names))
    for op in operations:
        cells = "".join(f"{scenarios[name]['operations'].get(op, 0.0):>18.2f}" for name in names)
        print(f"{op:<34}{cells}")


if __name__ == "__main__":
    sys.exit(main())
