"""A local certificate authority for the broker, the control plane and enrolled hosts."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hostrelay_contract.names import check_host_name

CONTROL_PLANE_CN = "hostrelay-control-plane"
"""The broker identity allowed to publish jobs to every host and read every host's events."""
TOPIC_RULES_CN = "hostrelay-topic-rules"
"""The local topic-rule bridges' broker identities are this plus `-<n>`: they read events."""

_CLOCK_SKEW = dt.timedelta(minutes=5)
_MIN_RSA_BITS = 2048
_ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1)


class CsrRejected(ValueError):
    """A host's certificate signing request cannot be signed; the message says why."""


@dataclass(frozen=True)
class IssuedCert:
    """A certificate written to disk, with its private key when this CA generated the key."""

    common_name: str
    serial: int
    cert_path: Path
    key_path: Path


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write_private(path: Path, data: bytes) -> None:
    """Write a file that only its owner may read, replacing any previous version atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def new_host_key_and_csr(host: str) -> tuple[bytes, bytes]:
    """Generate a host's private key and a CSR naming it (CN = host): (key PEM, CSR PEM)."""
    key = _new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .sign(key, hashes.SHA256())
    )
    return _key_pem(key), csr.public_bytes(serialization.Encoding.PEM)


def _checked_csr_key(
    csr: x509.CertificateSigningRequest, host: str
) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    if not csr.is_signature_valid:
        raise CsrRejected("the CSR signature does not verify")
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or len(csr.subject) != 1:
        raise CsrRejected("the CSR subject must be exactly one common name (CN)")
    if names[0].value != host:
        raise CsrRejected(f"the CSR names {names[0].value!r} but the enrolled host is {host!r}")
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise CsrRejected(f"RSA keys must have at least {_MIN_RSA_BITS} bits")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _ALLOWED_CURVES):
            raise CsrRejected("EC keys must use P-256 or P-384")
    else:
        raise CsrRejected("the CSR key must be RSA (>= 2048 bits) or EC (P-256, P-384)")
    return key


def is_control_plane_identity(common_name: str) -> bool:
    """Whether the name is one of the control plane's broker identities (never a host's)."""
    return common_name == CONTROL_PLANE_CN or common_name.startswith(TOPIC_RULES_CN)


def check_enrollable_host(host: str) -> str:
    """A host name that may get a client certificate: a DNS label, not a reserved identity."""
    check_host_name(host)
    if is_control_plane_identity(host):
        raise CsrRejected(f"{host!r} is reserved for the control plane")
    return host


class LocalCA:
    """A CA kept in one directory: ca.pem, ca.key (0600), revoked.json and crl.pem."""

    def __init__(self, directory: Path) -> None:
        """Load the CA in `directory`, creating it (and an empty CRL) on first use."""
        self.directory = directory
        self.cert_path = directory / "ca.pem"
        self.key_path = directory / "ca.key"
        self.crl_path = directory / "crl.pem"
        self._revoked_path = directory / "revoked.json"
        if not self.cert_path.exists():
            self._create()
        self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        loaded = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self.key_path} is not an EC private key")
        self._key = loaded
        if not self.crl_path.exists():
            self.write_crl()

    def _create(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        key = _new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostrelay local CA")])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.key_path, _key_pem(key))
        _write_public(self.cert_path, cert.public_bytes(serialization.Encoding.PEM))

    @property
    def cert_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def _build(
        self,
        subject: str,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
        usage: x509.ObjectIdentifier,
        valid_days: int,
        alt_names: Iterable[x509.GeneralName] = (),
    ) -> x509.Certificate:
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(self._cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
        )
        names = list(alt_names)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self._key, hashes.SHA256())

    def _write_pair(
        self, out_dir: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
    ) -> IssuedCert:
        out_dir.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = out_dir / f"{stem}.pem", out_dir / f"{stem}.key"
        _write_private(key_path, _key_pem(key))
        _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        common_name = str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
        return IssuedCert(common_name, cert.serial_number, cert_path, key_path)

    def issue_server_cert(
        self,
        out_dir: Path,
        *,
        dns_names: Iterable[str] = ("localhost",),
        ip_addresses: Iterable[str] = ("127.0.0.1",),
        valid_days: int = 825,
    ) -> IssuedCert:
        """A TLS server certificate for the broker, written as out_dir/server.{pem,key}."""
        key = _new_key()
        dns = list(dns_names)
        alt: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
        alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        subject = dns[0] if dns else "hostrelay-broker"
        cert = self._build(
            subject, key.public_key(), ExtendedKeyUsageOID.SERVER_AUTH, valid_days, alt
        )
        return self._write_pair(out_dir, "server", cert, key)

    def issue_client_cert(
        self, common_name: str, out_dir: Path, *, valid_days: int = 397
    ) -> IssuedCert:
        """Generate a key and a client certificate for a host or the control plane.

        Written as out_dir/{common_name}.{pem,key}. Host names must be DNS labels; the
        control plane's identities are the non-host names this accepts.
        """
        if is_control_plane_identity(common_name):
            check_host_name(common_name)
        else:
            check_enrollable_host(common_name)
        key = _new_key()
        cert = self._build(
            common_name, key.public_key(), ExtendedKeyUsageOID.CLIENT_AUTH, valid_days
        )
        return self._write_pair(out_dir, common_name, cert, key)

    def sign_host_csr(self, csr_pem: bytes, host: str, *, valid_days: int = 397) -> bytes:
        """Sign an enrolled host's CSR and return the certificate PEM.

        Raises CsrRejected unless the CSR verifies, names exactly CN=host, and uses an
        acceptable key. Extensions requested in the CSR are ignored: the CA decides them.
        """
        check_enrollable_host(host)
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError:
            raise CsrRejected("the CSR is not a PEM certificate signing request") from None
        public_key = _checked_csr_key(csr, host)
        cert = self._build(host, public_key, ExtendedKeyUsageOID.CLIENT_AUTH, valid_days)
        return cert.public_bytes(serialization.Encoding.PEM)

    def revoked_serials(self) -> dict[int, dt.datetime]:
        if not self._revoked_path.exists():
            return {}
        raw: dict[str, str] = json.loads(self._revoked_path.read_text())
        return {int(serial): dt.datetime.fromisoformat(when) for serial, when in raw.items()}

    def revoke(self, cert_pem: bytes) -> int:
        """Revoke a certificate this CA issued, rewrite the CRL, and return its serial."""
        cert = x509.load_pem_x509_certificate(cert_pem)
        try:
            cert.verify_directly_issued_by(self._cert)
        except (ValueError, TypeError, InvalidSignature):
            raise ValueError("the certificate was not issued by this CA") from None
        self.revoke_serial(cert.serial_number)
        return cert.serial_number

    def revoke_serial(self, serial: int) -> None:
        revoked = self.revoked_serials()
        revoked.setdefault(serial, _now())
        body = {str(number): when.isoformat() for number, when in revoked.items()}
        _write_private(self._revoked_path, json.dumps(body, indent=1).encode())
        self.write_crl()

    def write_crl(self, *, valid_days: int = 365) -> Path:
        """Write crl.pem listing every revoked serial (an empty CRL when none are)."""
        now = _now()
        revoked = self.revoked_serials()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self._cert.subject)
            .last_update(now - _CLOCK_SKEW)
            .next_update(now + dt.timedelta(days=valid_days))
            .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
        )
        for serial, when in revoked.items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        crl = builder.sign(self._key, hashes.SHA256())
        _write_public(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))
        return self.crl_path
