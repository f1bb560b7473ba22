"""One process of the local fleet: enrolls its share of fleet hosts, then runs their relays.

    python -m hostrelay_local.fleet_worker --directory <state>/fleet < plan.json

Each relay is the relay's own `RelayDaemon` (settings from its relay.toml, its own ledger,
certificate and MQTT session), several of them per process. The plan comes on standard input
as one JSON document, because it carries one-shot enrollment tokens:

    {"api_url": "...", "connect_concurrency": 16,
     "relays": [{"host": "fleet-001", "token": "..."}, ...],
     "options": {"heartbeat_s": 30, "max_concurrent_jobs": 2, "log_level": "INFO"}}

Progress goes to standard output, one JSON object a line: `{"event": "connected", "host": ...}`
per relay, then `{"event": "ready", "relays": N}`, or `{"event": "failed", "host": ...,
"reason": ...}` and exit 1. Logs go to standard error. SIGTERM stops every relay (each drains
and flushes its outbox, as the service does) and exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from hostrelay_local.local_relay import LocalRelay, RelayEnrollmentFailed, RelayOptions
from hostrelay_relay.daemon import RelayAlreadyRunning, RelayDaemon
from hostrelay_relay.log_format import configure_logging
from hostrelay_relay.settings import load_settings

logger = logging.getLogger("hostrelay_local.fleet_worker")

# paho's network loop uses select(), which fails on descriptors >= 1024; a relay holds about
# ten (TLS socket, paho's wake-up pair, ledger database, WAL and lock files).
MAX_RELAYS_PER_PROCESS = 64
_CONNECT_TIMEOUT_S = 60.0
_SUPERVISE_EVERY_S = 1.0


class FleetRelayPlan(BaseModel):
    host: str
    token: SecretStr | None = None  # None: enrolled before (a restarted worker)


class FleetRelayOptions(BaseModel):
    heartbeat_s: float = 30.0
    max_concurrent_jobs: int = 2
    log_level: str = "INFO"


class FleetWorkerPlan(BaseModel):
    api_url: str
    connect_concurrency: int = Field(default=16, ge=1, le=MAX_RELAYS_PER_PROCESS)
    relays: list[FleetRelayPlan] = Field(max_length=MAX_RELAYS_PER_PROCESS)
    options: FleetRelayOptions = Field(default_factory=FleetRelayOptions)


def _say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class RelayStartFailed(RuntimeError):
    """A fleet relay was not enrolled, or did not connect; the message says which and why."""


@dataclass
class FleetMember:
    """One fleet host in this process: its directory layout and, once started, its daemon."""

    relay: LocalRelay
    daemon: RelayDaemon | None = None

    @property
    def host(self) -> str:
        return self.relay.host

    def enroll(self, api_url: str, token: SecretStr | None) -> None:
        if self.relay.is_enrolled():
            return
        if token is None:
            raise RelayStartFailed(f"{self.host} is not enrolled and has no enrollment token")
        try:
            self.relay.enroll_in_process(api_url, token.get_secret_value())
        except RelayEnrollmentFailed as exc:
            raise RelayStartFailed(f"{self.host} was not enrolled: {exc}") from None

    def start(self) -> None:
        daemon = RelayDaemon(load_settings(self.relay.config_path))
        try:
            daemon.start()
        except RelayAlreadyRunning as exc:
            raise RelayStartFailed(f"{self.host}: {exc}") from None
        self.daemon = daemon
        link = daemon.link
        if link is None or not link.wait_connected(_CONNECT_TIMEOUT_S):
            raise RelayStartFailed(
                f"{self.host} did not connect to the broker within {_CONNECT_TIMEOUT_S:.0f} s"
            )

    def stop(self) -> None:
        daemon, self.daemon = self.daemon, None
        if daemon is not None:
            daemon.stop()


class FleetWorker:
    """The relays of one plan, started `connect_concurrency` at a time, supervised, stopped."""

    def __init__(self, plan: FleetWorkerPlan, directory: Path) -> None:
        self.plan = plan
        options = RelayOptions(
            heartbeat_s=plan.options.heartbeat_s,
            log_level=plan.options.log_level,
            health=False,  # one listener per relay is no use here and costs a port each
            max_concurrent_jobs=plan.options.max_concurrent_jobs,
        )
        self.members = [
            FleetMember(LocalRelay(relay.host, directory / relay.host, options))
            for relay in plan.relays
        ]
        self._tokens = {relay.host: relay.token for relay in plan.relays}
        self.stopping = threading.Event()

    def _bring_up(self, member: FleetMember) -> None:
        if self.stopping.is_set():
            return
        member.enroll(self.plan.api_url, self._tokens.pop(member.host, None))
        member.start()
        _say(event="connected", host=member.host)

    def start(self) -> None:
        """Enroll and connect every relay; RelayStartFailed names the first that did not."""
        with ThreadPoolExecutor(self.plan.connect_concurrency, "fleet-start") as pool:
            for future in [pool.submit(self._bring_up, member) for member in self.members]:
                future.result()

    def supervise(self) -> None:
        """Restart a relay that asked to stop (a fatal link or intake error), as systemd
        restarts the service."""
        for member in self.members:
            daemon = member.daemon
            if daemon is None or not daemon.stop_requested or self.stopping.is_set():
                continue
            logger.warning(
                "fleet relay stopped by itself, restarting it", extra={"host": member.host}
            )
            member.stop()
            try:
                member.start()
            except (RelayStartFailed, OSError) as exc:
                logger.error("fleet relay did not restart", extra={"reason": str(exc)})

    def stop(self) -> None:
        self.stopping.set()
        with ThreadPoolExecutor(self.plan.connect_concurrency, "fleet-stop") as pool:
            list(pool.map(FleetMember.stop, self.members))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hostrelay_local.fleet_worker")
    parser.add_argument("--directory", type=Path, required=True, help="<dir>/<host>/ per relay")
    args = parser.parse_args(argv)
    plan = FleetWorkerPlan.model_validate_json(sys.stdin.read())
    configure_logging(plan.options.log_level)
    worker = FleetWorker(plan, args.directory)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        worker.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        worker.start()
    except (RelayStartFailed, OSError) as exc:
        _say(event="failed", reason=str(exc))
        worker.stop()
        return 1
    _say(event="ready", relays=len(worker.members))
    while not worker.stopping.wait(_SUPERVISE_EVERY_S):
        worker.supervise()
    worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
