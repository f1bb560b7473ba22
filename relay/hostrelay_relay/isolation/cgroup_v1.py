"""Job cgroups on a cgroup v1 host: one directory per controller hierarchy."""

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

# pids first: it is the hierarchy whose cgroup.procs we read to find every job process.
V1_CONTROLLERS = ("pids", "memory", "cpu", "cpuacct", "blkio")


class CgroupV1(JobCgroup):
    """`<root>/<controller>/hostrelay/<job>` for each mounted controller."""

    def __init__(self, directories: dict[str, Path]) -> None:
        super().__init__(tuple(directories.values()))
        self.by_controller = directories

    @classmethod
    def create(cls, root: Path, name: str, limits: ResourceLimits) -> CgroupV1:
        wanted = {
            "memory": limits.memory_bytes is not None,
            "pids": limits.pids is not None,
            "cpu": limits.cpu_percent is not None,
            "blkio": limits.io_bps is not None,
        }
        hierarchies: dict[str, Path] = {}
        seen: set[Path] = set()
        for controller in V1_CONTROLLERS:
            mount = root / controller
            if not (mount / "cgroup.procs").exists():
                if wanted.get(controller):
                    raise LimitUnsupported(f"this host has no cgroup v1 {controller} controller")
                continue
            # cpu and cpuacct are often one hierarchy reached through two symlinks.
            real = mount.resolve()
            if real not in seen:
                seen.add(real)
                hierarchies[controller] = mount
        if not hierarchies:
            raise LimitUnsupported(f"no cgroup v1 hierarchy under {root}")

        created: dict[str, Path] = {}
        try:
            for controller, mount in hierarchies.items():
                created[controller] = make_job_dir(mount / CGROUP_PARENT, name)
            cgroup = cls(created)
            cgroup._apply(limits)
        except BaseException:
            for directory in created.values():
                remove_cgroup_dir(directory)
            raise
        return cgroup

    @property
    def join_files(self) -> tuple[str, ...]:
        # Moving only the calling thread ("0" to `tasks`) skips the global threadgroup lock
        # whose RCU sync costs 5-20 ms per job after an idle spell; cgroup.procs takes it. The
        # job is single-threaded when it joins, so this moves the whole process.
        return tuple(str(directory / "tasks") for directory in self.directories)

    def _dir_with(self, filename: str) -> Path | None:
        for directory in self.directories:
            if (directory / filename).exists():
                return directory
        return None

    def _apply(self, limits: ResourceLimits) -> None:
        if limits.memory_bytes is not None:
            memory = self._dir_with("memory.limit_in_bytes")
            if memory is None:
                raise LimitUnsupported("this host has no cgroup v1 memory controller")
            write_control(memory / "memory.limit_in_bytes", str(limits.memory_bytes))
            # With swap accounting on, memory+swap gets the same cap so the job cannot swap.
            if (memory / "memory.memsw.limit_in_bytes").exists():
                write_control(memory / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
        if limits.pids is not None:
            pids = self._dir_with("pids.max")
            if pids is None:
                raise LimitUnsupported("this host has no cgroup v1 pids controller")
            write_control(pids / "pids.max", str(limits.pids))
        if limits.cpu_percent is not None:
            cpu = self._dir_with("cpu.cfs_quota_us")
            if cpu is None:
                raise LimitUnsupported("this host has no cgroup v1 cpu controller")
            write_control(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            write_control(cpu / "cpu.cfs_quota_us", str(cpu_quota_us(limits.cpu_percent)))
        if limits.io_bps is not None:
            blkio = self._dir_with("blkio.throttle.read_bps_device")
            if blkio is None:
                raise LimitUnsupported("this host has no cgroup v1 blkio controller")
            for device in block_devices():
                rule = f"{device} {limits.io_bps}"
                write_control(blkio / "blkio.throttle.read_bps_device", rule)
                write_control(blkio / "blkio.throttle.write_bps_device", rule)

    def usage(self) -> CgroupUsage:
        cpu_ns: int | None = None
        cpuacct = self._dir_with("cpuacct.usage")
        if cpuacct is not None:
            cpu_ns = read_int(cpuacct / "cpuacct.usage")
        peak: int | None = None
        oom_kills = 0
        memory = self._dir_with("memory.max_usage_in_bytes")
        if memory is not None:
            peak = read_int(memory / "memory.max_usage_in_bytes")
            oom_kills = read_keyed(memory / "memory.oom_control").get("oom_kill", 0)
        return CgroupUsage(
            cpu_s=None if cpu_ns is None else cpu_ns / 1e9,
            memory_peak_bytes=peak,
            oom_kills=oom_kills,
        )
