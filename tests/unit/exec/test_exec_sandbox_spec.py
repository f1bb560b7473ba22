"""SandboxSpec: what the relay hands the spawner, and the mount table it reads for old kernels."""

from __future__ import annotations

from pathlib import Path

from hostrelay_relay.isolation.spec import SandboxSpec, read_mount_points


def test_spec_survives_the_trip_to_the_spawner() -> None:
    """Given a spec with unicode args, when encoded and decoded, then it is the same spec."""
    spec = SandboxSpec(
        argv=("/bin/echo", "grüße", "a b"),
        env={"PATH": "/bin", "LANG": "C.UTF-8"},
        hostname="01JOB",
        uid=65534,
        gid=65534,
        writable_paths=("/srv/out",),
        cgroup_join_files=("/sys/fs/cgroup/pids/hostrelay/01JOB/tasks",),
        use_mount_setattr=False,
        mount_points=("/proc", "/"),
    )

    assert SandboxSpec.from_json(spec.to_json()) == spec


def test_mount_points_are_unescaped_and_deepest_first(tmp_path: Path) -> None:
    """Given a mountinfo with nested and space-containing mount points, then they come back
    unescaped, each once, deeper ones before their parents."""
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw\n"
        "40 27 0:40 / /mnt/my\\040disk rw - ext4 /dev/vdb rw\n"
        "41 27 0:40 / /mnt/my\\040disk rw - ext4 /dev/vdb rw\n"
    )

    points = read_mount_points(mountinfo)

    assert sorted(points) == ["/", "/mnt/my disk", "/proc", "/sys/fs/cgroup"]
    assert points.index("/sys/fs/cgroup") < points.index("/proc") < points.index("/")
