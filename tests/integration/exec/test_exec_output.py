"""Output of `exec` jobs: streamed in bounded chunks, intact, summarised, truncated at the limit."""

from __future__ import annotations

import hashlib

import pytest

from tests.integration.exec.support import PYTHON, ExecJobs, make_settings, wait_for

pytestmark = pytest.mark.integration

TEN_MB = 10 * 1024 * 1024
# Deterministic bytes the job and the test both compute: SHA-256 digests of a counter.
PATTERN_SCRIPT = """
import hashlib, sys
size = int(sys.argv[1])
out = sys.stdout.buffer
block = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size // 32))
out.write(block)
"""


def pattern(size: int) -> bytes:
    return b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size // 32))


def test_ten_megabytes_of_output_arrive_intact(exec_jobs: ExecJobs) -> None:
    """Given a job writing 10 MB (the default limit), then every byte arrives in order, in chunks
    of at most 16 KiB, and the result's sha256 is that of the concatenated chunks."""
    run = exec_jobs.run({"argv": [PYTHON, "-c", PATTERN_SCRIPT, str(TEN_MB)]})

    assert run.error is None, run.stderr[:500]
    delivered = run.data()
    assert delivered == pattern(TEN_MB)
    assert max(len(chunk) for _, chunk in run.chunks) <= 16 * 1024
    output = run.outcome["output"]
    assert output == {
        "stdout_bytes": TEN_MB,
        "stderr_bytes": 0,
        "delivered_bytes": TEN_MB,
        "chunks": len(run.chunks),
        "sha256": hashlib.sha256(delivered).hexdigest(),
        "truncated": False,
    }


def test_output_beyond_the_limit_is_counted_but_not_forwarded(exec_jobs: ExecJobs) -> None:
    """Given max_output_bytes 1 MB, when the job writes 3 MB, then exactly 1 MB is forwarded,
    the result says truncated, and the job still ends normally."""
    settings = make_settings(max_output_bytes=1024 * 1024)
    run = exec_jobs.run(
        {"argv": [PYTHON, "-c", PATTERN_SCRIPT, str(3 * 1024 * 1024)]}, settings=settings
    )

    assert run.error is None, run.stderr
    assert run.data() == pattern(3 * 1024 * 1024)[: 1024 * 1024]
    output = run.outcome["output"]
    assert output["truncated"] is True
    assert output["stdout_bytes"] == 3 * 1024 * 1024
    assert output["delivered_bytes"] == 1024 * 1024
    assert output["sha256"] == hashlib.sha256(run.data()).hexdigest()


def test_stdout_and_stderr_keep_their_streams_and_order(exec_jobs: ExecJobs) -> None:
    """Given a job alternating stdout and stderr lines, then each stream's text arrives whole and
    the chunks follow the order the job wrote in."""
    script = (
        "import sys, time\n"
        "for i in range(5):\n"
        "    print(f'out {i}', flush=True)\n"
        "    print(f'err {i}', file=sys.stderr, flush=True)\n"
        "    time.sleep(0.05)\n"
    )
    run = exec_jobs.run({"argv": [PYTHON, "-c", script]})

    assert run.stdout == "".join(f"out {i}\n" for i in range(5))
    assert run.stderr == "".join(f"err {i}\n" for i in range(5))
    interleaved = b"".join(chunk for _, chunk in run.chunks).decode().split()
    assert interleaved == " ".join(f"out {i} err {i}" for i in range(5)).split()
    assert run.outcome["output"]["stderr_bytes"] == len(run.stderr)


def test_output_is_streamed_while_the_job_runs(exec_jobs: ExecJobs) -> None:
    """Given a job that prints then sleeps, then its first line arrives before it finishes."""
    script = "import time\nprint('early', flush=True)\ntime.sleep(1.5)\nprint('late')\n"
    run, thread = exec_jobs.start({"argv": [PYTHON, "-c", script]})
    wait_for(lambda: b"early" in run.data())

    assert thread.is_alive()
    assert run.stdout == "early\n"
    thread.join(timeout=30)
    assert run.stdout == "early\nlate\n"


def test_non_zero_exit_fails_with_the_result_attached(exec_jobs: ExecJobs) -> None:
    """Given a command exiting 3, then the job fails with code exit_code and keeps its output."""
    run = exec_jobs.run({"argv": ["/bin/sh", "-c", "echo partial; exit 3"]})

    assert run.error is not None and run.error.code == "exit_code"
    assert "status 3" in run.error.message
    assert run.outcome["exit_code"] == 3
    assert run.outcome["output"]["stdout_bytes"] == len("partial\n")
    assert run.stdout == "partial\n"


def test_crash_by_signal_is_reported_by_name(exec_jobs: ExecJobs) -> None:
    """Given a command that segfaults, then the job fails killed_by_signal naming SIGSEGV."""
    run = exec_jobs.run({"argv": [PYTHON, "-c", "import ctypes; ctypes.string_at(0)"]})

    assert run.error is not None and run.error.code == "killed_by_signal"
    assert run.outcome["signal"] == "SIGSEGV"
    assert run.outcome["exit_code"] is None
