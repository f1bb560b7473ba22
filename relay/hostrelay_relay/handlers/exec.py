"""`exec`: run an allow-listed command in fresh namespaces and a cgroup, streaming its output."""

from __future__ import annotations

import functools
import logging
import os
import pwd
import re
import signal
import sys
import time
from typing import Any

from hostrelay_contract.jobs.exec import ExecLimits, ExecParams
from hostrelay_relay.handlers.base import (
    Handler,
    JobCanceled,
    JobContext,
    JobError,
    JobTimedOut,
)
from hostrelay_relay.isolation import syscall_filter
from hostrelay_relay.isolation.cgroup_common import CgroupError, LimitUnsupported
from hostrelay_relay.isolation.command_policy import refusal
from hostrelay_relay.isolation.runner import RunOutcome, RunRequest, run_isolated
from hostrelay_relay.isolation.spawner_client import SpawnerUnavailable
from hostrelay_relay.isolation.spec import ResourceLimits, SandboxSpec, read_mount_points
from hostrelay_relay.isolation.syscalls import cap_last_cap, mount_setattr_supported
from hostrelay_relay.settings import ExecSettings

logger = logging.getLogger(__name__)

# The job id becomes the job's hostname (at most 64 bytes) and a cgroup directory name.
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_MAX_ARGV_ENV_BYTES = 1024 * 1024
_MB = 1024 * 1024


def check_policy(params: ExecParams, policy: ExecSettings) -> None:
    """Raise ValueError when this relay's exec policy does not allow `params`."""
    refused_command = refusal(params.argv, policy.allowed_commands)
    if refused_command is not None:
        raise ValueError(refused_command)
    refused = sorted(set(params.env) - set(policy.allowed_env))
    if refused:
        raise ValueError(f"env names not in exec.allowed_env: {', '.join(refused)}")
    if params.isolation.user not in policy.allowed_users:
        raise ValueError(f"user {params.isolation.user!r} is not in exec.allowed_users")
    if params.isolation.network == "host" and not policy.allow_host_network:
        raise ValueError("network 'host' needs exec.allow_host_network on this relay")
    if not params.isolation.readonly_root and not policy.allow_writable_root:
        raise ValueError("readonly_root false needs exec.allow_writable_root on this relay")
    size = sum(len(arg.encode()) + 1 for arg in params.argv) + sum(
        len(name) + len(text.encode()) + 2 for name, text in params.env.items()
    )
    if size > _MAX_ARGV_ENV_BYTES:
        raise ValueError(f"argv and env together exceed {_MAX_ARGV_ENV_BYTES} bytes")
    limits = params.limits
    if limits.memory_mb is not None and limits.memory_mb > policy.max_memory_mb:
        raise ValueError(f"limits.memory_mb is above exec.max_memory_mb ({policy.max_memory_mb})")
    if limits.pids is not None and limits.pids > policy.max_pids:
        raise ValueError(f"limits.pids is above exec.max_pids ({policy.max_pids})")


class ExecHandler(Handler[ExecParams]):
    """Runs `argv` as PID 1 of fresh PID/mount/UTS/IPC/network namespaces, in a per-job cgroup.

    Result: `{exit_code, signal?, max_rss_kb, cpu_s, wall_s, oom_kills, output: {stdout_bytes,
    stderr_bytes, delivered_bytes, chunks, sha256, truncated}}` (see OutputPump for sha256).
    Errors (all with that result attached once the command started): `exit_code`,
    `killed_by_signal`, `memory_limit`, `timeout`, `canceled`, `exec_failed`, `sandbox_failed`;
    before it starts: `invalid_params`, `unknown_user`, `limit_unsupported`, `cgroup_failed`,
    `spawner_unavailable`. Thread-safe: every run owns its pipes, cgroup and namespaces.
    """

    type = "exec"
    params_model = ExecParams

    def enabled(self) -> str | None:
        policy = self.settings.exec
        if not policy.allowed_commands:
            return "exec is disabled on this relay: exec.allowed_commands is empty"
        if sys.platform != "linux":
            return "exec needs Linux namespaces and cgroups"
        if os.geteuid() != 0:
            return "exec needs the relay to run as root (namespaces and cgroups)"
        if not policy.cgroup_root.is_dir():
            return f"exec needs a cgroup hierarchy at {policy.cgroup_root}"
        return syscall_filter.unsupported_reason()

    def validate(self, raw: dict[str, Any]) -> ExecParams:
        params = ExecParams.model_validate(raw)
        check_policy(params, self.settings.exec)
        return params

    def run(self, params: ExecParams, ctx: JobContext) -> dict[str, Any]:
        request = self._request(params, ctx)
        try:
            outcome = run_isolated(request, ctx.output, ctx.cancel_event)
        except LimitUnsupported as exc:
            raise JobError("limit_unsupported", str(exc)) from exc
        except CgroupError as exc:
            raise JobError("cgroup_failed", str(exc), retryable=True) from exc
        except SpawnerUnavailable as exc:
            raise JobError("spawner_unavailable", str(exc), retryable=True) from exc
        logger.info(
            "exec job finished",
            extra={
                "job_id": ctx.job_id,
                "exit_code": outcome.exit_code,
                "signal": outcome.signal,
                "stopped": outcome.stopped,
                "wall_s": outcome.wall_s,
            },
        )
        return _result_or_raise(outcome, request.limits)

    def _request(self, params: ExecParams, ctx: JobContext) -> RunRequest:
        policy = self.settings.exec
        try:
            # Checked again here so a caller that skipped validate() still cannot bypass it.
            check_policy(params, policy)
        except ValueError as exc:
            raise JobError("invalid_params", str(exc)) from exc
        if not _JOB_ID.fullmatch(ctx.job_id):
            raise JobError("invalid_params", "job id is not usable as a hostname")
        try:
            user = pwd.getpwnam(params.isolation.user)
        except KeyError as exc:
            raise JobError("unknown_user", f"no user {params.isolation.user!r} here") from exc
        use_mount_setattr = mount_setattr_supported()
        deadline = ctx.deadline
        if params.timeout_s is not None:
            deadline = min(deadline, time.monotonic() + params.timeout_s)
        spec = SandboxSpec(
            argv=tuple(params.argv),
            env={"PATH": policy.path, **params.env},
            hostname=ctx.job_id,
            uid=user.pw_uid,
            gid=user.pw_gid,
            cwd=params.cwd,
            isolate_network=params.isolation.network == "none",
            readonly_root=params.isolation.readonly_root,
            writable_paths=tuple(str(path) for path in policy.writable_paths),
            tmp_size_bytes=policy.tmp_size_mb * _MB,
            cap_last_cap=_cap_last_cap(),
            use_mount_setattr=use_mount_setattr,
            mount_points=() if use_mount_setattr else read_mount_points(),
        )
        return RunRequest(
            spec=spec,
            limits=_effective_limits(params.limits, policy),
            cgroup_root=policy.cgroup_root,
            cgroup_name=ctx.job_id,
            deadline=deadline,
            kill_grace_s=policy.kill_grace_s,
            max_output_bytes=policy.max_output_bytes,
            stdin=params.stdin.encode(),
        )


@functools.cache
def _cap_last_cap() -> int:
    return cap_last_cap()


def _effective_limits(asked: ExecLimits, policy: ExecSettings) -> ResourceLimits:
    memory_mb = policy.default_memory_mb if asked.memory_mb is None else asked.memory_mb
    cpu_percent = policy.default_cpu_percent if asked.cpu_percent is None else asked.cpu_percent
    return ResourceLimits(
        memory_bytes=None if memory_mb is None else memory_mb * _MB,
        cpu_percent=cpu_percent,
        pids=policy.default_pids if asked.pids is None else asked.pids,
        io_bps=asked.io_bps,
    )


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


def _result_or_raise(outcome: RunOutcome, limits: ResourceLimits) -> dict[str, Any]:
    """The job's result; raises the JobError matching how it ended, with the result attached."""
    result: dict[str, Any] = {
        "exit_code": outcome.exit_code,
        "max_rss_kb": outcome.max_rss_kb,
        "cpu_s": outcome.cpu_s,
        "wall_s": outcome.wall_s,
        "oom_kills": outcome.oom_kills,
        "output": outcome.output.as_result(),
    }
    if outcome.signal is not None:
        result["signal"] = _signal_name(outcome.signal)
    if outcome.failure is not None:
        code = "exec_failed" if outcome.failure.step == "exec" else "sandbox_failed"
        raise JobError(code, f"{outcome.failure.step}: {outcome.failure.message}", result=result)
    if outcome.stopped == "canceled":
        raise JobCanceled(result=result)
    if outcome.stopped == "timeout":
        raise JobTimedOut(result=result)
    if outcome.oom_kills and outcome.exit_code != 0:
        limit_mb = (limits.memory_bytes or 0) // _MB
        message = f"a process of the job was killed at its memory limit of {limit_mb} MB"
        raise JobError("memory_limit", message, result=result)
    if outcome.signal is not None:
        message = f"command killed by {result['signal']}"
        raise JobError("killed_by_signal", message, result=result)
    if outcome.exit_code != 0:
        message = f"command exited with status {outcome.exit_code}"
        raise JobError("exit_code", message, result=result)
    return result
