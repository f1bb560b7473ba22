"""`exec` jobs that must not run, or cannot start: clear errors, nothing left behind."""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from hostrelay_relay.handlers import HandlerRegistry
from hostrelay_relay.isolation.cgroups import remove_stale_job_cgroups
from tests.integration.exec.support import ExecJobs, job_cgroup_dirs, make_settings, new_job_id

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"argv": ["/usr/bin/touch", "/var/tmp/{name}"]}, "not in this relay's"),
        ({"argv": ["/usr/bin/env", "/usr/bin/touch", "/var/tmp/{name}"]}, "not in this relay's"),
        ({"argv": ["/bin/sh", "-e", "-c", "touch /var/tmp/{name}"]}, "match none of its"),
        ({"argv": ["/bin/sh", "-c", "touch /var/tmp/{name}"], "env": {"HOME": "/"}}, "HOME"),
        (
            {"argv": ["/bin/sh", "-c", "touch /var/tmp/{name}"], "isolation": {"user": "root"}},
            "allowed_users",
        ),
    ],
)
def test_run_rechecks_the_policy_before_anything_runs(
    exec_jobs: ExecJobs, params: dict[str, object], message: str
) -> None:
    """Given params the relay's policy refuses, when run() is called without validate(), then
    it fails invalid_params and the command never ran (no file, no cgroup)."""
    name = f"hostrelay-never-{uuid.uuid4().hex}"
    argv = [arg.replace("{name}", name) for arg in params["argv"]]  # type: ignore[attr-defined]
    settings = make_settings(
        allowed_commands=[{"command": "/bin/sh", "launcher": True, "args": [["-c", "*"]]}],
        allowed_users=["nobody"],
        writable_paths=["/var/tmp"],
    )
    run = exec_jobs.run({**params, "argv": argv}, settings=settings, validate=False)

    assert run.error is not None and run.error.code == "invalid_params"
    assert message in run.error.message
    assert not Path("/var/tmp", name).exists()
    assert job_cgroup_dirs(run.job_id) == []


def test_missing_executable_fails_exec_failed(exec_jobs: ExecJobs) -> None:
    """Given an allowed pattern but no such file, then the job fails exec_failed, naming it."""
    run = exec_jobs.run({"argv": ["/bin/not-installed-tool"]})

    assert run.error is not None and run.error.code == "exec_failed"
    assert "No such file" in run.error.message
    assert "/bin/not-installed-tool" in run.error.message


def test_missing_cwd_fails_before_the_command_runs(exec_jobs: ExecJobs) -> None:
    """Given a cwd that does not exist, then the job fails sandbox_failed at step cwd."""
    run = exec_jobs.run({"argv": ["/bin/true"], "cwd": "/does/not/exist"})

    assert run.error is not None and run.error.code == "sandbox_failed"
    assert run.error.message.startswith("cwd:")


def test_unknown_user_fails_clearly(exec_jobs: ExecJobs) -> None:
    """Given a policy allowing a user this host lacks, then the job fails unknown_user."""
    settings = make_settings(allowed_users=["nobody", "no-such-user-here"])
    run = exec_jobs.run(
        {"argv": ["/bin/true"], "isolation": {"user": "no-such-user-here"}}, settings=settings
    )

    assert run.error is not None and run.error.code == "unknown_user"


def test_registry_loads_the_exec_handler_enabled_on_this_host() -> None:
    """Given a policy with commands, when the registry loads exec as root, then it is enabled."""
    handler = HandlerRegistry(make_settings()).get("exec")

    assert handler.type == "exec"
    assert handler.enabled() is None


def test_stale_cgroup_of_a_crashed_attempt_is_cleared_first(exec_jobs: ExecJobs) -> None:
    """Given a cgroup left by a crashed relay with a process still in it, when the job runs
    again under the same id, then the leftover process is killed and the job runs cleanly."""
    job_id = new_job_id()
    stale_dir = Path("/sys/fs/cgroup/pids/hostrelay") / job_id
    stale_dir.mkdir(parents=True)
    leftover = subprocess.Popen(["/bin/sleep", "600"])
    try:
        (stale_dir / "cgroup.procs").write_text(str(leftover.pid))

        run = exec_jobs.run({"argv": ["/bin/sh", "-c", "echo fresh"]}, job_id=job_id)

        assert run.stdout == "fresh\n"
        assert leftover.wait(timeout=5) == -signal.SIGKILL
    finally:
        leftover.kill()
        leftover.wait()


def test_relay_start_up_clears_cgroups_left_by_a_crash() -> None:
    """Given job cgroups left behind by a crashed relay, one with a live process, when the
    relay starts and clears stale cgroups, then the process is killed and the cgroups gone."""
    job_id = new_job_id()
    stale = [Path("/sys/fs/cgroup", c, "hostrelay", job_id) for c in ("pids", "memory")]
    for directory in stale:
        directory.mkdir(parents=True)
    leftover = subprocess.Popen(["/bin/sleep", "600"])
    try:
        (stale[0] / "cgroup.procs").write_text(str(leftover.pid))

        # Cgroups of other jobs (concurrent test runs on this host) are kept.
        others = {p.name for p in stale[0].parent.iterdir() if p.name != job_id}
        removed = remove_stale_job_cgroups(Path("/sys/fs/cgroup"), keep=others)

        assert removed == [job_id]
        assert leftover.wait(timeout=5) == -signal.SIGKILL
        assert not any(directory.exists() for directory in stale)
    finally:
        leftover.kill()
        leftover.wait()
