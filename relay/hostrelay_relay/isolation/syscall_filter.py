"""The seccomp filter of every exec job: syscalls a job has no business with fail with EPERM."""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass

from hostrelay_relay.isolation import syscalls as sc

# Why a hand-built classic BPF program, installed with prctl through ctypes:
# - Debian's python3-seccomp binds libseccomp for the system Python only; the relay lives in
#   a venv on Python 3.10-3.13 installed from wheels (no compiler on the DCs).
# - PyPI's pyseccomp (ctypes over libseccomp2) had its last release in 2021; libseccomp would
#   be one more shared library to find and load before fork, for a filter this small.
# - The program below is a fixed list of syscall numbers per architecture: about 120
#   instructions, built once when the spawner imports this module (children only call
#   prctl), checked against the kernel headers and run for real in the tests.
# Policy: a syscall of another ABI (i386 on x86_64, x32) is refused; each denied call returns
# EPERM so the job sees an error, not a kill. clone3 returns ENOSYS instead: its flags sit in
# memory a filter cannot read, and ENOSYS makes the C library fall back to clone, whose flags
# the filter can check. Nested user namespaces are refused that way (unshare and namespace
# flags on clone), which is what user.max_user_namespaces = 0 would give the job.

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_SYSCALL_BIT = 0x40000000
_CLONE_NAMESPACE_FLAGS = (
    sc.CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | sc.CLONE_NEWUTS
    | sc.CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | sc.CLONE_NEWPID
    | sc.CLONE_NEWNET
)

# name: (x86_64 number, aarch64 number or None where the call does not exist there)
DENIED_SYSCALLS: dict[str, tuple[int, int | None]] = {
    # mounts and the filesystem root
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    # namespaces beyond those the launcher made
    "unshare": (272, 97),
    "setns": (308, 268),
    # the kernel itself
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "reboot": (169, 142),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "syslog": (103, 116),
    "lookup_dcookie": (212, 18),
    # io_uring runs operations the filter never sees
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    # other processes' memory
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "pidfd_getfd": (438, 438),
    # kernel keyrings (shared by every process of a user)
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    # host-wide settings and devices
    "acct": (163, 89),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "quotactl": (179, 60),
    "quotactl_fd": (443, 443),
    "vhangup": (153, 58),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "clock_adjtime": (305, 266),
    "adjtimex": (159, 171),
    "sethostname": (170, 161),
    "setdomainname": (171, 162),
    "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264),
    "nfsservctl": (180, 42),
    # x86 only: port I/O, LDT, obsolete calls
    "iopl": (172, None),
    "ioperm": (173, None),
    "modify_ldt": (154, None),
    "uselib": (134, None),
    "_sysctl": (156, None),
    "create_module": (174, None),
    "get_kernel_syms": (177, None),
    "query_module": (178, None),
}
CLONE = (56, 220)
CLONE3 = (435, 435)

# Classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS = 0x00 | 0x00 | 0x20
_JEQ_K = 0x05 | 0x10
_JGE_K = 0x05 | 0x30
_JSET_K = 0x05 | 0x40
_RET_K = 0x06
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
# Offsets in struct seccomp_data: nr, arch, then the low half of args[0] (little-endian).
_OFFSET_NR = 0
_OFFSET_ARCH = 4
_OFFSET_ARG0_LOW = 16
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


class _SockFilter(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter)))


@dataclass(frozen=True)
class Instruction:
    code: int
    jt: int
    jf: int
    k: int


class UnsupportedArchitecture(RuntimeError):
    """This machine has no syscall table here: exec jobs would run unfiltered, so none run."""


def build_program(machine: str) -> list[Instruction]:
    """The filter for `machine` (os.uname().machine), as classic BPF instructions."""
    if machine not in _AUDIT_ARCH:
        raise UnsupportedArchitecture(unsupported_reason(machine))
    column = 0 if machine == "x86_64" else 1

    def deny(number: int, error: int = errno.EPERM) -> list[Instruction]:
        return [Instruction(_JEQ_K, 0, 1, number), Instruction(_RET_K, 0, 0, _RET_ERRNO | error)]

    program = [
        Instruction(_LD_W_ABS, 0, 0, _OFFSET_ARCH),
        Instruction(_JEQ_K, 1, 0, _AUDIT_ARCH[machine]),
        Instruction(_RET_K, 0, 0, _RET_KILL_PROCESS),  # numbers below mean other calls there
        Instruction(_LD_W_ABS, 0, 0, _OFFSET_NR),
    ]
    if machine == "x86_64":  # the x32 ABI shares AUDIT_ARCH_X86_64, with bit 30 set
        program += [
            Instruction(_JGE_K, 0, 1, _X32_SYSCALL_BIT),
            Instruction(_RET_K, 0, 0, _RET_ERRNO | errno.EPERM),
        ]
    for numbers in DENIED_SYSCALLS.values():
        number = numbers[column]
        if number is not None:
            program += deny(number)
    program += deny(CLONE3[column], errno.ENOSYS)
    program += [
        Instruction(_JEQ_K, 0, 3, CLONE[column]),
        Instruction(_LD_W_ABS, 0, 0, _OFFSET_ARG0_LOW),
        Instruction(_JSET_K, 0, 1, _CLONE_NAMESPACE_FLAGS),
        Instruction(_RET_K, 0, 0, _RET_ERRNO | errno.EPERM),
        Instruction(_RET_K, 0, 0, _RET_ALLOW),
    ]
    return program


class SyscallFilter:
    """A program ready to install: built before any fork, installed with one prctl."""

    def __init__(self, program: list[Instruction]) -> None:
        self._instructions = (_SockFilter * len(program))(
            *(_SockFilter(i.code, i.jt, i.jf, i.k) for i in program)
        )
        self._fprog = _SockFprog(len(program), self._instructions)

    def install(self) -> None:
        """Filter the calling thread and its future children; needs no_new_privs (or root)."""
        sc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(self._fprog))


def job_filter(machine: str | None = None) -> SyscallFilter:
    return SyscallFilter(build_program(machine or os.uname().machine))


def unsupported_reason(machine: str | None = None) -> str | None:
    """Why exec jobs cannot be filtered on this machine, or None when they can."""
    machine = machine or os.uname().machine
    if machine in _AUDIT_ARCH:
        return None
    return f"exec has no syscall filter for {machine} (only x86_64 and aarch64)"
