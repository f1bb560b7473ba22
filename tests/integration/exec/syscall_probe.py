"""Makes syscalls a job must not make, with arguments that change nothing; prints each errno.

Standard library only: tests run its text as `python3 -c` inside exec jobs, with `NAME=NUMBER`
lines on stdin, and import `probe` to run it in a forked child. Output: `NAME ERRNO` lines
(0 when the call succeeded). Every call here is harmless even when it succeeds as root: paths
do not exist, flags or magic numbers are invalid, or the call only reads.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable

_MISSING = b"/nonexistent/hostrelay-probe"
_CLONE_NEWUSER = 0x10000000
_SIGCHLD = 17
_BAD = 0xFFFFFFFF
_P = ctypes.c_char_p
_L = ctypes.c_long

ARGS: dict[str, tuple[object, ...]] = {
    "mount": (_P(b"none"), _P(_MISSING), _P(b"tmpfs"), _L(0), None),
    "umount2": (_P(_MISSING), _L(0)),
    "pivot_root": (_P(_MISSING), _P(_MISSING)),
    "chroot": (_P(_MISSING),),
    "open_tree": (_L(-1), _P(_MISSING), _L(0)),
    "move_mount": (_L(-1), _P(b""), _L(-1), _P(b""), _L(0)),
    "fsopen": (_P(b"hostrelay-no-such-fs"), _L(0)),
    "fsconfig": (_L(-1), _L(0), None, None, _L(0)),
    "fsmount": (_L(-1), _L(0), _L(0)),
    "fspick": (_L(-1), _P(_MISSING), _L(0)),
    "mount_setattr": (_L(-1), _P(_MISSING), _L(0), None, _L(0)),
    "unshare": (_L(_CLONE_NEWUSER),),
    "setns": (_L(-1), _L(0)),
    "kexec_load": (_L(0), _L(0), None, _L(_BAD)),
    "kexec_file_load": (_L(-1), _L(-1), _L(0), None, _L(_BAD)),
    "reboot": (_L(0), _L(0), _L(0), None),
    "init_module": (None, _L(0), _P(b"")),
    "finit_module": (_L(-1), _P(b""), _L(0)),
    "delete_module": (_P(b"hostrelay_no_such_module"), _L(0)),
    "bpf": (_L(0xFFFF), None, _L(0)),
    "perf_event_open": (None, _L(0), _L(-1), _L(-1), _L(0)),
    "userfaultfd": (_L(_BAD),),
    "syslog": (_L(10), None, _L(0)),  # SYSLOG_ACTION_SIZE_BUFFER: reads a size
    "lookup_dcookie": (_L(0), None, _L(0)),
    "io_uring_setup": (_L(0), None),
    "io_uring_enter": (_L(-1), _L(0), _L(0), _L(0), None, _L(0)),
    "io_uring_register": (_L(-1), _L(0), None, _L(0)),
    "ptrace": (_L(2), _L(0x3FFFFFFF), _L(0), _L(0)),  # PEEKDATA of a pid that cannot exist
    "process_vm_readv": (_L(1), None, _L(0), None, _L(0), _L(1)),
    "process_vm_writev": (_L(1), None, _L(0), None, _L(0), _L(1)),
    "pidfd_getfd": (_L(-1), _L(0), _L(0)),
    "keyctl": (_L(0xFFFF),),
    "add_key": (None, None, None, _L(0), _L(0)),
    "request_key": (None, None, None, _L(0)),
    "acct": (_P(_MISSING),),
    "swapon": (_P(_MISSING), _L(0)),
    "swapoff": (_P(_MISSING),),
    "quotactl": (_L(_BAD), None, _L(0), None),
    "quotactl_fd": (_L(-1), _L(0), _L(0), None),
    "vhangup": (),  # the caller has no controlling terminal (own session)
    "settimeofday": (None, None),  # neither time nor zone given: changes nothing
    "clock_settime": (_L(0xFFFF), None),
    "clock_adjtime": (_L(0xFFFF), None),
    "adjtimex": (None,),
    "sethostname": (None, _L(100_000)),
    "setdomainname": (None, _L(100_000)),
    "open_by_handle_at": (_L(-1), None, _L(0)),
    "name_to_handle_at": (_L(-1), _P(_MISSING), None, None, _L(0)),
    "nfsservctl": (),
    "iopl": (_L(99),),
    "ioperm": (_L(_BAD), _L(1), _L(1)),
    "modify_ldt": (_L(99), None, _L(0)),
    "uselib": (_P(_MISSING),),
    "_sysctl": (None,),
    "create_module": (None, _L(0)),
    "get_kernel_syms": (None,),
    "query_module": (None, _L(0), None, _L(0), None),
    "clone3": (None, _L(0)),
}
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _call(number: int, args: tuple[object, ...]) -> int:
    ctypes.set_errno(0)
    result = _libc.syscall(_L(number), *args)
    return 0 if result >= 0 else ctypes.get_errno()


def _clone_new_user(number: int) -> int:
    """clone(CLONE_NEWUSER | SIGCHLD): a child that exits at once if it was made."""
    ctypes.set_errno(0)
    pid = _libc.syscall(_L(number), _L(_CLONE_NEWUSER | _SIGCHLD), None, None, None, None)
    if pid == 0:
        os._exit(0)
    if pid < 0:
        return ctypes.get_errno()
    os.waitpid(pid, 0)
    return 0


def probe(numbers: Iterable[tuple[str, int]]) -> dict[str, int]:
    """errno of each named call (0 = it succeeded); `clone` is tried with CLONE_NEWUSER."""
    results = {}
    for name, number in numbers:
        if name == "clone":
            results[name] = _clone_new_user(number)
        else:
            results[name] = _call(number, ARGS[name])
    return results


if __name__ == "__main__":
    pairs = [line.split("=") for line in sys.stdin.read().split()]
    for name, error in probe((name, int(number)) for name, number in pairs).items():
        print(name, error)
