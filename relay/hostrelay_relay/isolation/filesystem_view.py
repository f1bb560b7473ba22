"""The job's view of the filesystem: host read-only, private /tmp, /dev, /proc and /sys."""

from __future__ import annotations

import os

from hostrelay_relay.isolation import syscalls as sc
from hostrelay_relay.isolation.spec import SandboxSpec

# Device nodes a job may use; everything else under the host's /dev stays out of reach.
_DEV_NODES = ("null", "zero", "full", "random", "urandom")
_DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
)


def build_filesystem_view(spec: SandboxSpec) -> None:
    """Run in the job's fresh mount namespace, as root, before privileges are dropped."""
    # Nothing mounted from here on may propagate back to the host.
    sc.mount(None, b"/", None, sc.MS_REC | sc.MS_PRIVATE, None)
    node_fds = [os.open("/dev/" + name, os.O_PATH | os.O_CLOEXEC) for name in _DEV_NODES]
    if spec.readonly_root:
        _make_readonly(spec)
        for path in spec.writable_paths:
            _make_writable(path.encode(), spec.use_mount_setattr)
    _mount_private_dev(node_fds, spec.tmp_size_bytes)
    tmpfs_options = b"mode=1777,size=%d" % spec.tmp_size_bytes
    sc.mount(b"tmpfs", b"/tmp", b"tmpfs", sc.MS_NOSUID | sc.MS_NODEV, tmpfs_options)
    # A procfs mounted from inside the new PID namespace lists only the job's processes; a
    # fresh sysfs shows only the job's network namespace.
    _replace_mount(b"/proc", b"proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    _replace_mount(b"/sys", b"sysfs", sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)


def _make_readonly(spec: SandboxSpec) -> None:
    if spec.use_mount_setattr:
        sc.mount_setattr_recursive(b"/", sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID, 0)
        return
    # Kernels before 5.12: remount every mount point read-only, one by one.
    for point in spec.mount_points:
        flags = sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID
        sc.mount(None, point.encode(), None, flags, None)


def _make_writable(path: bytes, use_mount_setattr: bool) -> None:
    # A bind mount of the path onto itself is a mount of its own, whose flags we may change.
    sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC, None)
    if use_mount_setattr:
        sc.mount_setattr_recursive(path, 0, sc.MOUNT_ATTR_RDONLY)
    else:
        sc.mount(None, path, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_NOSUID, None)


def _mount_private_dev(node_fds: list[int], shm_size: int) -> None:
    sc.mount(b"tmpfs", b"/dev", b"tmpfs", sc.MS_NOSUID | sc.MS_NOEXEC, b"mode=755,size=64k")
    for name, fd in zip(_DEV_NODES, node_fds, strict=True):
        target = "/dev/" + name
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666))
        # The old /proc is still mounted here: its fd links reach the host's device nodes.
        sc.mount(b"/proc/self/fd/%d" % fd, target.encode(), None, sc.MS_BIND, None)
        os.close(fd)
    for name, target in _DEV_LINKS:
        os.symlink(target, "/dev/" + name)
    os.mkdir("/dev/shm")  # noqa: S108 - inside the job's own fresh /dev
    shm_options = b"mode=1777,size=%d" % shm_size
    sc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", sc.MS_NOSUID | sc.MS_NODEV, shm_options)
    readonly = sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NOEXEC
    sc.mount(None, b"/dev", None, readonly, None)


def _replace_mount(target: bytes, fstype: bytes, flags: int) -> None:
    sc.umount_detach(target)
    sc.mount(fstype, target, fstype, flags, None)
