"""A real mosquitto broker with mutual TLS and the per-host ACL, started in a work directory."""

from __future__ import annotations

import ipaddress
import logging
import os
import pwd
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hostrelay_local.pki import CONTROL_PLANE_CN, TOPIC_RULES_CN, IssuedCert, LocalCA

logger = logging.getLogger(__name__)

MOSQUITTO = Path("/usr/sbin/mosquitto")
_TAKEOVER_TIMEOUT_S = 5.0

# The host is the certificate CN (use_identity_as_username): %u confines it to its own topics.
# The client id is the CN as well (use_username_as_clientid), whatever the client asks for:
# no certificate can take over another identity's session, the topic-rule bridges' included.
_HOST_ACL = """\
pattern read hostrelay/%u/jobs
pattern write hostrelay/%u/events
pattern write hostrelay/%u/status

"""
_CONTROL_PLANE_ACL = f"""\
user {CONTROL_PLANE_CN}
topic write hostrelay/+/jobs
topic read hostrelay/+/events
topic read hostrelay/+/status

"""
_TOPIC_RULES_ACL = """\
user {name}
topic read hostrelay/+/events

"""


class BrokerFailed(RuntimeError):
    """mosquitto did not start (or stop) as asked; the message quotes its log."""


@dataclass(frozen=True)
class BrokerEndpoint:
    """Where clients connect, and the CA that signed the broker's server certificate."""

    host: str
    port: int
    ca_file: Path


def free_port(bind_address: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((bind_address, 0))
        return int(probe.getsockname()[1])


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.2):
            return True
    except OSError:
        return False


class MosquittoBroker:
    """mosquitto on one TLS listener that requires a client certificate signed by `ca`.

    Everything lives under `workdir`: mosquitto.conf, acl, the server certificate, the
    control plane's client certificates (`control_plane` publishes jobs; each of
    `topic_rules` is one topic-rule bridge, which only reads events), mosquitto.log and
    mosquitto.db (sessions of clients with clean_session=False survive a restart).
    There is no plain listener.
    """

    def __init__(
        self,
        workdir: Path,
        ca: LocalCA,
        *,
        port: int | None = None,
        bind_address: str = "127.0.0.1",
        binary: Path = MOSQUITTO,
        max_queued_messages: int = 10_000,
        persistence: bool = True,
        topic_rule_bridges: int = 1,
    ) -> None:
        self.workdir = workdir
        self.ca = ca
        self.bind_address = bind_address
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port(bind_address)
        self.binary = binary
        self.max_queued_messages = max_queued_messages
        self.persistence = persistence
        self.conf_path = workdir / "mosquitto.conf"
        self.acl_path = workdir / "acl"
        self.log_path = workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._wanted = False  # started and not stopped since: a supervisor restarts it
        workdir.mkdir(parents=True, exist_ok=True)
        # A new broker starts without sessions (a previous stack's queued events mean nothing
        # to this one); `restart` and `stop`/`start` of this object keep them.
        (workdir / "mosquitto.db").unlink(missing_ok=True)
        self.server_cert = ca.issue_server_cert(workdir / "server")
        self.control_plane = ca.issue_client_cert(CONTROL_PLANE_CN, workdir / "control-plane")
        self.topic_rules = [
            ca.issue_client_cert(f"{TOPIC_RULES_CN}-{number}", workdir / "topic-rules")
            for number in range(1, topic_rule_bridges + 1)
        ]

    @property
    def endpoint(self) -> BrokerEndpoint:
        wildcard = ipaddress.ip_address(self.bind_address).is_unspecified
        connect_to = "127.0.0.1" if wildcard else self.bind_address
        return BrokerEndpoint(connect_to, self.port, self.ca.cert_path)

    def issue_host_identity(self, host: str, out_dir: Path) -> IssuedCert:
        """A client certificate for `host` from this broker's CA (tests and the local stack)."""
        return self.ca.issue_client_cert(host, out_dir)

    def _write_config(self) -> None:
        rule_readers = "".join(
            _TOPIC_RULES_ACL.format(name=identity.common_name) for identity in self.topic_rules
        )
        self.acl_path.write_text(_HOST_ACL + _CONTROL_PLANE_ACL + rule_readers)
        lines = [
            "per_listener_settings false",
            "allow_anonymous false",
            # Persistent sessions survive a restart, as the IoT topic rule always listens.
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            # mosquitto drops to user `mosquitto` when started as root; it must read our files.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "connection_messages true",
            # Deliver each packet at once: with Nagle's algorithm a small PUBLISH waits for the
            # ACK of the one before, which the receiver delays (measured: 24 ms median from the
            # control plane's publish to the relay's intake on an idle machine).
            "set_tcp_nodelay true",
            f"max_queued_messages {self.max_queued_messages}",
            f"acl_file {self.acl_path}",
            f"listener {self.port} {self.bind_address}",
            f"cafile {self.ca.cert_path}",
            f"certfile {self.server_cert.cert_path}",
            f"keyfile {self.server_cert.key_path}",
            "require_certificate true",
            "use_identity_as_username true",
            "use_username_as_clientid true",
        ]
        if self.ca.crl_path.exists():
            lines.append(f"crlfile {self.ca.crl_path}")
        self.conf_path.write_text("\n".join(lines) + "\n")

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self.is_running() else None

    def exited(self) -> int | None:
        """The exit code of a mosquitto that ended without `stop` (reaped), else None."""
        if self._process is None:
            return None
        return self._process.poll()

    def needs_restart(self) -> bool:
        """Started and not stopped, yet not running: it died, or its restart failed."""
        return self._wanted and not self.is_running()

    def save_sessions(self) -> None:
        """Make mosquitto write its persistence database now (SIGUSR1).

        Sessions and subscriptions in the database survive even a SIGKILL of mosquitto.
        """
        if self._process is not None and self.is_running() and self.persistence:
            self._process.send_signal(signal.SIGUSR1)

    def restart(self, timeout_s: float = 10.0) -> None:
        """Start mosquitto again on the same port, with the sessions it saved."""
        self._terminate(timeout_s)
        self._fixed_port, fixed = True, self._fixed_port
        try:
            self.start(timeout_s)
        finally:
            self._fixed_port = fixed

    def disconnect_client(self, common_name: str) -> None:
        """End the open session of `common_name`'s certificate (a revoked host's).

        mosquitto keeps open sessions when the CRL changes; IoT Core drops them. The client
        id is the certificate's CN here, so only a certificate naming that host can take the
        session over: a throwaway one is issued, used once, and revoked at once.
        """
        if not self.is_running():
            return
        with tempfile.TemporaryDirectory(dir=self.workdir) as scratch:
            identity = self.ca.issue_client_cert(common_name, Path(scratch))
            try:
                _take_over_session(self.endpoint, identity)
            finally:
                self.ca.revoke_serial(identity.serial)
                self.reload()

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self, timeout_s: float = 10.0) -> None:
        """Start mosquitto and return once its TLS listener accepts connections."""
        self._wanted = True
        if self.is_running():
            return
        if self._process is not None:
            self._process.wait()  # reap the one that ended
        for _ in range(3):
            self._write_config()
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    [str(self.binary), "-c", str(self.conf_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_listening(timeout_s):
                return
            if self._fixed_port or "Address already in use" not in self.log_tail():
                break
            self.port = free_port(self.bind_address)  # lost the race for the port; pick another
        self._terminate(timeout_s)
        raise BrokerFailed(f"mosquitto did not start on port {self.port}:\n{self.log_tail()}")

    def _wait_listening(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_running():
                return False
            if _port_open(self.endpoint.host, self.port):
                return True
            time.sleep(0.02)
        return False

    def reload(self) -> None:
        """Rewrite the config and make mosquitto re-read it (and the CRL) with SIGHUP.

        New connections see the new CRL; connections already open stay open.
        """
        if self._process is None or not self.is_running():
            raise BrokerFailed("mosquitto is not running")
        self._write_config()
        self._process.send_signal(signal.SIGHUP)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop mosquitto (SIGTERM, then SIGKILL after timeout_s); harmless when stopped."""
        self._wanted = False
        self._terminate(timeout_s)

    def _terminate(self, timeout_s: float) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _take_over_session(endpoint: BrokerEndpoint, identity: IssuedCert) -> None:
    """Connect as `identity` (mosquitto closes its older session), then disconnect."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=identity.common_name,
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    client.tls_set(
        ca_certs=str(endpoint.ca_file),
        certfile=str(identity.cert_path),
        keyfile=str(identity.key_path),
        cert_reqs=ssl.CERT_REQUIRED,
    )
    connected = threading.Event()
    client.on_connect = lambda c, userdata, flags, reason, props: connected.set()
    try:
        client.connect(endpoint.host, endpoint.port, keepalive=10)
        client.loop_start()
        if not connected.wait(_TAKEOVER_TIMEOUT_S):
            logger.warning(
                "session takeover not acknowledged", extra={"client": identity.common_name}
            )
        client.disconnect()
        client.loop_stop()
    except OSError as exc:
        logger.warning("could not take a session over", extra={"error": str(exc)})
