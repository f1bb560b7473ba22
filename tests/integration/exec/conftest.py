"""Fixtures for exec tests: real namespaces and cgroups on this host (root), collected output."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from tests.integration.exec.support import ExecJobs, job_cgroup_dirs
from tests.integration.machine_lock import machine_wide


@pytest.fixture(autouse=True)
def _needs_root_on_linux() -> None:
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("exec isolation needs root on Linux (namespaces and cgroups)")


@pytest.fixture(scope="package", autouse=True)
def _cgroups_to_ourselves() -> Iterator[None]:
    """One test run at a time uses the relay's cgroups on this machine: a relay starting up
    removes every job cgroup it finds (left by a crash), also another run's live ones."""
    with machine_wide("exec-cgroups"):
        yield


@pytest.fixture
def exec_jobs() -> Iterator[ExecJobs]:
    """Runs jobs; afterwards proves no job left a cgroup behind."""
    jobs = ExecJobs()
    yield jobs
    for job_id in jobs.job_ids:
        assert job_cgroup_dirs(job_id) == [], f"cgroup of {job_id} left behind"
