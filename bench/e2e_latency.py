"""Bench: ping jobs through the local stack, API POST → SUCCEEDED visible via GET (p50/p95/p99).

Baseline, measured in the same run between the jobs: one GET of the finished job (the API
function, its token check and one DynamoDB read over the same HTTP and moto), so the ratio
says how many such round trips a job's whole way costs, whatever the machine's load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from hostrelay_local.stack_process import StackProcess

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "REJECTED", "EXPIRED"}
TARGET_P50_MS = 35.0  # issue #12's goal on the project's 2-core machine
TARGET_P99_MS = 100.0


def run_ping(
    session: requests.Session, url: str, poll_s: float, timeout_s: float
) -> tuple[float, str]:
    """(seconds from sending POST /v1/jobs until a GET shows the job SUCCEEDED, job id)."""
    started = time.perf_counter()
    created = session.post(f"{url}/v1/jobs", json={"type": "ping", "host": "dc01", "params": {}})
    created.raise_for_status()
    job_id = created.json()["id"]
    deadline = started + timeout_s
    while time.perf_counter() < deadline:
        job = session.get(f"{url}/v1/jobs/{job_id}").json()
        if job["state"] in TERMINAL:
            if job["state"] != "SUCCEEDED":
                raise RuntimeError(f"job {job_id} ended {job['state']}: {job.get('error')}")
            return time.perf_counter() - started, job_id
        if poll_s:
            time.sleep(poll_s)
    raise TimeoutError(f"job {job_id} not finished after {timeout_s} s")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(len(sorted_values), rank) - 1]


def read_back_ms(session: requests.Session, url: str, job_id: str) -> float:
    """The baseline: one GET of a finished job, in ms."""
    started = time.perf_counter()
    session.get(f"{url}/v1/jobs/{job_id}").raise_for_status()
    return (time.perf_counter() - started) * 1000


def bench(
    url: str, token: str, jobs: int, warmup: int, poll_s: float
) -> tuple[list[tuple[float, float]], list[float]]:
    """(seconds since the first measured job started, latency ms) of each measured job, and
    the baseline samples (ms) taken after each of them."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    for _ in range(warmup):
        run_ping(session, url, poll_s, timeout_s=30)
    began = time.perf_counter()
    samples, baseline = [], []
    for _ in range(jobs):
        offset = time.perf_counter() - began
        seconds, job_id = run_ping(session, url, poll_s, timeout_s=30)
        samples.append((offset, seconds * 1000))
        baseline.append(read_back_ms(session, url, job_id))
    return samples, baseline


def report(samples: list[tuple[float, float]], baseline: list[float], slowest: int = 0) -> bool:
    ordered = sorted(ms for _, ms in samples)
    p50, p95, p99 = (percentile(ordered, f) for f in (0.50, 0.95, 0.99))
    base = sorted(baseline)
    b50, b95, b99 = (percentile(base, f) for f in (0.50, 0.95, 0.99))
    print(f"ping jobs: {len(ordered)}  (POST /v1/jobs → SUCCEEDED visible via GET)")
    print("  baseline: one GET of the finished job, measured after each job (ms, ratio)")
    print(
        f"  min {ordered[0]:.1f} ms  mean {statistics.fmean(ordered):.1f} ms  "
        f"max {ordered[-1]:.1f} ms"
    )
    print(
        f"  p50 {p50:.1f} ms  (target ≤ {TARGET_P50_MS:.0f})  baseline {b50:.1f}  {p50 / b50:.1f}x"
    )
    print(f"  p95 {p95:.1f} ms  baseline {b95:.1f}  {p95 / b95:.1f}x")
    print(
        f"  p99 {p99:.1f} ms  (target ≤ {TARGET_P99_MS:.0f})  baseline {b99:.1f}  {p99 / b99:.1f}x"
    )
    if slowest:
        worst = sorted(samples, key=lambda sample: -sample[1])[:slowest]
        print("  slowest: " + ", ".join(f"{ms:.0f} ms at +{at:.1f} s" for at, ms in worst))
    ok = p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS
    print("  targets met" if ok else "  TARGETS MISSED")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10, help="jobs run first, not counted")
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=5.0,
        help="pause between GETs: each GET runs the api function on the same 2 cores as the "
        "job, so polling every 2 ms slows the job it watches by more than it gains",
    )
    parser.add_argument("--show-slowest", type=int, default=0, metavar="N", help="list N outliers")
    parser.add_argument("--url", help="use a running stack (with --token) instead of booting one")
    parser.add_argument("--token", help="admin token of the running stack")
    parser.add_argument("--state-dir", type=Path, help="where the booted stack keeps its state")
    args = parser.parse_args()
    poll_s = args.poll_ms / 1000
    if args.url:
        if not args.token:
            parser.error("--url needs --token")
        samples, baseline = bench(args.url, args.token, args.jobs, args.warmup, poll_s)
        return 0 if report(samples, baseline, args.show_slowest) else 1
    with tempfile.TemporaryDirectory(prefix="hostrelay-bench-") as tmp:
        state_dir = args.state_dir or Path(tmp)
        started = time.perf_counter()
        # Only the ping path: no demo directory, whose scheduled sync would run alongside.
        with StackProcess(state_dir, extra_args=["--no-samba", "--no-directory"]) as stack:
            print(f"stack up in {time.perf_counter() - started:.1f} s at {stack.api_url}")
            samples, baseline = bench(
                stack.api_url, stack.admin_token, args.jobs, args.warmup, poll_s
            )
    return 0 if report(samples, baseline, args.show_slowest) else 1


if __name__ == "__main__":
    sys.exit(main())
