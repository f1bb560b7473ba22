"""Stopping `exec` jobs: the timeout and a cancel request end the whole process tree."""

from __future__ import annotations

import time

import pytest

from hostrelay_relay.handlers.base import JobCanceled, JobTimedOut
from tests.integration.exec.support import (
    PYTHON,
    ExecJobs,
    job_cgroup_dirs,
    make_settings,
    processes_with,
    wait_for,
)

pytestmark = pytest.mark.integration

# A child, a grandchild that ignores SIGTERM, and a double-forked daemon in its own session.
# It prints "ready" once all three say they are up (a pipe, not a pause), so a test that
# finds none of them left after a kill has killed them, not run before they were born.
TREE_SCRIPT = """
import os, signal, sys, time

started_r, started_w = os.pipe()

def spawn(body):
    if os.fork() == 0:
        body()
        os._exit(0)

def up():
    os.write(started_w, b".")

def grandchild():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    up()
    time.sleep(600)

def child():
    spawn(grandchild)
    up()
    time.sleep(600)

def daemon():
    os.setsid()
    if os.fork() == 0:
        up()
        time.sleep(600)
    os._exit(0)

spawn(child)
spawn(daemon)
for _ in range(3):
    os.read(started_r, 1)
print("ready", flush=True)
time.sleep(600)
"""


def test_timeout_kills_everything_and_raises_timed_out(exec_jobs: ExecJobs) -> None:
    """Given timeout_s 1, when the job's tree sleeps for minutes, then it is killed at ~1 s."""
    marker = f"timeout-marker-{time.monotonic_ns()}"
    run = exec_jobs.run({"argv": [PYTHON, "-c", TREE_SCRIPT, marker], "timeout_s": 1})

    assert isinstance(run.error, JobTimedOut)
    assert 1.0 <= run.elapsed_s < 3.0
    assert run.outcome["signal"] == "SIGKILL"
    assert run.stdout == "ready\n"
    assert processes_with(marker) == []
    assert job_cgroup_dirs(run.job_id) == []


def test_job_context_deadline_bounds_the_job_too(exec_jobs: ExecJobs) -> None:
    """Given a context timeout of 1 s and no timeout_s, then the job is stopped at the deadline."""
    run = exec_jobs.run({"argv": ["/bin/sleep", "30"]}, timeout_s=1.0)

    assert isinstance(run.error, JobTimedOut)
    assert run.elapsed_s < 3.0


def test_cancel_kills_children_grandchildren_and_daemons(exec_jobs: ExecJobs) -> None:
    """Given a running tree with a daemon and a SIGTERM-proof grandchild, when canceled, then
    JobCanceled is raised only once every process is gone."""
    marker = f"cancel-marker-{time.monotonic_ns()}"
    run, thread = exec_jobs.start({"argv": [PYTHON, "-c", TREE_SCRIPT, marker]})
    wait_for(lambda: b"ready" in run.data("stdout"))
    assert len(processes_with(marker)) >= 4  # job, child, grandchild, daemon

    run.cancel_event.set()
    thread.join(timeout=30)

    assert isinstance(run.error, JobCanceled)
    # The SIGTERM-proof grandchild forced the SIGKILL after the 0.5 s grace.
    assert run.elapsed_s >= 0.5
    assert processes_with(marker) == []
    assert job_cgroup_dirs(run.job_id) == []


def test_cancel_lets_a_cooperative_job_end_on_sigterm(exec_jobs: ExecJobs) -> None:
    """Given a job whose PID 1 handles SIGTERM, when canceled, then it exits on SIGTERM, long
    before the 5 s grace would have ended in SIGKILL."""
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('bye', flush=True), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    run, thread = exec_jobs.start(
        {"argv": [PYTHON, "-c", script]}, settings=make_settings(kill_grace_s=5.0)
    )
    wait_for(lambda: b"ready" in run.data("stdout"))
    canceled_at = time.monotonic()

    run.cancel_event.set()
    thread.join(timeout=30)

    assert isinstance(run.error, JobCanceled)
    assert run.stdout == "ready\nbye\n"
    assert time.monotonic() - canceled_at < 3.0


def test_cancel_after_the_job_ended_does_not_change_its_outcome(exec_jobs: ExecJobs) -> None:
    """Given a job that already finished, when cancel arrives late, then it still succeeded."""
    run, thread = exec_jobs.start({"argv": ["/bin/true"]})
    thread.join(timeout=30)
    run.cancel_event.set()

    assert run.error is None
    assert run.result is not None and run.result["exit_code"] == 0
