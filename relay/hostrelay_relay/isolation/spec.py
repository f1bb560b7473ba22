"""What an isolated job is: its command, identity, filesystem view and resource limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ResourceLimits:
    """Per-job cgroup limits; None leaves that resource unlimited."""

    memory_bytes: int | None = None
    cpu_percent: int | None = None
    pids: int | None = None
    io_bps: int | None = None

    def is_empty(self) -> bool:
        return all(
            value is None for value in (self.memory_bytes, self.cpu_percent, self.pids, self.io_bps)
        )


@dataclass(frozen=True)
class SandboxSpec:
    """Everything the forked child needs, resolved up front by the relay.

    The child runs between fork and execve in a copy of a multi-threaded process, so it must
    not look anything up (no NSS, no imports, no logging): every name is resolved here.
    """

    argv: tuple[str, ...]
    env: dict[str, str]
    hostname: str
    uid: int
    gid: int
    cwd: str = "/tmp"
    isolate_network: bool = True
    readonly_root: bool = True
    writable_paths: tuple[str, ...] = ()
    tmp_size_bytes: int = 64 * 1024 * 1024
    cgroup_procs_files: tuple[str, ...] = ()
    cap_last_cap: int = 40
    # Mount points, deepest first, for kernels without mount_setattr (< 5.12).
    mount_points: tuple[str, ...] = field(default=())

    @property
    def executable(self) -> str:
        return self.argv[0]


def read_mount_points(mountinfo: Path = Path("/proc/self/mountinfo")) -> tuple[str, ...]:
    """Mount points of this mount namespace, deepest first (the order to remount them in)."""
    points: list[str] = []
    for line in mountinfo.read_text().splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            points.append(_unescape_mountinfo(fields[4]))
    return tuple(sorted(set(points), key=lambda point: point.count("/"), reverse=True))


def _unescape_mountinfo(value: str) -> str:
    """mountinfo writes space, tab, newline and backslash as 3-digit octal escapes."""
    for escaped, plain in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        value = value.replace(escaped, plain)
    return value
