"""Job cgroups on a cgroup v2 host: one directory in a subtree delegated to the relay."""

from __future__ import annotations

from pathlib import Path

from hostrelay_relay.isolation.cgroup_common import (
    CGROUP_PARENT,
    CPU_PERIOD_US,
    CgroupUsage,
    JobCgroup,
    LimitUnsupported,
    block_devices,
    cpu_quota_us,
    make_job_dir,
    read_int,
    read_keyed,
    remove_cgroup_dir,
    write_control,
)
from hostrelay_relay.isolation.spec import ResourceLimits

_USEFUL_CONTROLLERS = ("memory", "pids", "cpu", "io")


class CgroupV2(JobCgroup):
    """`<root>/hostrelay/<job>`; `root` must be delegated to the relay (or be the real root)."""

    @classmethod
    def create(cls, root: Path, name: str, limits: ResourceLimits) -> CgroupV2:
        available = set((root / "cgroup.controllers").read_text().split())
        wanted = {
            "memory": limits.memory_bytes is not None,
            "pids": limits.pids is not None,
            "cpu": limits.cpu_percent is not None,
            "io": limits.io_bps is not None,
        }
        for controller, needed in wanted.items():
            if needed and controller not in available:
                raise LimitUnsupported(
                    f"cgroup v2 at {root} does not offer the {controller} controller"
                )
        enable = [c for c in _USEFUL_CONTROLLERS if c in available]
        parent = root / CGROUP_PARENT
        parent.mkdir(exist_ok=True)
        _enable_controllers(root, enable)
        _enable_controllers(parent, enable)
        job_dir = make_job_dir(parent, name)
        cgroup = cls((job_dir,))
        try:
            cgroup._apply(limits)
        except BaseException:
            remove_cgroup_dir(job_dir)
            raise
        return cgroup

    @property
    def path(self) -> Path:
        return self.directories[0]

    def _apply(self, limits: ResourceLimits) -> None:
        if limits.memory_bytes is not None:
            write_control(self.path / "memory.max", str(limits.memory_bytes))
            if (self.path / "memory.swap.max").exists():
                write_control(self.path / "memory.swap.max", "0")
        if limits.pids is not None:
            write_control(self.path / "pids.max", str(limits.pids))
        if limits.cpu_percent is not None:
            quota = cpu_quota_us(limits.cpu_percent)
            write_control(self.path / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        if limits.io_bps is not None:
            for device in block_devices():
                write_control(
                    self.path / "io.max", f"{device} rbps={limits.io_bps} wbps={limits.io_bps}"
                )

    def kill_all(self) -> None:
        # cgroup.kill (5.14+) kills atomically, racing no fork; older kernels: signal each pid.
        kill_file = self.path / "cgroup.kill"
        if kill_file.exists():
            write_control(kill_file, "1")
        else:
            super().kill_all()

    def usage(self) -> CgroupUsage:
        usage_usec = read_keyed(self.path / "cpu.stat").get("usage_usec")
        return CgroupUsage(
            cpu_s=None if usage_usec is None else usage_usec / 1e6,
            memory_peak_bytes=read_int(self.path / "memory.peak"),
            oom_kills=read_keyed(self.path / "memory.events").get("oom_kill", 0),
        )


def _enable_controllers(directory: Path, controllers: list[str]) -> None:
    enabled = set((directory / "cgroup.subtree_control").read_text().split())
    missing = [c for c in controllers if c not in enabled]
    if missing:
        write_control(directory / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
