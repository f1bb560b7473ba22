"""Create a job's cgroup on whichever cgroup version the host runs, and clear stale ones."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from hostrelay_relay.isolation.cgroup_common import (
    CGROUP_PARENT,
    CgroupError,
    JobCgroup,
    evict_and_remove,
)
from hostrelay_relay.isolation.cgroup_v1 import V1_CONTROLLERS, CgroupV1
from hostrelay_relay.isolation.cgroup_v2 import CgroupV2
from hostrelay_relay.isolation.spec import ResourceLimits


def create_job_cgroup(root: Path, name: str, limits: ResourceLimits) -> JobCgroup:
    """Create `hostrelay/<name>` with `limits`, on cgroup v2 if `root` is a v2 mount, else v1."""
    try:
        if (root / "cgroup.controllers").exists():
            return CgroupV2.create(root, name, limits)
        return CgroupV1.create(root, name, limits)
    except OSError as exc:
        raise CgroupError(f"cannot create the job's cgroup under {root}: {exc}") from exc


def remove_stale_job_cgroups(root: Path, keep: Collection[str] = frozenset()) -> list[str]:
    """Kill and remove the job cgroups a previous relay run left behind, except `keep`.

    For relay start-up (when no exec job can be running yet); returns the names removed.
    """
    parents = [root / CGROUP_PARENT] + [root / c / CGROUP_PARENT for c in V1_CONTROLLERS]
    removed: set[str] = set()
    for parent in parents:
        if not parent.is_dir():
            continue
        for child in parent.iterdir():
            if child.is_dir() and child.name not in keep:
                evict_and_remove(child)
                removed.add(child.name)
    return sorted(removed)
