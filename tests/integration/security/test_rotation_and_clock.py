"""Certificate rotation and the clock check of a real relay, against the real broker."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509

from hostrelay_relay.cert_rotation import certificate_id

pytestmark = pytest.mark.integration


class HealthServer:
    """GET /v1/health answering with a clock `offset_s` away from ours."""

    def __init__(self) -> None:
        self.offset_s = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"status": "ok", "time": time.time() + outer.offset_s}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def health() -> Iterator[HealthServer]:
    server = HealthServer()
    yield server
    server.server.shutdown()


def test_relay_rotates_its_certificate_and_keeps_the_old_one_until_the_new_one_works(
    broker, registry, enroll_host, signer, start_relay, control_plane
) -> None:
    # Given an enrolled relay that considers its certificate due for renewal
    host = enroll_host("rot")
    settings = host.settings(broker, signer.public_key_file, cert_renew_fraction=0.0)
    old_pem = host.identity.cert_path.read_bytes()
    relay = start_relay(settings)

    # When it connects, Then it asks for a new certificate with a CSR for a new key
    renewal = control_plane.wait_event(host.name, "cert_renewal")
    csr = x509.load_pem_x509_csr(renewal["csr"].encode())
    assert csr.subject.rfc4514_string() == f"CN={host.name}"
    assert "PRIVATE" not in renewal["csr"]

    # When the control plane sends the signed certificate back as a cert.install job
    issued = registry.state.create_certificate_from_csr(renewal["csr"], active=True)
    envelope = signer.envelope(
        host.name, "cert.install", {"certificate_pem": issued["certificatePem"]}
    )
    control_plane.publish(f"hostrelay/{host.name}/jobs", signer.sign(envelope))

    # Then the job succeeds, the relay reconnects with the new certificate and says so
    result = control_plane.wait_event(host.name, "result", job_id=envelope["job_id"])
    assert result["outcome"] == "succeeded", result
    new_id = certificate_id(issued["certificatePem"].encode())
    control_plane.wait_event(host.name, "hello", cert_id=new_id)
    # (the new pair replaces the old files once the connection it made is up: may trail hello)
    control_plane.wait_until(
        lambda: host.identity.cert_path.read_text() == issued["certificatePem"]
    )
    assert not (host.identity.cert_path.parent / "client.pem.next").exists()

    # When the control plane retires the old certificate
    registry.state.update_certificate(host.certificate_id, "INACTIVE")

    # Then the relay still works (a ping runs), on its new certificate
    ping = signer.envelope(host.name, "ping")
    control_plane.publish(f"hostrelay/{host.name}/jobs", signer.sign(ping))
    pong = control_plane.wait_event(host.name, "result", job_id=ping["job_id"], timeout=15)
    assert pong["outcome"] == "succeeded"
    assert relay.link is not None and relay.link.connected.is_set()
    assert certificate_id(old_pem) == host.certificate_id != new_id


def test_a_cert_install_for_a_key_this_host_did_not_make_fails_and_changes_nothing(
    broker, registry, enroll_host, signer, start_relay, control_plane
) -> None:
    host = enroll_host("rot")
    start_relay(host.settings(broker, signer.public_key_file))
    stranger = enroll_host("x")  # a certificate for some other key (and host)
    pem = stranger.identity.cert_path.read_text()

    envelope = signer.envelope(host.name, "cert.install", {"certificate_pem": pem})
    control_plane.publish(f"hostrelay/{host.name}/jobs", signer.sign(envelope))

    result = control_plane.wait_event(host.name, "result", job_id=envelope["job_id"])
    assert result["outcome"] == "failed" and result["error"]["code"] == "bad_certificate"
    assert host.identity.cert_path.read_text() != pem


def test_relay_with_a_skewed_clock_refuses_envelopes_and_says_so(
    broker, enroll_host, signer, start_relay, control_plane, health, caplog
) -> None:
    # Given a relay whose clock is 10 minutes behind the control plane's (validity 300 s)
    health.offset_s = 600.0
    host = enroll_host("clk")
    settings = host.settings(broker, signer.public_key_file, control_plane_url=health.url)
    with caplog.at_level(logging.INFO):
        relay = start_relay(settings)
        relay.maintain_once()  # the check it runs at connect, done now to avoid a race

    # When a valid envelope (issued by the control plane's clock) arrives
    now = int(time.time() + 600)
    envelope = signer.envelope(host.name, "ping", issued_at=now, expires_at=now + 300)
    control_plane.publish(f"hostrelay/{host.name}/jobs", signer.sign(envelope))

    # Then it is rejected as clock_skew, nothing runs, and the log says it plainly
    rejected = control_plane.wait_event(host.name, "rejected", job_id=envelope["job_id"])
    assert rejected["reason"] == "clock_skew" and "behind" in rejected["message"]
    assert relay.ledger is not None and relay.ledger.job(envelope["job_id"], 1) is None
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("clock skew exceeds the envelope validity" in message for message in errors)

    # When the clock is fixed and checked again, Then jobs run again
    health.offset_s = 0.0
    relay.maintain_once()
    ping = signer.envelope(host.name, "ping")
    control_plane.publish(f"hostrelay/{host.name}/jobs", signer.sign(ping))
    assert control_plane.wait_event(host.name, "result", job_id=ping["job_id"])["outcome"] == (
        "succeeded"
    )
