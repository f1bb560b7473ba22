"""The relay's local HTTP endpoint: /healthz (checks), /metrics (Prometheus), /status (JSON)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any

from hostrelay_relay import __version__
from hostrelay_relay.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

if TYPE_CHECKING:
    from hostrelay_relay.daemon import RelayDaemon

logger = logging.getLogger(__name__)

HEARTBEAT_GRACE_INTERVALS = 3
LEDGER_LOCK_TIMEOUT_S = 2.0
REQUEST_TIMEOUT_S = 5.0
_POLL_S = 0.5
_JSON = "application/json"

Response = tuple[int, str, bytes]


@dataclasses.dataclass(frozen=True)
class HealthCheck:
    name: str
    ok: bool
    detail: str


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port` (`[v6]:port`) → (host, port); ValueError when it is not one."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"health.listen {listen!r} is not host:port")
    return host.removeprefix("[").removesuffix("]"), int(port)


def health_checks(relay: RelayDaemon) -> list[HealthCheck]:
    """Broker connected, ledger writable, last hello/heartbeat acknowledged in time."""
    link, ledger = relay.link, relay.ledger
    checks = []
    if link is not None and link.connected.is_set():
        broker = HealthCheck("broker", True, "connected")
    else:
        broker = HealthCheck("broker", False, "not connected to the broker")
    checks.append(broker)
    problem = "the relay is not running" if ledger is None else ledger.check_writable()
    checks.append(HealthCheck("ledger", problem is None, problem or "writable"))
    limit = HEARTBEAT_GRACE_INTERVALS * relay.settings.heartbeat_s
    age = None if link is None else link.heartbeat_ack_age_s()
    if age is None:
        checks.append(HealthCheck("heartbeat", False, "no hello or heartbeat acknowledged yet"))
    else:
        detail = f"acknowledged {age:.1f} s ago (limit {limit:g} s)"
        checks.append(HealthCheck("heartbeat", age <= limit, detail))
    return checks


def status_document(relay: RelayDaemon) -> dict[str, Any]:
    """What `hostrelay-relay status` shows of a running relay."""
    ledger, link, executor, metrics = relay.ledger, relay.link, relay.executor, relay.metrics
    age = None if link is None else link.heartbeat_ack_age_s()
    summary = {} if ledger is None else dataclasses.asdict(ledger.summary())
    jobs_finished: dict[str, dict[str, int]] = {}
    for (job_type, outcome), count in metrics.jobs.values().items():
        jobs_finished.setdefault(job_type, {})[outcome] = int(count)
    return {
        "host": relay.settings.host,
        "version": __version__,
        "pid": os.getpid(),
        "connected": link is not None and link.connected.is_set(),
        "uptime_s": round(time.monotonic() - relay.started_monotonic, 1),
        "last_heartbeat_ack_at": None if age is None else round(time.time() - age, 3),
        "running_jobs": [] if executor is None else executor.running_jobs(),
        **summary,
        "counts": {
            "jobs_finished": jobs_finished,
            "envelopes_rejected": {
                reason: int(count) for (reason,), count in metrics.rejected.values().items()
            },
            "reconnects": int(metrics.reconnects.value()),
        },
    }


def _json(status: int, body: Any) -> Response:
    return status, _JSON, json.dumps(body, indent=2).encode() + b"\n"


class _Server(HTTPServer):
    routes: dict[str, Callable[[], Response]]


class _V6Server(_Server):
    address_family = socket.AF_INET6


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "hostrelay-relay"
    sys_version = ""
    timeout = REQUEST_TIMEOUT_S  # a client that stalls cannot hold the endpoint for long

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path.partition("?")[0])
        if route is None:
            status, content_type, body = _json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        else:
            try:
                status, content_type, body = route()
            except Exception:  # a scrape must get an answer, and the bug its traceback
                logger.exception("health endpoint failed", extra={"path": self.path})
                status, content_type, body = _json(HTTPStatus.INTERNAL_SERVER_ERROR, {})
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("health request", extra={"request": self.requestline})


class HealthServer:
    """Serves one relay's /healthz, /metrics and /status on a daemon thread."""

    def __init__(self, relay: RelayDaemon) -> None:
        self._relay = relay
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str | None:
        """`host:port` it listens on (the real port when configured as 0), or None."""
        if self._server is None:
            return None
        host, port = self._server.server_address[:2]
        host = str(host)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> bool:
        """Listen on settings.health.listen; False (and logged) when that is not possible."""
        listen = self._relay.settings.health.listen
        try:
            host, port = parse_listen(listen)
            server_cls = _V6Server if ":" in host else _Server
            server = server_cls((host, port), _RequestHandler)
        except (OSError, ValueError) as exc:
            # Not fatal: running jobs matters more than reporting on them.
            logger.error("health endpoint not started", extra={"listen": listen, "error": str(exc)})
            return False
        server.routes = {
            "/healthz": self._healthz,
            "/metrics": self._metrics,
            "/status": self._status,
        }
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": _POLL_S}, name="health-http"
        )
        self._thread.daemon = True
        self._thread.start()
        logger.info("health endpoint listening", extra={"address": self.address})
        return True

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)

    def _healthz(self) -> Response:
        checks = health_checks(self._relay)
        failing = [check.name for check in checks if not check.ok]
        body = {
            "status": "failing" if failing else "ok",
            "failing": failing,
            "checks": [dataclasses.asdict(check) for check in checks],
        }
        return _json(HTTPStatus.SERVICE_UNAVAILABLE if failing else HTTPStatus.OK, body)

    def _metrics(self) -> Response:
        return HTTPStatus.OK, METRICS_CONTENT_TYPE, self._relay.metrics.exposition().encode()

    def _status(self) -> Response:
        return _json(HTTPStatus.OK, status_document(self._relay))
