"""The local broker: each host reaches only its own topics; no certificate, no connection."""

from __future__ import annotations

import socket
import ssl

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.integration.relay.conftest import connect_observer

pytestmark = pytest.mark.integration


def _host_client(broker, tmp_path, name, subscriptions):
    identity = broker.issue_host_identity(name, tmp_path / name)
    return connect_observer(broker.endpoint, identity, subscriptions, client_id=name)


def test_host_cannot_read_another_hosts_jobs(broker, control_plane, observers, tmp_path):
    # Given host A subscribed to host B's jobs topic and its own, and B to its own
    host_a = _host_client(
        broker, tmp_path, "acl-a1", ["hostrelay/acl-b1/jobs", "hostrelay/acl-a1/jobs"]
    )
    host_b = _host_client(broker, tmp_path, "acl-b1", ["hostrelay/acl-b1/jobs"])
    observers.extend([host_a, host_b])

    # When the control plane publishes a job for B, then one for A
    control_plane.publish("hostrelay/acl-b1/jobs", b"for b only")
    control_plane.publish("hostrelay/acl-a1/jobs", b"for a")

    # Then B receives its job, and A receives only its own
    host_b.wait_until(lambda: host_b.messages)
    host_a.wait_until(lambda: host_a.messages)
    assert host_b.messages == [("hostrelay/acl-b1/jobs", b"for b only")]
    assert host_a.messages == [("hostrelay/acl-a1/jobs", b"for a")]


def test_host_cannot_publish_as_another_host(broker, control_plane, observers, tmp_path):
    # Given host A connected with its own certificate
    host_a = _host_client(broker, tmp_path, "acl-a2", [])
    observers.append(host_a)

    # When A publishes on B's events and status topics, and then on its own events topic
    host_a.publish("hostrelay/acl-b2/events", b'{"kind": "result", "forged": true}')
    host_a.publish("hostrelay/acl-b2/status", b"offline")
    host_a.publish("hostrelay/acl-a2/events", b'{"kind": "heartbeat"}')

    # Then the control plane sees only A's own event: the forged ones were dropped (the
    # session's broker also holds retained `offline` statuses of other tests' hosts)
    own_event = ("hostrelay/acl-a2/events", b'{"kind": "heartbeat"}')
    control_plane.wait_until(lambda: own_event in control_plane.messages)
    about_a_or_b = [m for m in control_plane.messages if m[0].split("/")[1] in {"acl-a2", "acl-b2"}]
    assert about_a_or_b == [own_event]


def test_only_the_control_plane_can_publish_jobs(broker, control_plane, observers, tmp_path):
    # Given host A listening on its own jobs topic, and another host C
    host_a = _host_client(broker, tmp_path, "acl-a3", ["hostrelay/acl-a3/jobs"])
    other = _host_client(broker, tmp_path, "acl-c3", [])
    observers.extend([host_a, other])

    # When C publishes a job for A, A publishes one for itself, then the control plane does
    other.publish("hostrelay/acl-a3/jobs", b"sneaky")
    host_a.publish("hostrelay/acl-a3/jobs", b"self-served")
    control_plane.publish("hostrelay/acl-a3/jobs", b"legit")

    # Then A receives only the control plane's job
    host_a.wait_until(lambda: host_a.messages)
    assert host_a.messages == [("hostrelay/acl-a3/jobs", b"legit")]


def test_client_without_certificate_is_refused(broker):
    # Given a TLS client that trusts the broker but presents no certificate
    context = ssl.create_default_context(cafile=str(broker.endpoint.ca_file))

    # When it connects and waits for the broker to say something
    with (
        socket.create_connection((broker.endpoint.host, broker.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.settimeout(5)
        # Then the broker ends the handshake with an alert
        with pytest.raises(ssl.SSLError, match=r"certificate required|handshake failure"):
            tls.recv(1)


def test_plain_mqtt_without_tls_is_refused(broker):
    # Given a client speaking plain MQTT to the broker's only port
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="plain")

    # When it tries to connect, Then the connection never comes up
    client.connect(broker.endpoint.host, broker.port)
    for _ in range(20):
        if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
            break
    assert not client.is_connected()


def _tls_refusal(broker, identity):
    """The broker's TLS alert for this client certificate, or None when it accepts it."""
    context = ssl.create_default_context(cafile=str(broker.endpoint.ca_file))
    context.load_cert_chain(str(identity.cert_path), str(identity.key_path))
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
        return None  # waiting for our MQTT CONNECT: the certificate was accepted
    return None


def test_revoked_host_certificate_is_refused_after_reload(local_ca, broker, tmp_path):
    # Given a host whose certificate works
    identity = broker.issue_host_identity("revoked-host", tmp_path / "revoked")
    assert _tls_refusal(broker, identity) is None

    # When the CA revokes it and the broker reloads its CRL
    local_ca.revoke(identity.cert_path.read_bytes())
    broker.reload()

    # Then the broker refuses the certificate (SIGHUP is asynchronous: allow it a moment)
    refusal = None
    for _ in range(20):
        refusal = _tls_refusal(broker, identity)
        if refusal:
            break
    assert refusal is not None
    assert "revoked" in refusal
