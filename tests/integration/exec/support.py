"""Helpers for exec tests: run jobs through ExecHandler, find their processes and cgroups."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostrelay_contract.jobs.exec import ExecParams, ExecResult
from hostrelay_relay.handlers.base import JobContext, JobError, OutputStream
from hostrelay_relay.handlers.exec import ExecHandler
from hostrelay_relay.settings import RelaySettings

CGROUP_ROOT = Path("/sys/fs/cgroup")
PYTHON = "/usr/bin/python3"
# Tests run shells and Python freely: the test relay marks them as launchers that may get
# any arguments, which a real relay's operator would narrow down.
ANY_ARGS = [["*"] * count for count in range(8)]
TEST_COMMANDS: list[Any] = [
    {"command": "/bin/sh", "launcher": True, "args": ANY_ARGS},
    {"command": "/usr/bin/env", "launcher": True, "args": ANY_ARGS},
    {"command": PYTHON, "launcher": True, "args": ANY_ARGS},
    "/bin/true",
    "/bin/sleep",
    "/bin/cat",
    "/bin/hostname",
    "/bin/ls",
    "/usr/bin/id",
    "/usr/bin/head",
    "/usr/bin/touch",
    "/usr/bin/dd",
    "/bin/not-installed-*",
]


def new_job_id() -> str:
    """Shaped like the control plane's ULIDs: 26 upper-case alphanumerics."""
    return "T" + uuid.uuid4().hex[:25].upper()


def make_settings(**exec_overrides: Any) -> RelaySettings:
    policy: dict[str, Any] = {
        "allowed_commands": TEST_COMMANDS,
        "kill_grace_s": 0.5,
        **exec_overrides,
    }
    return RelaySettings.model_validate({"host": "dc01", "exec": policy})


@dataclass
class ExecRun:
    """One exec job run through the handler: its result or error, and every output chunk."""

    job_id: str
    chunks: list[tuple[OutputStream, bytes]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: JobError | None = None
    elapsed_s: float = 0.0
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def data(self, stream: OutputStream | None = None) -> bytes:
        return b"".join(d for s, d in self.chunks if stream is None or s == stream)

    @property
    def stdout(self) -> str:
        return self.data("stdout").decode()

    @property
    def stderr(self) -> str:
        return self.data("stderr").decode()

    @property
    def outcome(self) -> dict[str, Any]:
        """The result, whether the job succeeded or failed with one attached."""
        if self.result is not None:
            return self.result
        assert self.error is not None and self.error.result is not None, self.error
        return self.error.result


class ExecJobs:
    """Runs exec jobs through ExecHandler with a JobContext built the way the relay core does."""

    def __init__(self) -> None:
        self.job_ids: list[str] = []

    def start(
        self,
        params: dict[str, Any],
        settings: RelaySettings | None = None,
        timeout_s: float = 30.0,
        validate: bool = True,
        job_id: str | None = None,
    ) -> tuple[ExecRun, threading.Thread]:
        """Run in a thread (for cancel tests); join the thread to wait for the end."""
        handler = ExecHandler(settings or make_settings())
        run = ExecRun(job_id=job_id or new_job_id())
        self.job_ids.append(run.job_id)
        lock = threading.Lock()

        def collect(stream: OutputStream, data: bytes) -> None:
            with lock:
                run.chunks.append((stream, data))

        ctx = JobContext(
            job_id=run.job_id,
            attempt=1,
            host="dc01",
            settings=handler.settings,
            timeout_s=timeout_s,
            report_progress=lambda done, total, message: None,
            report_output=collect,
            cancel_event=run.cancel_event,
        )

        def work() -> None:
            started = time.monotonic()
            try:
                # Without validate(): what a relay core that skipped the policy check would pass.
                schema_only = ExecParams.model_validate
                parsed = handler.validate(params) if validate else schema_only(params)
                result = handler.run(parsed, ctx)
                ExecResult.model_validate(result)  # the shape the contract documents
                run.result = result
            except JobError as exc:
                if exc.result is not None:  # the command started: its result is attached
                    ExecResult.model_validate(exc.result)
                run.error = exc
            finally:
                run.elapsed_s = time.monotonic() - started

        thread = threading.Thread(target=work, name=f"exec-{run.job_id}")
        thread.start()
        return run, thread

    def run(self, params: dict[str, Any], **kwargs: Any) -> ExecRun:
        run, thread = self.start(params, **kwargs)
        thread.join(timeout=120)
        assert not thread.is_alive(), "exec job did not end"
        return run


def job_cgroup_dirs(job_id: str) -> list[Path]:
    candidates = [CGROUP_ROOT / "unified" / "hostrelay" / job_id]
    candidates += [path / "hostrelay" / job_id for path in CGROUP_ROOT.iterdir()]
    return [path for path in candidates if path.exists()]


def processes_with(marker: str) -> list[int]:
    """Host pids of every live process whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
