"""Enrolled host identities on the real broker: own topics only; revoked means disconnected."""

from __future__ import annotations

import logging
import socket
import ssl
import time

import pytest

from hostrelay_local.broker import MosquittoBroker
from hostrelay_local.iot_registry import LocalIotRegistry
from tests.integration.relay.conftest import connect_observer

pytestmark = pytest.mark.integration


def tls_refusal(broker: MosquittoBroker, cert_path: object, key_path: object) -> str | None:
    """The broker's TLS alert for a client certificate, or None when it accepts it."""
    context = ssl.create_default_context(cafile=str(broker.endpoint.ca_file))
    context.load_cert_chain(str(cert_path), str(key_path))
    try:
        with (
            socket.create_connection((broker.endpoint.host, broker.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.settimeout(0.5)
            tls.recv(1)
    except ssl.SSLError as exc:
        return str(exc)
    except TimeoutError:
        return None
    return None


def test_host_a_cannot_read_b_jobs_nor_write_b_events(
    broker, control_plane, observers, enroll_host
) -> None:
    # Given hosts A and B enrolled through the IoT stand-in, A also subscribing to B's jobs
    a, b = enroll_host("a"), enroll_host("b")
    host_a = connect_observer(
        broker.endpoint, a.identity, [f"hostrelay/{b.name}/jobs", f"hostrelay/{a.name}/jobs"],
        client_id=a.name,
    )  # fmt: skip
    host_b = connect_observer(
        broker.endpoint, b.identity, [f"hostrelay/{b.name}/jobs"], client_id=b.name
    )
    observers.extend([host_a, host_b])

    # When the control plane publishes a job for B and one for A, and A forges B's events
    control_plane.publish(f"hostrelay/{b.name}/jobs", b"job for b")
    control_plane.publish(f"hostrelay/{a.name}/jobs", b"job for a")
    host_a.publish(f"hostrelay/{b.name}/events", b'{"kind": "result", "forged": true}')
    host_a.publish(f"hostrelay/{b.name}/status", b"offline")
    host_a.publish(f"hostrelay/{a.name}/events", b'{"kind": "heartbeat"}')

    # Then each host got only its own job, and only A's own event reached the control plane
    host_a.wait_until(lambda: host_a.messages)
    host_b.wait_until(lambda: host_b.messages)
    assert host_a.messages == [(f"hostrelay/{a.name}/jobs", b"job for a")]
    assert host_b.messages == [(f"hostrelay/{b.name}/jobs", b"job for b")]
    control_plane.wait_until(lambda: control_plane.messages)
    assert control_plane.messages == [(f"hostrelay/{a.name}/events", b'{"kind": "heartbeat"}')]


def test_a_revoked_host_is_disconnected_and_cannot_connect_again(
    broker, registry: LocalIotRegistry, enroll_host, signer, start_relay, control_plane, caplog
) -> None:
    # Given an enrolled relay, connected
    host = enroll_host("rv")
    relay = start_relay(host.settings(broker, signer.public_key_file))
    assert tls_refusal(broker, host.identity.cert_path, host.identity.key_path) is None

    # When its certificate is deactivated (what `hostrelay hosts revoke` does)
    with caplog.at_level(logging.INFO):
        registry.state.update_certificate(host.certificate_id, "INACTIVE")

        # Then the broker drops its session and refuses it from then on
        assert relay.link is not None
        deadline = time.monotonic() + 10
        while relay.link.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        # And the relay, trying again, says plainly why it cannot connect and what to do
        said: list[logging.LogRecord] = []
        while not said and time.monotonic() < deadline + 10:
            time.sleep(0.1)
            said = [
                r for r in caplog.records
                if r.levelno == logging.ERROR and "re-enroll" in r.getMessage()
            ]  # fmt: skip
        assert said and "certificate revoked" in said[0].__dict__["reason"]
        assert not relay.link.connected.is_set()
    refusal = tls_refusal(broker, host.identity.cert_path, host.identity.key_path)
    assert refusal is not None and "revoked" in refusal
    control_plane.wait_until(lambda: b"offline" in control_plane.statuses(host.name))
    # And other hosts are not affected
    other = enroll_host("ok")
    assert tls_refusal(broker, other.identity.cert_path, other.identity.key_path) is None
