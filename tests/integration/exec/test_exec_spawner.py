"""The spawner process that forks exec jobs: jobs survive its death and it comes back."""

from __future__ import annotations

import os
import signal

import pytest
from hostrelay_relay.isolation.spawner_client import default_spawner

from tests.integration.exec.support import PYTHON, ExecJobs, wait_for

pytestmark = pytest.mark.integration


def kill_spawner() -> None:
    pid = default_spawner().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)


def test_next_job_starts_a_fresh_spawner_after_it_died(exec_jobs: ExecJobs) -> None:
    """Given the spawner was killed, when the next job runs, then a new spawner runs it."""
    exec_jobs.run({"argv": ["/bin/true"]})
    old_pid = default_spawner().pid
    kill_spawner()

    run = exec_jobs.run({"argv": ["/bin/sh", "-c", "echo alive"]})

    assert run.error is None, run.error
    assert run.stdout == "alive\n"
    assert default_spawner().pid not in {None, old_pid}


def test_running_job_survives_the_spawner_dying(exec_jobs: ExecJobs) -> None:
    """Given a running job, when the spawner is killed, then the job still ends normally."""
    script = "import time\nprint('ready', flush=True)\ntime.sleep(0.5)\nprint('done')\n"
    run, thread = exec_jobs.start({"argv": [PYTHON, "-c", script]})
    wait_for(lambda: b"ready" in run.data())
    kill_spawner()
    thread.join(timeout=30)

    assert run.error is None, run.error
    assert run.stdout == "ready\ndone\n"
