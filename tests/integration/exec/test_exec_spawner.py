"""The spawner process that forks exec jobs: jobs survive its death and it comes back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hostrelay_relay.isolation import spawner_client
from hostrelay_relay.isolation.spawner_client import default_spawner
from tests.integration.exec.support import PYTHON, ExecJobs, wait_for

pytestmark = pytest.mark.integration


def kill_spawner() -> None:
    pid = default_spawner().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def own_spawner() -> Iterator[None]:
    """Later tests get a spawner started with the default settings, not this test's."""
    default_spawner().close()
    yield
    default_spawner().close()


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


def test_job_sent_to_a_spawner_dying_before_it_accepted_runs_once_on_a_fresh_one(
    exec_jobs: ExecJobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the spawner is frozen, when it is killed while a job waits for it, then the job
    runs exactly once, on a new spawner."""
    exec_jobs.run({"argv": ["/bin/true"]})
    old_pid = default_spawner().pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGSTOP)
    # (the request is known to be queued on the frozen spawner's channel once it is sent)
    sent = threading.Event()
    send_fds = socket.send_fds

    def send_and_tell(*args: Any, **kwargs: Any) -> int:
        count = send_fds(*args, **kwargs)
        sent.set()
        return count

    monkeypatch.setattr(spawner_client.socket, "send_fds", send_and_tell)

    run, thread = exec_jobs.start({"argv": ["/bin/sh", "-c", "echo once"]})
    assert sent.wait(30), "the job's request never reached the spawner"
    os.kill(old_pid, signal.SIGKILL)
    thread.join(timeout=30)

    assert run.error is None, run.error
    assert run.stdout == "once\n"  # a second run would write to the same pipe
    assert default_spawner().pid not in {None, old_pid}


def start_spawner_with(monkeypatch: pytest.MonkeyPatch, prologue: str) -> None:
    """Spawners started from now on run `prologue` (Python) before the spawner's own code."""
    popen = subprocess.Popen

    def spawner_popen(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        module, fd = args[-2:]  # [python, -I, -m, module, fd]
        code = f"{prologue}\nimport runpy, sys\nsys.argv = ['spawner', {fd!r}]\n"
        code += f"runpy.run_module({module!r}, run_name='__main__')"
        return popen([sys.executable, "-I", "-c", code], **kwargs)

    monkeypatch.setattr(spawner_client.subprocess, "Popen", spawner_popen)


def test_a_spawner_slower_to_start_than_the_answer_timeout_runs_the_job(
    exec_jobs: ExecJobs, own_spawner: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a host so busy that a spawner takes longer to start than a spawner may take to
    answer, when a job needs a new spawner, then it runs: the start is not the answer."""
    monkeypatch.setattr(spawner_client, "_ANSWER_TIMEOUT_S", 0.5)
    start_spawner_with(monkeypatch, "import time; time.sleep(1.5)")

    run = exec_jobs.run({"argv": ["/bin/sh", "-c", "echo started"]})

    assert run.error is None, run.error
    assert run.stdout == "started\n"


def test_a_spawner_that_never_gets_ready_fails_the_job_as_retryable(
    exec_jobs: ExecJobs, own_spawner: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given spawners that hang in their start, when a job needs one, then the job fails
    (retryable, saying so) after the start timeout and the hung process is gone."""
    monkeypatch.setattr(spawner_client, "_START_TIMEOUT_S", 0.5)
    start_spawner_with(monkeypatch, "import time; time.sleep(60)")

    run = exec_jobs.run({"argv": ["/bin/true"]})

    assert run.error is not None
    assert run.error.code == "spawner_unavailable"
    assert run.error.retryable
    assert "was not ready within 0.5 s" in run.error.message
    assert default_spawner().pid is None  # killed and reaped, not left behind


def test_job_sent_to_a_hung_spawner_runs_once_on_a_fresh_one(
    exec_jobs: ExecJobs, own_spawner: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the spawner hangs, when a job is sent to it, then after the answer timeout the
    job runs exactly once, on a new spawner."""
    monkeypatch.setattr(spawner_client, "_ANSWER_TIMEOUT_S", 0.5)
    exec_jobs.run({"argv": ["/bin/true"]})
    old_pid = default_spawner().pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGSTOP)

    run = exec_jobs.run({"argv": ["/bin/sh", "-c", "echo once"]})

    assert run.error is None, run.error
    assert run.stdout == "once\n"
    assert default_spawner().pid not in {None, old_pid}
