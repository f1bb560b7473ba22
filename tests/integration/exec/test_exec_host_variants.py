"""`exec` on other kinds of hosts: a cgroup v2 hierarchy, a kernel without mount_setattr."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostrelay_relay.handlers import exec as exec_handler
from tests.integration.exec.support import ExecJobs, make_settings

pytestmark = pytest.mark.integration

UNIFIED = Path("/sys/fs/cgroup/unified")
NO_DEFAULT_LIMITS = {"default_memory_mb": None, "default_cpu_percent": None, "default_pids": None}


@pytest.fixture
def cgroup_v2_root() -> Path:
    # This host runs cgroup v1 for the controllers and mounts an (almost empty) v2 hierarchy
    # beside them: enough to prove v2 job cgroups, joining, killing and clean-up.
    if not (UNIFIED / "cgroup.controllers").exists():
        pytest.skip("no cgroup v2 hierarchy mounted at /sys/fs/cgroup/unified")
    return UNIFIED


def test_cgroup_v2_job_runs_in_its_own_cgroup(exec_jobs: ExecJobs, cgroup_v2_root: Path) -> None:
    """Given a cgroup v2 root, when a job prints its cgroup, then it is hostrelay/<job id>."""
    settings = make_settings(cgroup_root=str(cgroup_v2_root), **NO_DEFAULT_LIMITS)
    run = exec_jobs.run({"argv": ["/bin/cat", "/proc/self/cgroup"]}, settings=settings)

    assert run.error is None, run.error
    assert f"0::/hostrelay/{run.job_id}\n" in run.stdout


def test_cgroup_v2_timeout_kills_the_tree(exec_jobs: ExecJobs, cgroup_v2_root: Path) -> None:
    """Given a cgroup v2 root, when a job tree outlives its timeout, then it is all gone."""
    settings = make_settings(cgroup_root=str(cgroup_v2_root), **NO_DEFAULT_LIMITS)
    run = exec_jobs.run(
        {"argv": ["/bin/sh", "-c", "sleep 60 & sleep 60"], "timeout_s": 0.5}, settings=settings
    )

    assert run.error is not None and run.error.code == "timeout"


def test_cgroup_v2_without_a_controller_refuses_that_limit(
    exec_jobs: ExecJobs, cgroup_v2_root: Path
) -> None:
    """Given a v2 hierarchy without the memory controller, when a job asks for a memory limit,
    then it fails limit_unsupported before anything runs."""
    if "memory" in (cgroup_v2_root / "cgroup.controllers").read_text().split():
        pytest.skip("this v2 hierarchy has the memory controller")
    settings = make_settings(cgroup_root=str(cgroup_v2_root), **NO_DEFAULT_LIMITS)
    run = exec_jobs.run({"argv": ["/bin/true"], "limits": {"memory_mb": 64}}, settings=settings)

    assert run.error is not None and run.error.code == "limit_unsupported"
    assert "memory" in run.error.message


def test_read_only_root_without_mount_setattr(
    exec_jobs: ExecJobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a kernel older than 5.12 (no mount_setattr), when a job writes to the host, then
    every mount was remounted read-only one by one and only /tmp is writable."""
    monkeypatch.setattr(exec_handler, "mount_setattr_supported", lambda: False)
    run = exec_jobs.run(
        {
            "argv": [
                "/bin/sh",
                "-c",
                "echo ok > /tmp/x && cat /tmp/x; /usr/bin/touch /var/tmp/y /dev/y /etc/y",
            ]
        }
    )

    assert run.stdout == "ok\n"
    assert run.stderr.count("Read-only file system") == 3
