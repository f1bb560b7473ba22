"""Fixtures for relay tests: a real mosquitto with mutual TLS and ACL, signed envelopes, relays."""

from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from hostrelay_contract.canonical_json import canonical_json
from hostrelay_contract.events import new_ulid
from hostrelay_local.broker import BrokerEndpoint, MosquittoBroker
from hostrelay_local.local_relay import render_toml
from hostrelay_local.pki import IssuedCert, LocalCA
from hostrelay_relay.daemon import RelayDaemon
from hostrelay_relay.handlers import HANDLERS, HandlerRegistry
from hostrelay_relay.settings import RelaySettings

pytestmark = pytest.mark.integration

TEST_HANDLERS = {
    **HANDLERS,
    "test.ticker": "tests.integration.relay.handlers_for_tests:TickerHandler",
}
_host_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("pki") / "ca")


@pytest.fixture(scope="session")
def broker(
    local_ca: LocalCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MosquittoBroker]:
    """Given mosquitto on a free port: TLS only, client certificates required, per-host ACL."""
    with MosquittoBroker(tmp_path_factory.mktemp("broker"), local_ca) as running:
        yield running


@pytest.fixture
def own_broker(local_ca: LocalCA, tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker this test alone uses, so it may stop and restart it."""
    with MosquittoBroker(tmp_path / "broker", local_ca) as running:
        yield running


# --- signing --------------------------------------------------------------------------------


@dataclass
class EnvelopeSigner:
    """Plays the control plane's signing side: builds and signs v1 envelopes."""

    key: Ed25519PrivateKey
    public_key_file: Path

    def envelope(
        self,
        host: str,
        job_type: str = "ping",
        params: dict[str, Any] | None = None,
        *,
        job_id: str | None = None,
        attempt: int = 1,
        nonce: str | None = None,
        issued_at: int | None = None,
        expires_at: int | None = None,
        timeout_s: int = 60,
    ) -> dict[str, Any]:
        now = int(time.time())
        return {
            "v": 1,
            "job_id": job_id or new_ulid(),
            "attempt": attempt,
            "type": job_type,
            "host": host,
            "params": {} if params is None else params,
            "issued_at": now if issued_at is None else issued_at,
            "expires_at": now + 300 if expires_at is None else expires_at,
            "nonce": nonce or secrets.token_hex(16),
            "timeout_s": timeout_s,
        }

    def sign(self, envelope: dict[str, Any], key: Ed25519PrivateKey | None = None) -> bytes:
        signature = (key or self.key).sign(canonical_json(envelope))
        wire = {"envelope": envelope, "signature": base64.b64encode(signature).decode()}
        return json.dumps(wire).encode()


@pytest.fixture(scope="session")
def signer(tmp_path_factory: pytest.TempPathFactory) -> EnvelopeSigner:
    key = Ed25519PrivateKey.generate()
    path = tmp_path_factory.mktemp("signing") / "envelope-signing.pub"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return EnvelopeSigner(key, path)


# --- MQTT clients ---------------------------------------------------------------------------


@dataclass
class MqttObserver:
    """A paho client with some identity that records everything it receives."""

    client: mqtt.Client
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    subscriptions: list[str] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def events(self, host: str) -> list[dict[str, Any]]:
        topic = f"hostrelay/{host}/events"
        with self.changed:
            return [json.loads(payload) for t, payload in self.messages if t == topic]

    def statuses(self, host: str) -> list[bytes]:
        topic = f"hostrelay/{host}/status"
        with self.changed:
            return [payload for t, payload in self.messages if t == topic]

    def wait_until(self, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition not met within {timeout}s")
            with self.changed:
                self.changed.wait(min(remaining, 0.05))

    def wait_event(
        self, host: str, kind: str, timeout: float = 10.0, **match: Any
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for event in self.events(host):
                if event["kind"] == kind and all(event.get(k) == v for k, v in match.items()):
                    return event
            return None

        try:
            event: dict[str, Any] = self.wait_until(found, timeout)
        except AssertionError:
            seen = [(e["kind"], e.get("job_id"), e.get("reason")) for e in self.events(host)]
            raise AssertionError(f"no {kind} event matching {match}; events: {seen}") from None
        return event

    def job_events(self, host: str, job_id: str) -> list[dict[str, Any]]:
        return [event for event in self.events(host) if event.get("job_id") == job_id]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect_observer(
    endpoint: BrokerEndpoint,
    identity: IssuedCert,
    subscriptions: list[str],
    *,
    client_id: str | None = None,
    persistent: bool = False,
) -> MqttObserver:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"{identity.common_name}-{secrets.token_hex(3)}",
        clean_session=not persistent,
        protocol=mqtt.MQTTv311,
    )
    client.tls_set(
        ca_certs=str(endpoint.ca_file),
        certfile=str(identity.cert_path),
        keyfile=str(identity.key_path),
    )
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    observer = MqttObserver(client, subscriptions=subscriptions)
    subscribed = threading.Event()

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        for topic in subscriptions:
            c.subscribe(topic, qos=1)

    def on_subscribe(c: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        subscribed.set()

    def on_message(c: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with observer.changed:
            observer.messages.append((message.topic, bytes(message.payload)))
            observer.changed.notify_all()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    if subscriptions and not subscribed.wait(5):
        raise AssertionError("observer did not get a SUBACK")
    return observer


@pytest.fixture
def observers() -> Iterator[list[MqttObserver]]:
    opened: list[MqttObserver] = []
    yield opened
    for observer in opened:
        observer.close()


@pytest.fixture
def control_plane(broker: MosquittoBroker, observers: list[MqttObserver]) -> MqttObserver:
    """The control plane's broker identity: reads every host's events and status."""
    observer = connect_observer(
        broker.endpoint,
        broker.control_plane,
        ["hostrelay/+/events", "hostrelay/+/status"],
    )
    observers.append(observer)
    return observer


@pytest.fixture
def persistent_control_plane(
    own_broker: MosquittoBroker, observers: list[MqttObserver]
) -> MqttObserver:
    """The control plane on `own_broker`, with a session that survives a broker restart."""
    observer = connect_observer(
        own_broker.endpoint,
        own_broker.control_plane,
        ["hostrelay/+/events", "hostrelay/+/status"],
        client_id="control-plane-under-test",
        persistent=True,
    )
    observers.append(observer)
    return observer


# --- relays ---------------------------------------------------------------------------------


@dataclass
class RelayHost:
    """One enrolled host: its certificate, settings and config file for `hostrelay-relay`."""

    name: str
    settings: RelaySettings
    config_path: Path

    @property
    def jobs_topic(self) -> str:
        return f"hostrelay/{self.name}/jobs"


@pytest.fixture
def new_host(
    broker: MosquittoBroker, signer: EnvelopeSigner, tmp_path: Path
) -> Callable[..., RelayHost]:
    """Enrol a fresh host (unique name, its own client certificate and state directory)."""

    def make(target: MosquittoBroker | None = None, **overrides: Any) -> RelayHost:
        on = target or broker
        name = f"h{next(_host_numbers)}-{secrets.token_hex(2)}"
        home = tmp_path / name
        identity = on.ca.issue_client_cert(name, home / "tls")
        values: dict[str, Any] = {
            "host": name,
            "state_dir": home / "state",
            "public_key_file": signer.public_key_file,
            "heartbeat_s": 30.0,
            "drain_timeout_s": 10.0,
            "log_level": "DEBUG",
            "health": {"listen": "127.0.0.1:0"},  # relays of parallel tests must not collide
            **{k: v for k, v in overrides.items() if k != "broker"},
            "broker": {
                "host": on.endpoint.host,
                "port": on.port,
                "ca_file": on.endpoint.ca_file,
                "cert_file": identity.cert_path,
                "key_file": identity.key_path,
                "reconnect_min_s": 0.1,
                "reconnect_max_s": 0.5,
                **overrides.get("broker", {}),
            },
        }
        config_path = home / "relay.toml"
        config_path.write_text(render_toml(values))
        settings = RelaySettings.model_validate(values)
        return RelayHost(name, settings, config_path)

    return make


@pytest.fixture
def start_relay() -> Iterator[Callable[[RelayHost], RelayDaemon]]:
    """Run a relay inside the test process (stopped at the end of the test)."""
    started: list[RelayDaemon] = []

    def start(host: RelayHost) -> RelayDaemon:
        daemon = RelayDaemon(
            host.settings, registry=HandlerRegistry(host.settings, table=TEST_HANDLERS)
        )
        daemon.start()
        started.append(daemon)
        assert daemon.link is not None
        assert daemon.link.wait_connected(10), "relay did not connect to the broker"
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


@pytest.fixture
def spawn_relay() -> Iterator[Callable[[RelayHost], subprocess.Popen[bytes]]]:
    """Run `hostrelay-relay run --config ...` as a child process (killed at the end)."""
    spawned: list[subprocess.Popen[bytes]] = []

    def spawn(host: RelayHost) -> subprocess.Popen[bytes]:
        log = (host.config_path.parent / "relay.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "hostrelay_relay", "run", "--config", str(host.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("HOSTRELAY_RELAY_")},
        )
        log.close()
        spawned.append(process)
        return process

    yield spawn
    for process in spawned:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
