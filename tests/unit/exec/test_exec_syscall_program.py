"""The exec seccomp program, run instruction by instruction for both architectures it covers.

The kernel runs it for real in tests/integration/exec/test_exec_syscall_filter.py (on this
machine's architecture); here each architecture's table, the ABI checks and the clone flag
check are walked through with the seccomp_data the kernel would pass.
"""

from __future__ import annotations

import errno
import re
import struct
from pathlib import Path

import pytest

from hostrelay_relay.isolation.syscall_filter import (
    CLONE,
    CLONE3,
    DENIED_SYSCALLS,
    Instruction,
    UnsupportedArchitecture,
    build_program,
)

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
FOREIGN_ARCH = {"x86_64": 0x40000003, "aarch64": 0x40000028}  # i386, 32-bit arm
KILL_PROCESS = 0x80000000
ALLOW = 0x7FFF0000
EPERM = 0x00050000 | errno.EPERM
ENOSYS = 0x00050000 | errno.ENOSYS
# read, write, openat, execve, exit_group, wait4, mmap, socket, seccomp: ordinary work
ORDINARY = {
    "x86_64": [0, 1, 257, 59, 231, 61, 9, 41, 317],
    "aarch64": [63, 64, 56, 221, 94, 260, 222, 198, 277],
}
NAMESPACE_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000]
NAMESPACE_FLAGS.append(0x40000000)
# What fork() and pthread_create() pass to clone.
FORK_FLAGS = 0x01200011  # CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
THREAD_FLAGS = 0x003D0F00
HEADERS = {
    "x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    "aarch64": Path("/usr/include/asm-generic/unistd.h"),
}


def run_filter(program: list[Instruction], arch: int, nr: int, arg0: int = 0) -> int:
    """What the kernel's BPF interpreter returns for struct seccomp_data {nr, arch, ip, args}."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    accumulator, pc = 0, 0
    while True:
        op = program[pc]
        pc += 1
        if op.code == 0x20:  # BPF_LD | BPF_W | BPF_ABS
            (accumulator,) = struct.unpack_from("<I", data, op.k)
        elif op.code == 0x06:  # BPF_RET | BPF_K
            return op.k
        else:
            taken = {
                0x15: accumulator == op.k,  # JEQ
                0x35: accumulator >= op.k,  # JGE (unsigned)
                0x45: bool(accumulator & op.k),  # JSET
            }[op.code]
            pc += op.jt if taken else op.jf


def column(machine: str) -> int:
    return 0 if machine == "x86_64" else 1


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
@pytest.mark.parametrize("name", sorted(DENIED_SYSCALLS))
def test_each_denied_call_returns_eperm(machine: str, name: str) -> None:
    """Given the program for an architecture, when the job makes a denied call, then EPERM."""
    number = DENIED_SYSCALLS[name][column(machine)]
    if number is None:
        pytest.skip(f"{name} does not exist on {machine}")

    assert run_filter(build_program(machine), AUDIT_ARCH[machine], number) == EPERM


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_ordinary_calls_and_plain_clones_are_allowed(machine: str) -> None:
    """Given the program, when the job reads, writes, execs, forks or starts threads, then
    the calls go through."""
    program = build_program(machine)
    arch = AUDIT_ARCH[machine]
    clone = CLONE[column(machine)]

    assert [run_filter(program, arch, nr) for nr in ORDINARY[machine]] == [ALLOW] * 9
    assert run_filter(program, arch, clone, FORK_FLAGS) == ALLOW
    assert run_filter(program, arch, clone, THREAD_FLAGS) == ALLOW


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
@pytest.mark.parametrize("flag", NAMESPACE_FLAGS)
def test_clone_into_any_new_namespace_returns_eperm(machine: str, flag: int) -> None:
    """Given the program, when the job clones with a namespace flag, then EPERM."""
    program = build_program(machine)

    result = run_filter(program, AUDIT_ARCH[machine], CLONE[column(machine)], FORK_FLAGS | flag)

    assert result == EPERM


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_clone3_returns_enosys(machine: str) -> None:
    """Given the program, when the job calls clone3, then ENOSYS (the C library then clones)."""
    program = build_program(machine)

    assert run_filter(program, AUDIT_ARCH[machine], CLONE3[column(machine)]) == ENOSYS


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_a_call_of_another_abi_kills_the_process(machine: str) -> None:
    """Given the program, when a 32-bit call arrives (whose numbers mean other calls), then
    the process is killed rather than the call judged by the wrong table."""
    program = build_program(machine)

    assert run_filter(program, FOREIGN_ARCH[machine], 0) == KILL_PROCESS
    assert run_filter(program, FOREIGN_ARCH[machine], 165) == KILL_PROCESS


def test_x32_calls_return_eperm() -> None:
    """Given the x86_64 program, when an x32 call arrives (bit 30 set), then EPERM."""
    program = build_program("x86_64")

    for nr in (0, 1, 59, 165):
        assert run_filter(program, AUDIT_ARCH["x86_64"], nr | 0x40000000) == EPERM


def test_other_machines_get_no_filter_and_say_why() -> None:
    """Given a machine without a table, then building the filter fails with the reason."""
    with pytest.raises(UnsupportedArchitecture, match="no syscall filter for ppc64le"):
        build_program("ppc64le")


def header_numbers(machine: str) -> dict[str, int]:
    header = HEADERS[machine]
    if not header.exists():
        pytest.skip(f"{header} is not installed (linux-libc-dev)")
    found = re.findall(r"#define __NR_(\w+)\s+(\d+)\b", header.read_text())
    return {name: int(number) for name, number in found}


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_syscall_numbers_match_the_kernel_headers(machine: str) -> None:
    """Given the kernel's own syscall tables, then every number in the filter is right."""
    numbers = header_numbers(machine)
    ours = {name: pair[column(machine)] for name, pair in DENIED_SYSCALLS.items()}
    ours |= {"clone": CLONE[column(machine)], "clone3": CLONE3[column(machine)]}

    wrong = {
        name: (number, numbers.get(name))
        for name, number in ours.items()
        if number is not None and numbers.get(name) != number
    }
    assert wrong == {}
