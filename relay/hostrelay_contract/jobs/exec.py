"""`exec`: an allow-listed command in fresh namespaces and a cgroup, its output streamed.

The shape is judged here; whether this relay allows the command, user, env names and
limits is its own policy (`exec.*` in relay.toml), checked when the job arrives.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from hostrelay_contract.base import JobResult, StrictParams
from hostrelay_contract.paths import normalized_absolute_path

MAX_ARG_BYTES = 128 * 1024 - 1  # the kernel's MAX_ARG_STRLEN, less the NUL
MAX_STDIN_CHARS = 1024 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def _check_absolute_path(value: str, what: str) -> None:
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL byte")
    # Allow-list patterns match text: "/usr/bin/../../tmp/x" must not pass as "/usr/bin/*".
    if not normalized_absolute_path(value):
        raise ValueError(f"{what} must be an absolute, normalized path (no '.', '..' or '//')")


class ExecLimits(StrictParams):
    memory_mb: int | None = Field(default=None, ge=8, le=1_048_576)
    cpu_percent: int | None = Field(default=None, ge=1, le=25_600, description="100 = one CPU")
    pids: int | None = Field(default=None, ge=1, le=1_000_000)
    # Per disk, reads and writes each; cgroup v1 throttles direct and sync I/O only.
    io_bps: int | None = Field(default=None, ge=4096)


class ExecIsolation(StrictParams):
    network: Literal["none", "host"] = "none"
    user: str = "nobody"
    readonly_root: bool = True

    @field_validator("user")
    @classmethod
    def _user_is_a_name(cls, value: str) -> str:
        if not _USER_NAME.fullmatch(value):
            raise ValueError("user must be a user name: a-z, 0-9, '_' and '-', at most 32")
        return value


class ExecParams(StrictParams):
    """Optional fields are left out to take their default; `null` is not a value here."""

    argv: list[str] = Field(min_length=1, max_length=4096, description="argv[0] is absolute")
    env: dict[str, str] = Field(default_factory=dict, max_length=256)
    # Inside the job, where /tmp is a private tmpfs.
    cwd: str = Field(default="/tmp")  # noqa: S108
    stdin: str = Field(default="", max_length=MAX_STDIN_CHARS)
    timeout_s: float | None = Field(default=None, gt=0, le=7 * 86400)
    limits: ExecLimits = Field(default_factory=ExecLimits)
    isolation: ExecIsolation = Field(default_factory=ExecIsolation)

    @field_validator("argv")
    @classmethod
    def _argv_is_safe(cls, value: list[str]) -> list[str]:
        for index, arg in enumerate(value):
            if "\x00" in arg:
                raise ValueError(f"argv[{index}] contains a NUL byte")
            if len(arg.encode()) > MAX_ARG_BYTES:
                raise ValueError(f"argv[{index}] is longer than {MAX_ARG_BYTES} bytes")
        _check_absolute_path(value[0], "argv[0]")
        return value

    @field_validator("env")
    @classmethod
    def _env_is_safe(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"env name {name[:64]!r} is not a valid variable name")
            if "\x00" in text:
                raise ValueError(f"env {name} contains a NUL byte")
            if len(text.encode()) > MAX_ARG_BYTES:
                raise ValueError(f"env {name} is longer than {MAX_ARG_BYTES} bytes")
        return value

    @field_validator("cwd")
    @classmethod
    def _cwd_is_safe(cls, value: str) -> str:
        _check_absolute_path(value, "cwd")
        return value


class ExecOutput(JobResult):
    stdout_bytes: int
    stderr_bytes: int
    delivered_bytes: int = Field(description="Bytes sent as output events (after truncation)")
    chunks: int
    sha256: str = Field(description="SHA-256 (hex) of the delivered output, in order")
    truncated: bool = Field(description="The output passed exec.max_output_bytes")


class ExecResult(JobResult):
    """Also attached to the job's error when the command failed, timed out or was killed."""

    exit_code: int | None
    signal: str | None = Field(default=None, description="e.g. SIGKILL, when one ended it")
    max_rss_kb: int
    cpu_s: float
    wall_s: float
    oom_kills: int
    output: ExecOutput
