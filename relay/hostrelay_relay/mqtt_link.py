"""The relay's MQTT connection: mutual TLS, job subscription, status, and the outbox pump."""

from __future__ import annotations

import logging
import queue
import random
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hostrelay_contract.events import encode_event, new_event
from hostrelay_relay import __version__
from hostrelay_relay.cert_rotation import certificate_id
from hostrelay_relay.ledger import Ledger
from hostrelay_relay.metrics import RelayMetrics
from hostrelay_relay.settings import RelaySettings

logger = logging.getLogger(__name__)

STATUS_ONLINE = b"online"
STATUS_OFFLINE = b"offline"
_SUPERVISE_TICK_S = 1.0
_CONNACK_TIMEOUT_S = 30.0
_ACK_BATCH_S = 0.01
_OFFLINE_ACK_TIMEOUT_S = 2.0
# QoS 1 publishes awaiting PUBACK (AWS IoT Core allows 100). The outbox window is the same:
# rows beyond paho's limit would wait in paho's queue, which it rescans on every PUBACK.
MAX_INFLIGHT = 100


def reconnect_delay(failures: int, minimum: float, maximum: float) -> float:
    """Exponential backoff with jitter: between half and all of min * 2**(failures-1), capped."""
    ceiling = min(maximum, minimum * 2 ** max(0, failures - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def hello_event(cert_id: str | None, jobs: dict[str, Any]) -> dict[str, Any]:
    """`hello`, sent on every (re)connect: version, clock, certificate, unfinished jobs."""
    return new_event("hello", relay_version=__version__, clock=time.time(), cert_id=cert_id, **jobs)


def heartbeat_event(running: int, uptime_s: float) -> dict[str, Any]:
    """`heartbeat`, sent every `heartbeat_s` while connected."""
    return new_event(
        "heartbeat", running=running, uptime_s=round(uptime_s, 1), relay_version=__version__
    )


class MqttLink:
    """Keeps one MQTT session to the broker alive and publishes the ledger's outbox in order.

    Every job event is written to the ledger's outbox first (by whoever produces it) and
    `send()` hands it to the broker; a row leaves the outbox only when its PUBACK arrives.
    After a reconnect (or a relay restart) everything still in the outbox is sent again,
    oldest first. `hello` and `heartbeat` describe the present, so they are published
    directly on each connection and never replayed later.

    Each connection attempt uses a fresh paho client (its own network thread, no automatic
    reconnect), so nothing from a dead connection is retransmitted behind the outbox's back,
    and reconnecting follows our jittered backoff.
    """

    def __init__(
        self,
        settings: RelaySettings,
        ledger: Ledger,
        *,
        on_job_message: Callable[[bytes], None],
        hello_fields: Callable[[], dict[str, Any]],
        running_jobs: Callable[[], int],
        on_fatal: Callable[[], None] = lambda: None,
        window: int = MAX_INFLIGHT,
        credentials: Callable[[], tuple[Path, Path]] | None = None,
        on_session: Callable[[Path], None] = lambda cert_file: None,
        on_connect_failed: Callable[[Path], None] = lambda cert_file: None,
        metrics: RelayMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._on_job_message = on_job_message
        self._hello_fields = hello_fields
        self._running_jobs = running_jobs
        self._on_fatal = on_fatal
        self._window = window
        # (certificate, key) for each connection: a renewed pair is tried once it is staged.
        self._credentials = credentials or (
            lambda: (settings.broker.cert_file, settings.broker.key_file)
        )
        self._on_session = on_session
        self._on_connect_failed = on_connect_failed
        self._attempt_cert: Path = settings.broker.cert_file
        self._started_at = time.monotonic()
        self._closing = threading.Event()
        self._wakeup = threading.Event()  # PUBACKs arrived, a session started, or it ended
        self._session_lost = threading.Event()
        self._thread = threading.Thread(target=self._run_guarded, name="mqtt-link", daemon=True)
        self._acks: queue.SimpleQueue[tuple[mqtt.Client, int]] = queue.SimpleQueue()
        self._send_lock = threading.Lock()
        self._drained = threading.Condition()
        self._client: mqtt.Client | None = None  # set while a session is up (CONNACK seen)
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq
        self._handed_through = 0  # highest outbox seq handed to the current client
        self._backlog = True  # rows may be in the outbox that were not handed over yet
        self._connected_events = 0
        self._attempt: mqtt.Client | None = None  # the client of the current connection
        self._fresh: mqtt.Client | None = None  # subscribed, until the session is started
        self.connected = threading.Event()
        self.crashed = threading.Event()
        self._metrics = metrics
        # The last hello/heartbeat awaiting its PUBACK, and when (monotonic) one last got it.
        self._liveness_mid: tuple[mqtt.Client, int] | None = None
        self._liveness_acked: float | None = None

    # --- public API -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def send(self, seq: int, payload: bytes) -> None:
        """Outbox row `seq` was just committed: publish it now if the broker is connected.

        The row is published directly when it is next in line; otherwise (a backlog, a
        full window, a row committed by another thread just before) the outbox is read
        in order from where the broker left off.
        """
        with self._send_lock:
            client = self._client
            if (
                client is None
                or seq != self._handed_through + 1
                or len(self._inflight) >= self._window
            ):
                self._backlog = True
                self._pump_locked()
                return
            info = client.publish(self._settings.events_topic(), payload, qos=1)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                self._inflight[info.mid] = seq
                self._handed_through = seq

    def reconnect(self) -> None:
        """End the current session cleanly; the next one uses the credentials of that moment."""
        with self._send_lock:
            client = self._client
        if client is not None:
            logger.info("reconnecting to switch credentials")
            client.disconnect()

    def heartbeat_ack_age_s(self) -> float | None:
        """Seconds since the broker last acknowledged a hello or heartbeat (None: never)."""
        acked = self._liveness_acked
        return None if acked is None else time.monotonic() - acked

    def wait_connected(self, timeout_s: float) -> bool:
        return self.connected.wait(timeout_s)

    def flush(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty (every event acknowledged); False on timeout.

        Returns False at once when the broker is not connected: the events stay queued.
        """
        if not self.connected.is_set():
            return self._ledger.outbox_depth() == 0
        deadline = time.monotonic() + timeout_s
        with self._drained:
            while self._ledger.outbox_depth() > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._drained.wait(min(remaining, 0.2))
        return True

    def stop(self, timeout_s: float = 10.0) -> None:
        """Publish `offline` (retained), disconnect cleanly and stop the network thread."""
        with self._send_lock:
            client = self._client
        if client is not None:
            info = client.publish(self._settings.status_topic(), STATUS_OFFLINE, qos=1, retain=True)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                info.wait_for_publish(_OFFLINE_ACK_TIMEOUT_S)
        self._closing.set()
        self._wakeup.set()
        if client is not None:
            client.disconnect()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        logger.info("disconnected from broker", extra={"outbox_depth": self._ledger.outbox_depth()})

    # --- network thread -------------------------------------------------------------------

    def _run_guarded(self) -> None:
        try:
            self._run()
        except Exception:
            # Not swallowed: the daemon exits non-zero and systemd restarts it.
            logger.exception("mqtt link stopped on an unexpected error")
            self.crashed.set()
            self._on_fatal()

    def _run(self) -> None:
        broker = self._settings.broker
        failures = 0
        while not self._closing.is_set():
            client = self._new_client()
            accepted_before = self._connected_events
            self._session_lost.clear()
            # Before connect(): a broker that refuses the certificate ends the session inside
            # connect(), and that disconnect must count (not wait for the CONNACK timeout).
            self._attempt = client
            try:
                client.connect(broker.host, broker.port, keepalive=broker.keepalive_s)
            except OSError as exc:  # includes ssl.SSLError and refused/unreachable sockets
                failures += 1
                self._on_connect_failed(self._attempt_cert)
                delay = reconnect_delay(failures, broker.reconnect_min_s, broker.reconnect_max_s)
                logger.warning(
                    "broker connect failed",
                    extra={
                        "broker": broker.host,
                        "port": broker.port,
                        "error": str(exc),
                        "retry_in_s": round(delay, 2),
                    },
                )
                self._closing.wait(delay)
                continue
            client.loop_start()  # paho's thread owns the socket; publish() is safe from any thread
            try:
                self._supervise(client)
            finally:
                self._session_ended(client)
            if self._connected_events > accepted_before:
                failures = 0
            else:
                failures += 1
                self._on_connect_failed(self._attempt_cert)
            if not self._closing.is_set():
                delay = reconnect_delay(
                    max(failures, 1), broker.reconnect_min_s, broker.reconnect_max_s
                )
                self._closing.wait(delay)

    def _new_client(self) -> mqtt.Client:
        settings = self._settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.host,
            clean_session=True,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,  # reconnecting is ours: fresh client, jittered backoff
        )
        cert_file, key_file = self._credentials()
        self._attempt_cert = cert_file
        client.tls_set(
            ca_certs=str(settings.broker.ca_file),
            certfile=str(cert_file),
            keyfile=str(key_file),
        )
        client.will_set(settings.status_topic(), STATUS_OFFLINE, qos=1, retain=True)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    def _supervise(self, client: mqtt.Client) -> None:
        """Look after one connection until it drops or the link is closing.

        Paho's thread does the I/O; this thread starts the session, turns PUBACKs into
        outbox deletions in batches, tops up the in-flight window, and sends heartbeats.
        """
        connect_deadline = time.monotonic() + _CONNACK_TIMEOUT_S
        next_heartbeat = time.monotonic() + self._settings.heartbeat_s
        while True:
            wait = min(_SUPERVISE_TICK_S, max(0.0, next_heartbeat - time.monotonic()))
            if self._wakeup.wait(wait) and not (self._closing.is_set() or self._fresh):
                # Let PUBACKs gather: one outbox delete per batch instead of one per event.
                time.sleep(_ACK_BATCH_S)
            self._wakeup.clear()
            if self._fresh is client:
                self._fresh = None
                self._session_started(client)
                next_heartbeat = time.monotonic() + self._settings.heartbeat_s
            self._process_acks(client)
            if self._closing.is_set() or self._session_lost.is_set():
                return
            if self._client is not client:
                if time.monotonic() > connect_deadline:
                    logger.warning("broker did not accept the session in time")
                    return
                continue
            if not client.is_connected():
                return
            if time.monotonic() >= next_heartbeat:
                self._liveness_mid = self._publish_direct(
                    client,
                    heartbeat_event(self._running_jobs(), time.monotonic() - self._started_at),
                )
                next_heartbeat = time.monotonic() + self._settings.heartbeat_s

    def _session_ended(self, client: mqtt.Client) -> None:
        with self._send_lock:
            self._client = None
            self._inflight.clear()
            self._handed_through = 0
            self._backlog = True  # the next session re-sends whatever is unacknowledged
        self.connected.clear()
        client.disconnect()
        client.loop_stop()

    def _session_started(self, client: mqtt.Client) -> None:
        client.publish(self._settings.status_topic(), STATUS_ONLINE, qos=1, retain=True)
        cert_file = self._attempt_cert
        try:
            cert_id: str | None = certificate_id(cert_file.read_bytes())
        except (OSError, ValueError):
            cert_id = None
        self._liveness_mid = self._publish_direct(
            client, hello_event(cert_id, self._hello_fields())
        )
        self._ledger.set_meta("last_connect_at", repr(time.time()))
        with self._send_lock:
            self._client = client
            self._inflight.clear()
            self._handed_through = 0
            self._pump_locked()
        self._connected_events += 1
        if self._metrics is not None:
            self._metrics.session_started(first=self._connected_events == 1)
        self.connected.set()
        self._on_session(cert_file)
        logger.info(
            "connected to broker",
            extra={
                "broker": self._settings.broker.host,
                "port": self._settings.broker.port,
                "outbox_depth": self._ledger.outbox_depth(),
            },
        )

    def _publish_direct(
        self, client: mqtt.Client, event: dict[str, Any]
    ) -> tuple[mqtt.Client, int]:
        payload = encode_event(event)
        return client, client.publish(self._settings.events_topic(), payload, qos=1).mid

    def _pump_locked(self) -> None:
        """Hand the next outbox rows to the broker, up to the in-flight window (lock held)."""
        client = self._client
        if client is None:
            return
        room = self._window - len(self._inflight)
        if room <= 0:
            return
        topic = self._settings.events_topic()
        entries = self._ledger.pending(self._handed_through, room)
        for entry in entries:
            info = client.publish(topic, entry.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return  # the connection is going away; the next session re-sends from here
            self._inflight[info.mid] = entry.seq
            self._handed_through = entry.seq
        self._backlog = len(entries) == room  # a full page: there may be more

    def _process_acks(self, client: mqtt.Client) -> None:
        mids: list[int] = []
        while True:
            try:
                acked_client, mid = self._acks.get_nowait()
            except queue.Empty:
                break
            if acked_client is client:
                mids.append(mid)
        if not mids:
            return
        liveness = self._liveness_mid
        if liveness is not None and liveness[0] is client and liveness[1] in mids:
            self._liveness_acked = time.monotonic()
        with self._send_lock:
            seqs = [self._inflight.pop(mid) for mid in mids if mid in self._inflight]
        if seqs:
            self._ledger.acknowledge(seqs)
            with self._send_lock:
                if self._backlog:
                    self._pump_locked()
            with self._drained:
                self._drained.notify_all()

    # --- paho callbacks (network thread, paho locks held: never block here) -----------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:
            logger.error("broker refused the connection", extra={"reason": str(reason_code)})
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):
            # Small QoS 1 packets (accepted, PUBACKs) must not wait ~40 ms for Nagle.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe(self._settings.jobs_topic(), qos=1)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if client is not self._attempt:
            return
        self._session_lost.set()
        self._wakeup.set()
        if not self._closing.is_set():
            logger.warning("connection to broker lost", extra={"reason": str(reason_code)})

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any
    ) -> None:
        # The session starts (hello, outbox) only once jobs can reach us: a job the control
        # plane re-publishes after our hello must find the subscription in place.
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            logger.error(
                "broker refused the jobs subscription",
                extra={"topic": self._settings.jobs_topic(), "reason": str(refused[0])},
            )
            self._session_lost.set()
        else:
            self._fresh = client
        self._wakeup.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any, properties: Any
    ) -> None:
        self._acks.put((client, mid))
        self._wakeup.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic != self._settings.jobs_topic():
            return
        try:
            self._on_job_message(bytes(message.payload))
        except Exception:
            # A bug in the intake: stop the relay (exit non-zero, systemd restarts it) rather
            # than keep a connection that no longer reads its jobs.
            logger.exception("job message handling crashed")
            self.crashed.set()
            self._on_fatal()
            raise
