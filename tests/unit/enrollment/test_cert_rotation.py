"""Certificate renewal on the relay: when it asks, what it accepts, and how it switches."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hostrelay_relay.cert_rotation import (
    CertificateRotation,
    certificate_id,
    certificate_problem,
    certificate_validity,
    renewal_due,
)
from hostrelay_relay.settings import RelaySettings

START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
CA_KEY = ec.generate_private_key(ec.SECP256R1())


def issue(public_key: Any, host: str, not_before: dt.datetime, days: float) -> bytes:
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
        .sign(CA_KEY, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def host_files(tmp_path: Path) -> RelaySettings:
    """Given host web01 with a 90-day certificate issued on 2030-01-01."""
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "client.key").write_bytes(key_pem(key))
    (tmp_path / "client.pem").write_bytes(issue(key.public_key(), "web01", START, 90))
    return RelaySettings.model_validate(
        {
            "host": "web01",
            "state_dir": tmp_path / "state",
            "broker": {"cert_file": tmp_path / "client.pem", "key_file": tmp_path / "client.key"},
        }
    )


def test_validity_and_id_are_read_without_cryptography_and_match_it() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    for not_before, days in ((START, 90), (dt.datetime(2049, 6, 1, tzinfo=dt.UTC), 1000)):
        pem = issue(key.public_key(), "web01", not_before, days)
        cert = x509.load_pem_x509_certificate(pem)
        assert certificate_validity(pem) == (cert.not_valid_before_utc, cert.not_valid_after_utc)
        assert certificate_id(pem) == cert.fingerprint(hashes.SHA256()).hex()


def test_renewal_is_due_at_two_thirds_of_the_lifetime() -> None:
    validity = (START, START + dt.timedelta(days=90))
    assert not renewal_due(validity, START + dt.timedelta(days=59, hours=23))
    assert renewal_due(validity, START + dt.timedelta(days=60))


def test_an_expired_certificate_is_named_plainly(host_files: RelaySettings) -> None:
    problem = certificate_problem(host_files.broker.cert_file, START + dt.timedelta(days=91))
    assert problem is not None
    assert "EXPIRED on 2030-04-01" in problem and "re-enroll" in problem
    assert certificate_problem(host_files.broker.cert_file, START + dt.timedelta(days=1)) is None


def test_renewal_asks_once_for_one_key_and_switches_only_after_connecting(
    host_files: RelaySettings,
) -> None:
    clock = Clock(START + dt.timedelta(days=10))
    rotation = CertificateRotation(host_files, clock=clock)
    switched: list[bool] = []
    rotation.on_staged = lambda: switched.append(True)
    old_cert = host_files.broker.cert_file.read_bytes()

    # Given a young certificate, When asked, Then no renewal is requested
    assert rotation.renewal_request() is None

    # When 2/3 of its life passed, Then a CSR for a new key (made here, 0600) is requested,
    # and asking again asks for the same key
    clock.now = START + dt.timedelta(days=61)
    first, again = rotation.renewal_request(), rotation.renewal_request()
    assert first is not None and again is not None
    csr = x509.load_pem_x509_csr(first["csr"].encode())
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "web01"
    assert x509.load_pem_x509_csr(again["csr"].encode()).public_key() == csr.public_key()
    assert rotation.next_key_file.stat().st_mode & 0o077 == 0

    # When the control plane's certificate for that key arrives
    new_cert = issue(csr.public_key(), "web01", clock.now, 90)
    rotation.stage(new_cert.decode())

    # Then it is staged beside the current pair, which stays, and a switch is asked for
    assert switched == [True]
    assert rotation.credentials() == (rotation.next_cert_file, rotation.next_key_file)
    assert host_files.broker.cert_file.read_bytes() == old_cert

    # When the broker accepts the staged pair, Then it becomes the current one
    rotation.connected(rotation.next_cert_file)
    assert host_files.broker.cert_file.read_bytes() == new_cert
    assert not rotation.next_key_file.exists() and not rotation.next_cert_file.exists()
    assert rotation.credentials() == (host_files.broker.cert_file, host_files.broker.key_file)


def test_a_certificate_for_another_key_or_host_is_not_staged(host_files: RelaySettings) -> None:
    clock = Clock(START + dt.timedelta(days=61))
    rotation = CertificateRotation(host_files, clock=clock)
    request = rotation.renewal_request()
    assert request is not None
    pending = x509.load_pem_x509_csr(request["csr"].encode()).public_key()
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()

    with pytest.raises(ValueError, match="pending key"):
        rotation.stage(issue(stranger, "web01", clock.now, 90).decode())
    with pytest.raises(ValueError, match="not for host web01"):
        rotation.stage(issue(pending, "web02", clock.now, 90).decode())
    assert rotation.credentials()[0] == host_files.broker.cert_file


def test_a_staged_certificate_the_broker_keeps_refusing_is_dropped(
    host_files: RelaySettings,
) -> None:
    clock = Clock(START + dt.timedelta(days=61))
    rotation = CertificateRotation(host_files, clock=clock)
    request = rotation.renewal_request()
    assert request is not None
    pending = x509.load_pem_x509_csr(request["csr"].encode()).public_key()
    rotation.stage(issue(pending, "web01", clock.now, 90).decode())

    for _ in range(3):
        rotation.connect_failed(rotation.next_cert_file)

    assert rotation.credentials() == (host_files.broker.cert_file, host_files.broker.key_file)
    assert rotation.next_key_file.exists()  # asked for again later, with the same key


def test_rotation_and_clock_check_leave_cryptography_unloaded_until_renewal() -> None:
    # The idle daemon imports these; cryptography would cost it several MiB.
    import subprocess

    code = (
        "import sys, hostrelay_relay.cert_rotation, hostrelay_relay.clock_check;"
        "print('cryptography' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
