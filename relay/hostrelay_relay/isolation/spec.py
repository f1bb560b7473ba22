"""What an isolated job is: its command, identity, filesystem view and resource limits."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ResourceLimits:
    """Per-job cgroup limits; None leaves that resource unlimited."""

    memory_bytes: int | None = None
    cpu_percent: int | None = None
    pids: int | None = None
    io_bps: int | None = None


@dataclass(frozen=True)
class SandboxSpec:
    """Everything the job's processes need, resolved up front by the relay.

    The children set up between fork and execve and look nothing up themselves (no NSS, no
    probing): every name, path and kernel feature is decided here.
    """

    argv: tuple[str, ...]
    env: dict[str, str]
    hostname: str
    uid: int
    gid: int
    cwd: str = "/tmp"  # noqa: S108 - the job's own private tmpfs
    isolate_network: bool = True
    readonly_root: bool = True
    writable_paths: tuple[str, ...] = ()
    tmp_size_bytes: int = 64 * 1024 * 1024
    cgroup_join_files: tuple[str, ...] = ()
    cap_last_cap: int = 40
    # Kernels before 5.12 lack mount_setattr: then every one of `mount_points` is remounted.
    use_mount_setattr: bool = True
    mount_points: tuple[str, ...] = ()

    @property
    def executable(self) -> str:
        return self.argv[0]

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SandboxSpec:
        fields = json.loads(data)
        for name in ("argv", "writable_paths", "cgroup_join_files", "mount_points"):
            fields[name] = tuple(fields[name])
        return cls(**fields)


def read_mount_points(mountinfo: Path = Path("/proc/self/mountinfo")) -> tuple[str, ...]:
    """Mount points of this mount namespace, deepest first (the order to remount them in)."""
    points: list[str] = []
    for line in mountinfo.read_text().splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            points.append(_unescape_mountinfo(fields[4]))
    return tuple(sorted(set(points), key=_depth, reverse=True))


def _depth(point: str) -> tuple[int, int]:
    return point.rstrip("/").count("/"), len(point)


def _unescape_mountinfo(value: str) -> str:
    """mountinfo writes space, tab, newline and backslash as 3-digit octal escapes."""
    for escaped, plain in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        value = value.replace(escaped, plain)
    return value
