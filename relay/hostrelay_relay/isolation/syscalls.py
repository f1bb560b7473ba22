"""ctypes bindings for the Linux calls job isolation needs and Python 3.11's os module lacks."""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

# Resolved once at import, so forked children never need the dynamic loader.
_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
# mount_setattr has the same number on every architecture (added after the 424 unification).
SYS_MOUNT_SETATTR = 442

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_unshare = _libc.unshare
_unshare.argtypes = [ctypes.c_int]
_unshare.restype = ctypes.c_int

_mount = _libc.mount
_mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_mount.restype = ctypes.c_int

_umount2 = _libc.umount2
_umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_umount2.restype = ctypes.c_int

_sethostname = _libc.sethostname
_sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_sethostname.restype = ctypes.c_int

_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int

_capset = _libc.capset
_capset.restype = ctypes.c_int

_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def _check(result: int, call: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_unshare(flags), "unshare")


def mount(
    source: bytes | None, target: bytes, fstype: bytes | None, flags: int, data: bytes | None
) -> None:
    _check(_mount(source, target, fstype, flags, data), "mount " + target.decode(errors="replace"))


def umount_detach(target: bytes) -> None:
    _check(_umount2(target, MNT_DETACH), "umount " + target.decode(errors="replace"))


def mount_setattr_recursive(path: bytes, attr_set: int, attr_clr: int) -> bool:
    """Change flags of every mount at and below `path`; False when the kernel lacks the call."""
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    result = _syscall(
        ctypes.c_long(SYS_MOUNT_SETATTR),
        ctypes.c_int(AT_FDCWD),
        ctypes.c_char_p(path),
        ctypes.c_uint(AT_RECURSIVE),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    if result != 0:
        err = ctypes.get_errno()
        if err == 38:  # ENOSYS: kernel older than 5.12
            return False
        raise OSError(err, f"mount_setattr: {os.strerror(err)}")
    return True


@functools.cache
def mount_setattr_supported() -> bool:
    """Whether the kernel has mount_setattr (5.12+); probed once with a no-op call."""
    return mount_setattr_recursive(b"/", 0, 0)


def sethostname(name: bytes) -> None:
    _check(_sethostname(name, len(name)), "sethostname")


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    _check(_prctl(option, arg2, arg3, 0, 0), f"prctl({option})")


def clear_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets of the calling thread."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_capset(ctypes.byref(header), ctypes.byref(data)), "capset")


def cap_last_cap() -> int:
    """Highest capability number the running kernel knows."""
    return int(Path("/proc/sys/kernel/cap_last_cap").read_text().strip())
