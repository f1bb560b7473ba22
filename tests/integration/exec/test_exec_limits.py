"""Resource limits of `exec` jobs, enforced by real cgroups: memory, pids, CPU."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.exec.support import PYTHON, ExecJobs, processes_with

pytestmark = pytest.mark.integration


def test_memory_hog_is_killed_and_reported_as_memory_limit(exec_jobs: ExecJobs) -> None:
    """Given a 50 MB limit, when the job fills 200 MB, then it is killed: FAILED memory_limit."""
    run = exec_jobs.run(
        {
            "argv": [PYTHON, "-c", "data = b'x' * (200 << 20); print('survived')"],
            "limits": {"memory_mb": 50},
        }
    )

    assert run.error is not None
    assert run.error.code == "memory_limit"
    assert "50 MB" in run.error.message
    assert run.outcome["signal"] == "SIGKILL"
    assert run.outcome["oom_kills"] >= 1
    assert "survived" not in run.stdout


def test_job_within_its_memory_limit_succeeds(exec_jobs: ExecJobs) -> None:
    """Given a 100 MB limit, when the job uses 30 MB, then it succeeds and reports its peak."""
    run = exec_jobs.run(
        {
            "argv": [PYTHON, "-c", "data = b'x' * (30 << 20); print(len(data))"],
            "limits": {"memory_mb": 100},
        }
    )

    assert run.error is None, run.error
    assert run.stdout.strip() == str(30 << 20)
    assert 30 * 1024 <= run.outcome["max_rss_kb"] <= 100 * 1024


def test_pids_limit_stops_a_fork_loop(exec_jobs: ExecJobs) -> None:
    """Given pids 20, when the job forks as often as it can, then forks fail below 20 processes."""
    marker = f"fork-loop-marker-{uuid.uuid4().hex}"  # unique: test runs run side by side
    script = (
        "import os, sys, time\n"
        "count = 0\n"
        "try:\n"
        "    while count < 500:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        count += 1\n"
        "except OSError as exc:\n"
        "    print('forks', count, exc.strerror)\n"
    )
    run = exec_jobs.run({"argv": [PYTHON, "-c", script, marker], "limits": {"pids": 20}})

    assert run.error is None, run.stderr
    words = run.stdout.split()
    assert words[0] == "forks"
    assert int(words[1]) < 20
    assert "Resource temporarily unavailable" in run.stdout
    # The sleeping children died with the job's PID 1.
    assert processes_with(marker) == []
    assert run.elapsed_s < 30


def test_shell_fork_bomb_is_contained_and_cleaned_up(exec_jobs: ExecJobs) -> None:
    """Given pids 64 and a 2 s timeout, when a shell fork bomb runs, then it ends with no trace."""
    marker = f"bomb-marker-{uuid.uuid4().hex}"  # unique: test runs run side by side
    run = exec_jobs.run(
        {
            "argv": ["/bin/sh", "-c", "b() { b | b & }; b; sleep 5", marker],
            "limits": {"pids": 64},
            "timeout_s": 2,
        }
    )

    assert run.error is not None
    assert run.error.code in {"timeout", "exit_code"}
    assert processes_with(marker) == []
    assert run.elapsed_s < 10


def test_cpu_quota_is_enforced(exec_jobs: ExecJobs) -> None:
    """Given cpu_percent 20, when the job spins for 1 s of wall time, then it gets ~0.2 s of CPU."""
    script = "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end: pass\n"
    run = exec_jobs.run({"argv": [PYTHON, "-c", script], "limits": {"cpu_percent": 20}})

    assert run.error is None, run.stderr
    assert run.outcome["wall_s"] >= 1.0
    assert run.outcome["cpu_s"] < 0.45


def test_result_reports_cpu_and_wall_time(exec_jobs: ExecJobs) -> None:
    """Given a job that spins for 0.3 s, then cpu_s covers the CPU time the job itself measured."""
    script = (
        "import time\n"
        "end = time.monotonic() + 0.3\n"
        "while time.monotonic() < end: pass\n"
        "print(time.process_time())\n"
    )
    run = exec_jobs.run({"argv": [PYTHON, "-c", script], "limits": {"cpu_percent": 200}})

    assert run.error is None, run.stderr
    measured_by_job = float(run.stdout)
    assert measured_by_job * 0.9 <= run.outcome["cpu_s"] <= run.outcome["wall_s"] * 2
    assert run.outcome["wall_s"] >= 0.3


def test_io_bandwidth_limit_throttles_disk_reads(exec_jobs: ExecJobs) -> None:
    """Given io_bps 1 MiB/s, when the job reads 1 MiB from disk (direct I/O), then it takes ~1 s."""
    argv = [
        "/usr/bin/dd",
        "if=/usr/bin/python3",
        "of=/dev/null",
        "bs=64k",
        "count=16",
        "iflag=direct",
    ]
    run = exec_jobs.run({"argv": argv, "limits": {"io_bps": 1024 * 1024}})

    assert run.error is None, run.stderr
    assert "1048576 bytes" in run.stderr
    assert run.outcome["wall_s"] >= 0.7
