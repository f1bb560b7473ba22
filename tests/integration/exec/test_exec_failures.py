"""`exec` jobs that must not run, or cannot start: clear errors, nothing left behind."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hostrelay_relay.handlers import HandlerRegistry

from tests.integration.exec.support import ExecJobs, job_cgroup_dirs, make_settings

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"argv": ["/usr/bin/touch", "/var/tmp/{name}"]}, "not in this relay's"),
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
        allowed_commands=["/bin/sh"], allowed_users=["nobody"], writable_paths=["/var/tmp"]
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
