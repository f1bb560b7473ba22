"""Per-job cgroup interface and the file helpers shared by the v1 and v2 implementations."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

CGROUP_PARENT = "hostrelay"
CPU_PERIOD_US = 100_000


class CgroupError(Exception):
    """The per-job cgroup could not be set up as asked."""


class LimitUnsupported(CgroupError):
    """A limit was asked for but this host's cgroup hierarchy lacks its controller."""


@dataclass(frozen=True)
class CgroupUsage:
    """What the cgroup measured for the whole process tree of a job."""

    cpu_s: float | None
    memory_peak_bytes: int | None
    oom_kills: int


class JobCgroup(ABC):
    """One job's cgroup (a directory per controller on v1, one directory on v2)."""

    def __init__(self, directories: tuple[Path, ...]) -> None:
        self.directories = directories

    @property
    def join_files(self) -> tuple[str, ...]:
        """Files the job writes "0" to, to join the cgroup before it runs anything."""
        return tuple(str(directory / "cgroup.procs") for directory in self.directories)

    def pids(self) -> set[int]:
        """Host pids of every process in the cgroup (the first hierarchy holds all of them)."""
        try:
            text = (self.directories[0] / "cgroup.procs").read_text()
        except FileNotFoundError:
            return set()
        return {int(line) for line in text.split()}

    def signal_all(self, signum: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def kill_all(self) -> None:
        self.signal_all(signal.SIGKILL)

    def wait_empty(self, timeout_s: float) -> bool:
        """SIGKILL whatever is left until the cgroup is empty; False if it never empties."""
        deadline = time.monotonic() + timeout_s
        while self.pids():
            if time.monotonic() >= deadline:
                return False
            self.kill_all()
            time.sleep(0.005)
        return True

    @abstractmethod
    def usage(self) -> CgroupUsage:
        """CPU, peak memory and OOM kills of the job so far."""

    def remove(self) -> None:
        for directory in self.directories:
            remove_cgroup_dir(directory)


def evict_and_remove(directory: Path) -> None:
    """SIGKILL every process in a cgroup directory, then remove it."""
    deadline = time.monotonic() + 5.0
    procs = directory / "cgroup.procs"
    while time.monotonic() < deadline:
        try:
            pids = [int(line) for line in procs.read_text().split()]
        except FileNotFoundError:
            return
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)
    remove_cgroup_dir(directory)


def remove_cgroup_dir(directory: Path, timeout_s: float = 2.0) -> None:
    """rmdir a cgroup; the kernel may report EBUSY for a moment after its last process exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def write_control(path: Path, value: str) -> None:
    """Write one value to a cgroup control file, naming the file in any error."""
    try:
        with path.open("w") as handle:
            handle.write(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror}") from exc


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def read_keyed(path: Path) -> dict[str, int]:
    """Parse `key value` lines (memory.events, cpu.stat, memory.oom_control)."""
    values: dict[str, int] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return values
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def block_devices(sys_block: Path = Path("/sys/block")) -> list[str]:
    """`major:minor` of every whole disk with a non-zero size (the targets of I/O limits)."""
    devices: list[str] = []
    if not sys_block.is_dir():
        return devices
    for disk in sorted(sys_block.iterdir()):
        if (read_int(disk / "size") or 0) > 0:
            devices.append((disk / "dev").read_text().strip())
    return devices


def cpu_quota_us(cpu_percent: int) -> int:
    """cfs quota per CPU_PERIOD_US for a share of one CPU (200 = two full CPUs)."""
    return max(1000, CPU_PERIOD_US * cpu_percent // 100)


def make_job_dir(parent: Path, name: str) -> Path:
    """Create parent/name, evicting a stale cgroup of the same name first (a crashed run)."""
    parent.mkdir(exist_ok=True)
    job_dir = parent / name
    if job_dir.exists():
        evict_and_remove(job_dir)
    job_dir.mkdir()
    return job_dir
