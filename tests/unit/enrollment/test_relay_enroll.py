"""`hostrelay-relay enroll` without a network: the key stays here, files land only on success."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from hostrelay_relay import toml_reader as tomllib
from hostrelay_relay.enrollment import (
    EnrollmentRefused,
    EnrollmentRequest,
    enroll,
    render_toml,
)

TOKEN = "hre_" + "A" * 43


class FakeControlPlane:
    """Signs whatever CSR it gets (like the API would for a good token), or refuses."""

    def __init__(self, *, refuse: tuple[int, str] | None = None, swap_key: bool = False) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.refuse = refuse
        self.swap_key = swap_key
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def ca_pem(self) -> str:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
        return (
            self._sign(name, self.ca_key.public_key())
            .public_bytes(serialization.Encoding.PEM)
            .decode()
        )

    def _sign(self, subject: x509.Name, public_key: Any) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self.ca_key, hashes.SHA256())
        )

    def post(self, url: str, body: dict[str, Any]) -> tuple[int, Any]:
        self.requests.append((url, body))
        if self.refuse is not None:
            status, message = self.refuse
            return status, {"error": {"code": "x", "message": message, "details": []}}
        csr = x509.load_pem_x509_csr(body["csr"].encode())
        key = (
            ec.generate_private_key(ec.SECP256R1()).public_key()
            if self.swap_key
            else csr.public_key()
        )
        cert = self._sign(csr.subject, key)
        envelope_key = ed25519.Ed25519PrivateKey.generate().public_key()
        return 200, {
            "host": body["host"],
            "certificate_pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "certificate_expires_at": "2030-01-01T00:00:00Z",
            "ca_pem": self.ca_pem(),
            "broker_host": "broker.example.com",
            "broker_port": 8883,
            "envelope_public_key_pem": envelope_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            "control_plane_url": "https://api.example.com",
        }


def request(tmp_path: Path, host: str = "web01") -> EnrollmentRequest:
    return EnrollmentRequest(
        url="https://api.example.com",
        host=host,
        token=TOKEN,
        config_dir=tmp_path / "etc" / "hostrelay",
        state_dir=tmp_path / "var" / "hostrelay",
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_enroll_writes_private_files_and_a_config_the_relay_reads(tmp_path: Path) -> None:
    # Given a control plane that accepts the token
    plane = FakeControlPlane()

    # When the host enrolls
    config_path = enroll(request(tmp_path), post=plane.post)

    # Then only a CSR and the token's URL left the host, and the key is the certificate's
    url, body = plane.requests[0]
    assert url == f"https://api.example.com/v1/enroll/{TOKEN}/csr"
    assert set(body) == {"host", "csr"} and "PRIVATE" not in body["csr"]
    config_dir = config_path.parent
    key = serialization.load_pem_private_key((config_dir / "client.key").read_bytes(), None)
    cert = x509.load_pem_x509_certificate((config_dir / "client.pem").read_bytes())
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert cert.public_key().public_bytes(
        serialization.Encoding.PEM, spki
    ) == key.public_key().public_bytes(serialization.Encoding.PEM, spki)
    # And every file is 0600 in 0700 directories
    assert mode(config_dir) == 0o700 and mode(tmp_path / "var" / "hostrelay") == 0o700
    for name in ("relay.toml", "client.key", "client.pem", "ca.pem", "envelope-signing.pub"):
        assert mode(config_dir / name) == 0o600, name
    # And the config names the host, the broker and the files
    from hostrelay_relay.settings import load_settings

    settings = load_settings(config_path)
    assert settings.host == "web01"
    assert (settings.broker.host, settings.broker.port) == ("broker.example.com", 8883)
    assert settings.broker.key_file == config_dir / "client.key"
    assert settings.control_plane_url == "https://api.example.com"
    # And the token is written nowhere
    for path in config_dir.iterdir():
        assert TOKEN not in path.read_text()


def test_refused_enrollment_prints_the_reason_and_changes_nothing(tmp_path: Path) -> None:
    # Given a control plane that says the token was already used
    plane = FakeControlPlane(refuse=(409, "this enrollment token was already used"))

    # When the host tries to enroll
    with pytest.raises(EnrollmentRefused, match=r"already used .*HTTP 409"):
        enroll(request(tmp_path), post=plane.post)

    # Then nothing was written
    assert list(tmp_path.iterdir()) == []


def test_a_certificate_for_another_key_is_refused_and_nothing_written(tmp_path: Path) -> None:
    # Given a control plane that answers with a certificate for some other key
    plane = FakeControlPlane(swap_key=True)

    # When the host enrolls, Then it refuses the answer and writes nothing
    with pytest.raises(EnrollmentRefused, match="key made on this host"):
        enroll(request(tmp_path), post=plane.post)
    assert not (tmp_path / "etc" / "hostrelay").exists()


def test_bad_host_names_are_refused_before_anything_is_sent(tmp_path: Path) -> None:
    plane = FakeControlPlane()
    for bad in ("Web01", "-web", "web_01", "a" * 64):
        with pytest.raises(EnrollmentRefused, match="DNS label"):
            enroll(request(tmp_path, host=bad), post=plane.post)
    assert plane.requests == []


def test_re_enrolling_keeps_the_rest_of_an_existing_config(tmp_path: Path) -> None:
    # Given a host whose relay.toml has local settings (exec policy, an LDAP credential)
    req = request(tmp_path)
    req.config_dir.mkdir(parents=True)
    (req.config_dir / "relay.toml").write_text(
        'host = "old"\nheartbeat_s = 5.0\n\n[exec]\nallowed_commands = ["/bin/echo"]\n\n'
        '[ldap.credentials.main]\nbind_dn = "cn=x"\npassword_file = "/etc/pw"\n'
    )

    # When it enrolls again
    enroll(req, post=FakeControlPlane().post)

    # Then the enrollment settings are new and the local ones are kept
    document = tomllib.loads((req.config_dir / "relay.toml").read_text())
    assert document["host"] == "web01"
    assert document["heartbeat_s"] == 5.0
    assert document["exec"]["allowed_commands"] == ["/bin/echo"]
    assert document["ldap"]["credentials"]["main"]["bind_dn"] == "cn=x"
    assert mode(req.config_dir) == 0o700


def test_render_toml_round_trips_nested_tables() -> None:
    document = {
        "a": 1,
        "b": 'x"y',
        "t": {"c": [1, 2], "u": {"d": True}},
        "arr": [{"e": 1}, {"e": 2}],
    }
    assert tomllib.loads(render_toml(document)) == document
