"""Bench: start overhead of an isolated `exec` job vs plain subprocess, and output throughput.

Start overhead is `/bin/true` run end to end through ExecHandler.run (cgroups created with
the default limits, namespaces, filesystem view, privilege drop, execve, teardown, cgroups
removed), against `subprocess.run(["/bin/true"])` in the same process. Both are measured
back to back and with idle gaps between runs (a VM pays extra to wake up from idle).
Throughput is N MB from `/usr/bin/head -c N /dev/zero` through the pipes, the output pump and
the collecting callback. The seccomp filter's own share is measured apart (install time, and
a cheap syscall with and without it in one process), as load on a shared machine swamps it in
the start figures. Needs root (namespaces and cgroups).

    sudo .venv/bin/python bench/exec.py                  # 50 starts, 50 MB
    sudo .venv/bin/python bench/exec.py --runs 200 --megabytes 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from hostrelay_relay.handlers.base import JobContext, OutputStream
from hostrelay_relay.handlers.exec import ExecHandler
from hostrelay_relay.isolation.syscall_filter import job_filter
from hostrelay_relay.settings import RelaySettings

TARGET_MS = 30.0


def make_handler(max_output_bytes: int) -> ExecHandler:
    settings = RelaySettings.model_validate(
        {
            "host": "bench",
            "exec": {
                "allowed_commands": ["/bin/true", "/usr/bin/head"],
                "max_output_bytes": max_output_bytes,
            },
        }
    )
    return ExecHandler(settings)


def run_job(
    handler: ExecHandler, argv: list[str], sink: Callable[[OutputStream, bytes], None]
) -> dict[str, Any]:
    ctx = JobContext(
        job_id="B" + uuid.uuid4().hex[:25].upper(),
        attempt=1,
        host="bench",
        settings=handler.settings,
        timeout_s=120,
        report_progress=lambda done, total, message: None,
        report_output=sink,
        cancel_event=threading.Event(),
    )
    return handler.run(handler.validate({"argv": argv}), ctx)


def timed(action: Callable[[], object], runs: int, gap_s: float) -> list[float]:
    times = []
    for _ in range(runs):
        if gap_s:
            time.sleep(gap_s)
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def describe(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (
        f"{label:<34} median {statistics.median(times):7.2f} ms   p90 {p90:7.2f} ms   "
        f"min {ordered[0]:6.2f} ms"
    )


def bench_start(handler: ExecHandler, runs: int) -> float:
    def isolated() -> None:
        run_job(handler, ["/bin/true"], lambda stream, data: None)

    def plain() -> None:
        subprocess.run(["/bin/true"], check=True)

    for _ in range(3):  # warm-up: first-use probes, page cache
        isolated()
        plain()
    print(f"start overhead, /bin/true, {runs} runs (target: isolated median <= {TARGET_MS} ms)")
    results: dict[str, list[float]] = {}
    for gap_label, gap_s, count in (
        ("back to back", 0.0, runs),
        ("100 ms idle gaps", 0.1, runs // 2),
    ):
        results[f"isolated, {gap_label}"] = timed(isolated, count, gap_s)
        results[f"subprocess.run, {gap_label}"] = timed(plain, count, gap_s)
    for label, times in results.items():
        print("  " + describe(label, times))
    isolated_median = statistics.median(results["isolated, back to back"])
    plain_median = statistics.median(results["subprocess.run, back to back"])
    print(f"  isolation adds {isolated_median - plain_median:.2f} ms per job (back to back)")
    return isolated_median


def bench_throughput(megabytes: int) -> None:
    size = megabytes * 1024 * 1024
    handler = make_handler(max_output_bytes=size)
    received = 0
    chunks = 0

    def sink(stream: OutputStream, data: bytes) -> None:
        nonlocal received, chunks
        received += len(data)
        chunks += 1

    started = time.perf_counter()
    result = run_job(handler, ["/usr/bin/head", "-c", str(size), "/dev/zero"], sink)
    elapsed = time.perf_counter() - started
    assert received == size == result["output"]["delivered_bytes"], (received, result)
    print(
        f"output throughput: {megabytes} MB in {elapsed:.2f} s = {megabytes / elapsed:.0f} MB/s "
        f"({chunks} chunks, job cpu {result['cpu_s']:.2f} s, relay cpu incl.)"
    )


def _in_child(work: Callable[[], list[float]]) -> list[float]:
    """Run `work` in a forked child (a filter cannot be taken off again) and return its figures."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write_fd, " ".join(f"{value:.9f}" for value in work()).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        figures = [float(value) for value in pipe.read().split()]
    os.waitpid(pid, 0)
    return figures


def bench_syscall_filter(calls: int) -> None:
    """The seccomp filter's own cost: installing it, and a cheap syscall with and without it."""

    def getppid_ns() -> float:
        started = time.perf_counter_ns()
        for _ in range(calls):
            os.getppid()
        return (time.perf_counter_ns() - started) / calls

    def measure() -> list[float]:
        plain = getppid_ns()
        prepared = job_filter()  # as the spawner does once, at import
        started = time.perf_counter_ns()
        prepared.install()
        install_us = (time.perf_counter_ns() - started) / 1000
        return [install_us, plain, getppid_ns()]

    runs = [_in_child(measure) for _ in range(5)]
    install_us = statistics.median(run[0] for run in runs)
    plain_ns = statistics.median(run[1] for run in runs)
    filtered_ns = statistics.median(run[2] for run in runs)
    print(
        f"syscall filter: install {install_us:.1f} us; getppid() {filtered_ns:.0f} ns filtered vs "
        f"{plain_ns:.0f} ns unfiltered (same process, {calls} calls, median of 5)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--megabytes", type=int, default=50)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root: namespaces and cgroups", file=sys.stderr)
        return 2
    median = bench_start(make_handler(max_output_bytes=1024), args.runs)
    bench_throughput(args.megabytes)
    bench_syscall_filter(calls=200_000)
    print(
        f"verdict: isolated start median {median:.2f} ms vs target {TARGET_MS} ms: "
        f"{'OK' if median <= TARGET_MS else 'OVER'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
