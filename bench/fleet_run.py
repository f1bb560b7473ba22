"""Bench: ping jobs over a local fleet (`--fleet 200`): wall time, dispatch rate, AWS calls, RSS.

The local stack runs in this process (moto, the functions, the HTTP API, the IoT bridge),
mosquitto and the fleet's relays in their own processes, as under `hostrelay-local run
--fleet N`. Each scenario sends ping jobs to every fleet host and waits until every job has
its result:

  baseline      N pings to dc01 alone via POST /v1/jobs: the same control-plane work per job
                with one relay, measured in the same run
  jobs fan-out  one ping per fleet host via POST /v1/jobs (8 client threads posting)
  run c=…       when the API has /v1/runs (probed; else "runs API not available"): one run
                over every fleet host with max_concurrency 200, 50 and 10

Figures per scenario: wall time from the first POST to the last job's `finished_at` (the
job's own timestamp); targets dispatched per second (the dispatcher's IoT publishes, timed
as they happen in this process); the peak in flight (jobs between their publish and their
`finished_at`); DynamoDB and SQS requests per target as moto served them (background calls
of heartbeats and sweeps included; their idle rate is printed to correct by); CPU
milliseconds per target of this process (less the bench's own HTTP client threads), and
of each function's invocations; RSS of this process, mosquitto and
the fleet workers after each scenario. `--repeat` runs the jobs fan-out again to show how
the stack process's memory develops. `--whole-table-rollback` keeps moto's own
TransactWriteItems rollback (a deep copy of each table touched, per item): the "before".

    python bench/fleet_run.py                    # --fleet 200
    python bench/fleet_run.py --fleet 50 --repeat 5
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import logging
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.client
import botocore.session
import requests

from hostrelay_local.fleet import FleetOptions
from hostrelay_local.moto_endpoint import tune_moto
from hostrelay_local.stack import LocalStack, StackOptions

POSTING_THREADS = 8
RUN_CONCURRENCIES = (200, 50, 10)
TERMINAL_RUN_STATES = {"SUCCEEDED", "FAILED", "ABORTED", "CANCELED"}
GOAL_DISPATCHED_PER_S = 200.0
GOAL_WALL_S = 10.0
MIB = 1024 * 1024


def rss_bytes(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class MotoRequests:
    """Counts the requests moto serves (in-process and over HTTP), by service and action."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.cpu_s = 0.0  # thread CPU spent inside moto, serving them
        self._lock = threading.Lock()

    @contextmanager
    def installed(self) -> Iterator[MotoRequests]:
        from moto.core.responses import BaseResponse

        original = BaseResponse._dispatch
        counter = self

        def counting(response: Any, request: Any, full_url: str, headers: Any) -> Any:
            target = str(headers.get("X-Amz-Target") or "")
            action = target.rpartition(".")[2] or "?"
            began = time.thread_time()
            try:
                return original(response, request, full_url, headers)
            finally:
                with counter._lock:
                    counter.counts[(str(response.service_name), action)] += 1
                    counter.cpu_s += time.thread_time() - began

        BaseResponse._dispatch = counting  # type: ignore[method-assign]
        try:
            yield self
        finally:
            BaseResponse._dispatch = original  # type: ignore[method-assign]

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.counts)

    def cpu(self) -> float:
        with self._lock:
            return self.cpu_s


@dataclass
class Observed:
    """What the control plane did while a scenario ran, seen from inside this process."""

    published: dict[str, float] = field(default_factory=dict)  # job id → time.time()
    finished: set[str] = field(default_factory=set)  # job ids the results function saw
    cpu_s: Counter[str] = field(default_factory=Counter)  # function → thread CPU seconds
    client_cpu_s: float = 0.0  # the bench's own HTTP client threads (not the stack's work)
    botocore_sessions: int = 0  # each loads ~2 MB of endpoint and service data
    aws_call_cpu_s: float = 0.0  # whole boto3 calls of this process: botocore and moto
    done: threading.Event = field(default_factory=threading.Event)
    expected: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.published.clear()
            self.finished.clear()
            self.cpu_s.clear()
            self.client_cpu_s = 0.0
            self.botocore_sessions = 0
            self.aws_call_cpu_s = 0.0
            self.expected = set()
            self.done.clear()

    def expect(self, job_ids: set[str]) -> None:
        with self.lock:
            self.expected |= job_ids
            if self.expected <= self.finished:
                self.done.set()

    def saw_results(self, job_ids: list[str]) -> None:
        with self.lock:
            self.finished.update(job_ids)
            if self.expected and self.expected <= self.finished:
                self.done.set()


def _result_job_ids(event: dict[str, Any]) -> list[str]:
    """Job ids of the `result` events the results function was invoked with: an SQS batch
    of the results queue, or the one event of the results topic rule's Lambda action."""
    found = []
    bodies = [record.get("body") for record in event.get("Records", [])]
    if "Records" not in event:
        bodies = [json.dumps(event)]
    for raw in bodies:
        try:
            body = json.loads(raw)
            relay_event = json.loads(base64.b64decode(body["payload"]))
        except (KeyError, ValueError, TypeError):
            continue
        if isinstance(relay_event, dict) and relay_event.get("kind") == "result":
            found.append(str(relay_event.get("job_id")))
    return found


@contextmanager
def observing(stack: LocalStack, observed: Observed) -> Iterator[None]:
    """Time each job's IoT publish, note each result, and measure each function's CPU."""
    original_call = botocore.client.BaseClient._make_api_call

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "Publish" and str(params.get("topic", "")).endswith("/jobs"):
            try:
                envelope = json.loads(params["payload"])["envelope"]
            except (KeyError, ValueError, TypeError):
                envelope = {}
            if envelope.get("type") == "ping":
                with observed.lock:
                    observed.published.setdefault(str(envelope["job_id"]), time.time())
        began = time.thread_time()
        try:
            return original_call(client, operation, params)
        finally:
            with observed.lock:
                observed.aws_call_cpu_s += time.thread_time() - began

    original_session_init = botocore.session.Session.__init__

    def counting_session(session: Any, *args: Any, **kwargs: Any) -> None:
        with observed.lock:
            observed.botocore_sessions += 1
        original_session_init(session, *args, **kwargs)

    botocore.session.Session.__init__ = counting_session  # type: ignore[method-assign]
    originals: dict[str, Callable[[dict[str, Any]], Any]] = {}
    for name, runtime in stack.functions.items():
        invoke = runtime.invoke
        originals[name] = invoke

        def timed(
            event: dict[str, Any],
            _invoke: Callable[[dict[str, Any]], Any] = invoke,
            _name: str = name,
        ) -> Any:
            began = time.thread_time()
            try:
                return _invoke(event)
            finally:
                with observed.lock:
                    observed.cpu_s[_name] += time.thread_time() - began
                if _name == "ResultsFunction":
                    observed.saw_results(_result_job_ids(event))

        runtime.invoke = timed  # type: ignore[method-assign]
    botocore.client.BaseClient._make_api_call = recording  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.client.BaseClient._make_api_call = original_call  # type: ignore[method-assign]
        botocore.session.Session.__init__ = original_session_init  # type: ignore[method-assign]
        for name, invoke in originals.items():
            stack.functions[name].invoke = invoke  # type: ignore[method-assign]


@dataclass
class Figures:
    name: str
    targets: int
    wall_s: float
    dispatched_per_s: float
    peak_in_flight: int
    dynamodb_per_target: float
    sqs_per_target: float
    calls_per_target: dict[str, float]  # "dynamodb GetItem": calls per target
    cpu_ms_per_target: float
    moto_cpu_ms_per_target: float
    aws_call_cpu_ms_per_target: float
    cpu_ms_by_function: dict[str, float]
    states: Counter[str]
    botocore_sessions: int
    stack_rss: int
    fleet_rss: int
    broker_rss: int


def _epoch(stamp: str | None) -> float:
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def peak_in_flight(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an end at the same instant closes first)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


class Bench:
    def __init__(self, stack: LocalStack, moto: MotoRequests, observed: Observed) -> None:
        self.stack = stack
        self.moto = moto
        self.observed = observed
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {stack.admin_token}"
        self.url = stack.api_url
        self.idle_per_s: Counter[str] = Counter()

    def measure_idle(self, seconds: float) -> None:
        """Background AWS calls per second (heartbeats, sweeps, schedules) with no jobs."""
        before = self.moto.snapshot()
        time.sleep(seconds)
        after = self.moto.snapshot()
        for (service, _), count in (after - before).items():
            self.idle_per_s[service] += count / seconds

    def _post_jobs(self, hosts: list[str]) -> set[str]:
        def post(host: str) -> str:
            began = time.thread_time()
            body = {"type": "ping", "host": host, "params": {}}
            response = self.session.post(f"{self.url}/v1/jobs", json=body, timeout=60)
            if response.status_code != 201:
                raise RuntimeError(f"POST /v1/jobs {host}: {response.status_code} {response.text}")
            job_id = str(response.json()["id"])
            with self.observed.lock:
                self.observed.client_cpu_s += time.thread_time() - began
            return job_id

        with ThreadPoolExecutor(POSTING_THREADS) as pool:
            return set(pool.map(post, hosts))

    def runs_available(self) -> bool:
        response = self.session.get(f"{self.url}/v1/runs", timeout=30)
        return response.status_code == 200

    def _start_run(self, hosts: list[str], concurrency: int) -> str:
        body = {
            "type": "ping",
            "params": {},
            "targets": {"hosts": hosts},
            "max_concurrency": concurrency,
            "max_errors": 0,
        }
        response = self.session.post(f"{self.url}/v1/runs", json=body, timeout=60)
        if response.status_code != 201:
            raise RuntimeError(f"POST /v1/runs: {response.status_code} {response.text[:300]}")
        return str(response.json()["id"])

    def _wait_run(self, run_id: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = str(
                self.session.get(f"{self.url}/v1/runs/{run_id}", timeout=30).json()["state"]
            )
            if state in TERMINAL_RUN_STATES:
                return state
            time.sleep(0.1)
        raise TimeoutError(f"run {run_id} not finished after {timeout_s} s")

    def scenario(self, name: str, hosts: list[str], concurrency: int | None = None) -> Figures:
        """Pings for `hosts` (one POST each, or one run when `concurrency` is given)."""
        gc.collect()
        self.observed.reset()
        counts_before = self.moto.snapshot()
        moto_cpu_before = self.moto.cpu()
        cpu_before = time.process_time()
        began = time.time()
        if concurrency is None:
            self.observed.expect(self._post_jobs(hosts))
        else:
            run_id = self._start_run(hosts, concurrency)
            self._wait_run(run_id, timeout_s=600)
            # expect() takes the (non-reentrant) lock itself: holding it here deadlocked the
            # bench after every run had ended, which looked like a run that never ended.
            with self.observed.lock:
                published = set(self.observed.published)
            self.observed.expect(published)
        if not self.observed.done.wait(600):
            raise TimeoutError(f"{name}: not every job had its result after 600 s")
        cpu_s = time.process_time() - cpu_before - self.observed.client_cpu_s
        counts = self.moto.snapshot() - counts_before
        moto_cpu_s = self.moto.cpu() - moto_cpu_before
        with self.observed.lock:
            job_ids = sorted(self.observed.expected)
            published = dict(self.observed.published)
            cpu_by_function = dict(self.observed.cpu_s)
            sessions = self.observed.botocore_sessions
            aws_call_cpu_s = self.observed.aws_call_cpu_s
        jobs = [self.session.get(f"{self.url}/v1/jobs/{j}", timeout=30).json() for j in job_ids]
        finished = {job["id"]: _epoch(job["finished_at"]) for job in jobs if job["finished_at"]}
        targets = len(job_ids)
        last_publish = max(published.values()) if published else began
        dispatch_s = max(1e-9, last_publish - began)
        fleet_pids = [p.pid for p in self.stack.fleet.processes] if self.stack.fleet else []
        broker_pid = self.stack.broker.pid if self.stack.broker else None
        return Figures(
            name=name,
            targets=targets,
            wall_s=max(finished.values(), default=began) - began,
            dispatched_per_s=len(published) / dispatch_s,
            peak_in_flight=peak_in_flight(
                [(published[j], finished[j]) for j in job_ids if j in published and j in finished]
            ),
            dynamodb_per_target=sum(n for (s, _), n in counts.items() if s == "dynamodb") / targets,
            sqs_per_target=sum(n for (s, _), n in counts.items() if s == "sqs") / targets,
            calls_per_target={
                f"{service} {action}": n / targets
                for (service, action), n in sorted(counts.items())
                if service in ("dynamodb", "sqs") and n
            },
            cpu_ms_per_target=1000 * cpu_s / targets,
            moto_cpu_ms_per_target=1000 * moto_cpu_s / targets,
            aws_call_cpu_ms_per_target=1000 * aws_call_cpu_s / targets,
            cpu_ms_by_function={k: 1000 * v / targets for k, v in cpu_by_function.items()},
            states=Counter(str(job["state"]) for job in jobs),
            botocore_sessions=sessions,
            stack_rss=rss_bytes(),
            fleet_rss=sum(rss_bytes(pid) for pid in fleet_pids if pid is not None),
            broker_rss=rss_bytes(broker_pid) if broker_pid else 0,
        )


def print_figures(figures: Figures, baseline: Figures | None) -> None:
    ratio = "" if baseline is None else f"  ({figures.wall_s / baseline.wall_s:.2f}x baseline)"
    print(f"== {figures.name}: {figures.targets} targets, states {dict(figures.states)}")
    print(f"   wall time POST → last finished_at  {figures.wall_s:7.2f} s{ratio}")
    dispatch_ratio = (
        ""
        if baseline is None
        else f"  ({figures.dispatched_per_s / baseline.dispatched_per_s:.2f}x baseline)"
    )
    print(f"   targets dispatched per second      {figures.dispatched_per_s:7.1f}{dispatch_ratio}")
    print(f"   peak in flight (publish→finished)  {figures.peak_in_flight:7d}")
    print(
        f"   moto requests per target           dynamodb {figures.dynamodb_per_target:.1f}, "
        f"sqs {figures.sqs_per_target:.1f}"
    )
    print(
        "     by operation: "
        + ", ".join(f"{op} {n:.2f}" for op, n in figures.calls_per_target.items() if n >= 0.01)
    )
    by_function = ", ".join(
        f"{name.removesuffix('Function')} {ms:.1f}"
        for name, ms in sorted(figures.cpu_ms_by_function.items(), key=lambda kv: -kv[1])
        if ms >= 0.05
    )
    print(
        f"   stack CPU per target               {figures.cpu_ms_per_target:7.1f} ms "
        f"(bench client threads left out)\n"
        f"     of which AWS calls (botocore + moto) {figures.aws_call_cpu_ms_per_target:.1f} ms, "
        f"inside moto's request handling {figures.moto_cpu_ms_per_target:.1f} ms; "
        f"by function (their AWS calls included): {by_function}"
    )
    print(
        f"   RSS after                          stack {figures.stack_rss / MIB:.0f} MiB, "
        f"fleet {figures.fleet_rss / MIB:.0f} MiB, mosquitto {figures.broker_rss / MIB:.0f} MiB"
        f" ({figures.botocore_sessions} botocore sessions made meanwhile)"
    )


def print_growth(since: tracemalloc.Snapshot | None) -> tracemalloc.Snapshot:
    """Start tracing, or print the allocation sites that grew most since `since`."""
    gc.collect()
    if since is None:
        tracemalloc.start(40)
        return tracemalloc.take_snapshot()
    now = tracemalloc.take_snapshot()
    print("   grew most since fan-out #1 (tracemalloc; callers of the allocation, newest first):")
    for stat in now.compare_to(since, "traceback")[:6]:
        frames = [f for f in reversed(stat.traceback) if "/python3.11/" not in f.filename
                  or "site-packages" in f.filename]  # fmt: skip
        where = " < ".join(
            f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno}"
            for f in frames[:12]
        )
        print(f"     {stat.size_diff / 1024:+9.0f} KiB {stat.count_diff:+7d} blocks  {where}")
    return since


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", type=int, default=200, help="fleet relays (default 200)")
    parser.add_argument("--fleet-processes", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="jobs fan-out runs (memory)")
    parser.add_argument("--idle-s", type=float, default=5.0, help="idle window measured")
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="print where the stack process's memory grew between fan-outs (tracemalloc; slow)",
    )
    parser.add_argument(
        "--whole-table-rollback",
        action="store_true",
        help="keep moto's whole-table copy per transaction item (the figures before the patch)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tune_moto(per_item_rollback=not args.whole_table_rollback)  # before the stack's own call
    options = StackOptions(
        api_port=0,
        with_samba=False,
        with_directory=False,
        function_log_level="WARNING",  # only the figures on stdout
        fleet=FleetOptions(size=args.fleet, processes=args.fleet_processes, log_level="WARNING"),
    )
    moto = MotoRequests()
    observed = Observed()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as state_dir, moto.installed():
        began = time.monotonic()
        stack = LocalStack(Path(state_dir), options).start()
        try:
            assert stack.fleet is not None
            print(
                f"stack with a fleet of {args.fleet} relays in {len(stack.fleet.processes)} "
                f"process(es) up in {time.monotonic() - began:.1f} s; "
                f"stack RSS {rss_bytes() / MIB:.0f} MiB"
            )
            bench = Bench(stack, moto, observed)
            with observing(stack, observed):
                bench.measure_idle(args.idle_s)
                print(
                    "background requests per second (idle): "
                    + ", ".join(f"{k} {v:.1f}" for k, v in sorted(bench.idle_per_s.items()))
                )
                bench.scenario("warm-up", stack.fleet.hosts[: min(20, args.fleet)])
                baseline = bench.scenario("baseline: pings to dc01 alone", ["dc01"] * args.fleet)
                print_figures(baseline, None)
                first_snapshot = None
                for number in range(1, args.repeat + 1):
                    fan_out = bench.scenario(
                        f"jobs fan-out #{number}: POST /v1/jobs per fleet host", stack.fleet.hosts
                    )
                    print_figures(fan_out, baseline)
                    if args.trace_memory:
                        first_snapshot = print_growth(first_snapshot)
                if not bench.runs_available():
                    print("runs API not available (GET /v1/runs is not served)")
                else:
                    for concurrency in RUN_CONCURRENCIES:
                        figures = bench.scenario(
                            f"run max_concurrency {concurrency}", stack.fleet.hosts, concurrency
                        )
                        print_figures(figures, fan_out)
            print(
                f"goals: >= {GOAL_DISPATCHED_PER_S:.0f} dispatched/s, a {args.fleet}-host "
                f"run in < {GOAL_WALL_S:.0f} s"
            )
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
