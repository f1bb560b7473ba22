"""The local fleet (`hostrelay-local run --fleet N`): N more hosts, relays in few processes."""

from __future__ import annotations

import json
import logging
import math
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hostrelay_contract.names import check_host_name
from hostrelay_local.fleet_worker import MAX_RELAYS_PER_PROCESS, FleetWorkerPlan

logger = logging.getLogger(__name__)

DEFAULT_RELAYS_PER_PROCESS = 50
DEFAULT_TAGS = {"fleet": "local"}
HOST_PREFIX = "fleet-"
WORKER_MODULE = "hostrelay_local.fleet_worker"
# TLS handshakes and enrollments in flight at once, over the whole fleet: a burst of hundreds
# of handshakes starves the broker and the API on a small machine.
DEFAULT_CONNECT_CONCURRENCY = 16
_STOP_TIMEOUT_S = 30.0

Offer = Callable[[str, dict[str, str]], str]
"""An admin's `POST /v1/enrollments` for (host, tags): the one-shot token."""


class FleetFailed(RuntimeError):
    """The fleet did not start; the message says which host or process and why."""


def parse_tag(text: str) -> tuple[str, str]:
    """`key=value` of `--fleet-tags`; the API checks the rules of keys and values."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ValueError(f"a tag is key=value, not {text!r}")
    return key.strip(), value.strip()


def fleet_host_names(size: int) -> list[str]:
    """fleet-001 … fleet-NNN: names that sort in order (at least three digits)."""
    width = max(3, len(str(size)))
    return [check_host_name(f"{HOST_PREFIX}{number:0{width}d}") for number in range(1, size + 1)]


@dataclass
class FleetOptions:
    """How many fleet hosts, with which tags, in how many processes."""

    size: int = 0
    tags: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TAGS))
    processes: int | None = None  # None: one per DEFAULT_RELAYS_PER_PROCESS relays
    connect_concurrency: int = DEFAULT_CONNECT_CONCURRENCY
    heartbeat_s: float = 30.0
    max_concurrent_jobs: int = 2  # each a thread; fleet jobs are pings and short commands
    log_level: str = "INFO"

    def process_count(self) -> int:
        """The processes to run `size` relays in; ValueError when one would hold too many."""
        if self.size <= 0:
            return 0
        count = self.processes or math.ceil(self.size / DEFAULT_RELAYS_PER_PROCESS)
        if count < 1:
            raise ValueError("--fleet-processes must be at least 1")
        if math.ceil(self.size / count) > MAX_RELAYS_PER_PROCESS:
            raise ValueError(
                f"{self.size} relays in {count} process(es) is more than "
                f"{MAX_RELAYS_PER_PROCESS} per process (paho's select() loop); "
                f"use --fleet-processes {math.ceil(self.size / MAX_RELAYS_PER_PROCESS)} or more"
            )
        return min(count, self.size)


class FleetProcess:
    """One worker process (`python -m hostrelay_local.fleet_worker`) and what it reports."""

    def __init__(self, number: int, directory: Path, hosts: list[str]) -> None:
        self.number = number
        self.directory = directory
        self.hosts = hosts
        self.log_path = directory / f"worker-{number}.log"
        self.events: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._process: subprocess.Popen[bytes] | None = None
        self._wanted = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def needs_restart(self) -> bool:
        return self._wanted and not self.is_running()

    def exited(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def wait_exited(self, timeout_s: float) -> int | None:
        """Wait for the worker to end (by itself or killed); its exit code, None if running."""
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def start(self, plan: dict[str, Any]) -> None:
        """Start the worker with `plan` (a FleetWorkerPlan, tokens in clear) on its stdin."""
        self._wanted = True
        if self._process is not None:
            self._process.wait()  # reap the one that ended
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, "--directory", str(self.directory)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # Ctrl-C on the stack stops it in order, not at once
            )
        assert self._process.stdin is not None and self._process.stdout is not None
        with self._process.stdin as plan_input:
            plan_input.write(json.dumps(plan).encode())
        threading.Thread(
            target=self._read_events,
            args=(self._process.stdout,),
            name=f"fleet-worker-{self.number}",
            daemon=True,
        ).start()

    def _read_events(self, stream: IO[bytes]) -> None:
        with stream:
            for line in stream:
                try:
                    self.events.put(json.loads(line))
                except ValueError:
                    logger.warning("fleet worker wrote a line that is no event")
        self.events.put({"event": "exited"})

    def request_stop(self) -> None:
        """SIGTERM without waiting: every relay of the worker drains and flushes."""
        self._wanted = False
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float = _STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (every relay drains and flushes), SIGKILL after timeout_s."""
        self.request_stop()
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class LocalFleet:
    """`options.size` fleet hosts under `directory`/<host>/ (config/, state/ as any relay),
    enrolled through the API with the tags of `options`, their relays in a few processes.

    `start()` returns once every relay is connected to the broker; the stack then waits for
    the control plane to see each one online.
    """

    def __init__(self, directory: Path, options: FleetOptions, api_url: str) -> None:
        self.directory = directory
        self.options = options
        self.api_url = api_url
        self.hosts = fleet_host_names(options.size)
        count = options.process_count()
        shares = [self.hosts[number::count] for number in range(count)] if count else []
        self.processes = [
            FleetProcess(number + 1, directory, sorted(share))
            for number, share in enumerate(shares)
        ]

    def _plan(self, process: FleetProcess, tokens: dict[str, str]) -> dict[str, Any]:
        """The worker's FleetWorkerPlan as JSON data (pydantic would mask the tokens)."""
        per_process = max(1, self.options.connect_concurrency // max(1, len(self.processes)))
        plan = {
            "api_url": self.api_url,
            "connect_concurrency": per_process,
            "relays": [{"host": host, "token": tokens.get(host)} for host in process.hosts],
            "options": {
                "heartbeat_s": self.options.heartbeat_s,
                "max_concurrent_jobs": self.options.max_concurrent_jobs,
                "log_level": self.options.log_level,
            },
        }
        FleetWorkerPlan.model_validate(plan)  # the worker's own check, before it starts
        return plan

    def start(self, offer: Offer, timeout_s: float = 600.0) -> None:
        """Offer an enrollment for each host, then start the workers and wait for them.

        The fleet's directory is made anew: hosts of an earlier stack hold certificates and
        an envelope key that this stack's control plane never issued.
        """
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True)
        self.directory.chmod(0o700)
        began = time.monotonic()
        tokens = {host: offer(host, self.options.tags) for host in self.hosts}
        logger.info(
            "fleet enrollments offered",
            extra={"hosts": len(tokens), "s": round(time.monotonic() - began, 1)},
        )
        for process in self.processes:
            process.start(self._plan(process, tokens))
        deadline = time.monotonic() + timeout_s
        for process in self.processes:
            self._wait_ready(process, deadline)

    def _wait_ready(self, process: FleetProcess, deadline: float) -> None:
        while True:
            try:
                event = process.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise FleetFailed(
                    f"fleet worker {process.number} was not ready in time; its log "
                    f"{process.log_path} ends:\n{process.log_tail()}"
                ) from None
            if event.get("event") == "ready":
                logger.info(
                    "fleet worker ready", extra={"worker": process.number, "pid": process.pid}
                )
                return
            if event.get("event") in ("failed", "exited"):
                raise FleetFailed(
                    f"fleet worker {process.number} failed: {event.get('reason', 'it exited')}; "
                    f"its log {process.log_path} ends:\n{process.log_tail()}"
                )

    def needs_restart(self) -> bool:
        return any(process.needs_restart() for process in self.processes)

    def restart_exited(self) -> list[FleetProcess]:
        """Start again each worker that ended by itself; its hosts are enrolled already."""
        restarted = []
        for process in self.processes:
            if process.needs_restart():
                process.start(self._plan(process, {}))
                restarted.append(process)
        return restarted

    def stop(self) -> None:
        """Stop the workers at once (each relay drains in parallel), then wait for them."""
        for process in self.processes:
            process.request_stop()
        for process in self.processes:
            process.stop()

    def describe(self) -> dict[str, Any]:
        """The fleet's part of stack.json."""
        return {
            "hosts": self.hosts,
            "tags": self.options.tags,
            "processes": [
                {"pid": p.pid, "log": str(p.log_path), "hosts": len(p.hosts)}
                for p in self.processes
            ],
        }
