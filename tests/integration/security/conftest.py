"""Real mosquitto (TLS, ACL, CRL) with certificates from the local IoT stand-in, and relays."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hostrelay_local.broker import MosquittoBroker
from hostrelay_local.iot_registry import LocalIotRegistry
from hostrelay_local.pki import IssuedCert, LocalCA
from hostrelay_relay.daemon import RelayDaemon
from hostrelay_relay.enrollment import new_key_and_csr
from hostrelay_relay.settings import RelaySettings
from tests.integration.enrollment.conftest import (  # noqa: F401 - fixtures: the API on moto
    admin,
    api,
    api_handler,
    relay_policy,
    tokens,
)
from tests.integration.relay.conftest import (
    EnvelopeSigner,
    MqttObserver,
    connect_observer,
    signer,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.integration
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("pki") / "ca")


@pytest.fixture(scope="module")
def broker(
    local_ca: LocalCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path_factory.mktemp("broker"), local_ca) as running:
        yield running


@pytest.fixture(scope="module")
def registry(local_ca: LocalCA, broker: MosquittoBroker) -> Iterator[LocalIotRegistry]:
    """The IoT control-plane stand-in: signs CSRs, deactivates certificates (CRL + reload)."""
    with LocalIotRegistry(local_ca, broker) as running:
        yield running


@dataclass
class EnrolledHost:
    """A host whose key was made here and whose certificate the IoT stand-in signed."""

    name: str
    identity: IssuedCert
    certificate_id: str
    home: Path

    def settings(
        self, broker: MosquittoBroker, public_key_file: Path, **extra: Any
    ) -> RelaySettings:
        values: dict[str, Any] = {
            "host": self.name,
            "state_dir": self.home / "state",
            "public_key_file": public_key_file,
            "heartbeat_s": 30.0,
            "drain_timeout_s": 5.0,
            **extra,
            "broker": {
                "host": broker.endpoint.host,
                "port": broker.port,
                "ca_file": broker.endpoint.ca_file,
                "cert_file": self.identity.cert_path,
                "key_file": self.identity.key_path,
                "reconnect_min_s": 0.1,
                "reconnect_max_s": 0.5,
            },
        }
        return RelaySettings.model_validate(values)


@pytest.fixture
def enroll_host(registry: LocalIotRegistry, tmp_path: Path) -> Callable[[str], EnrolledHost]:
    def enroll(prefix: str = "h") -> EnrolledHost:
        name = f"{prefix}{next(_numbers)}-{secrets.token_hex(2)}"
        home = tmp_path / name
        home.mkdir(mode=0o700)
        key_pem, csr_pem = new_key_and_csr(name)
        issued = registry.state.create_certificate_from_csr(csr_pem, active=True)
        registry.state.create_thing(name)
        registry.state.attach_thing_principal(name, issued["certificateArn"])
        key_path, cert_path = home / "client.key", home / "client.pem"
        key_path.write_bytes(key_pem)
        key_path.chmod(0o600)
        cert_path.write_text(issued["certificatePem"])
        identity = IssuedCert(name, 0, cert_path, key_path)
        return EnrolledHost(name, identity, issued["certificateId"], home)

    return enroll


@pytest.fixture
def observers() -> Iterator[list[MqttObserver]]:
    opened: list[MqttObserver] = []
    yield opened
    for observer in opened:
        observer.close()


@pytest.fixture
def control_plane(broker: MosquittoBroker, observers: list[MqttObserver]) -> MqttObserver:
    observer = connect_observer(
        broker.endpoint, broker.control_plane, ["hostrelay/+/events", "hostrelay/+/status"]
    )
    observers.append(observer)
    return observer


@pytest.fixture
def start_relay() -> Iterator[Callable[[RelaySettings], RelayDaemon]]:
    started: list[RelayDaemon] = []

    def start(settings: RelaySettings) -> RelayDaemon:
        daemon = RelayDaemon(settings)
        daemon.start()
        started.append(daemon)
        assert daemon.link is not None and daemon.link.wait_connected(10), "relay not connected"
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


__all__ = ["EnvelopeSigner", "MqttObserver"]
