"""Certificate renewal on the relay: ask at 2/3 of the lifetime, install the answer, switch.

Only stdlib on the daemon's everyday path (reading dates and ids of certificates):
`cryptography` costs the idle relay memory, so it is imported only to make a key and a CSR
or to check a new certificate, which happens once per certificate lifetime.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostrelay_contract.job_types import CERT_INSTALL
from hostrelay_contract.jobs.cert import CertInstallParams, CertInstallResult
from hostrelay_relay.handlers.base import Handler, JobContext, JobError
from hostrelay_relay.settings import RelaySettings

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

logger = logging.getLogger(__name__)

CERT_INSTALL_TYPE = CERT_INSTALL.name
RENEWAL_EVENT = "cert_renewal"
NEXT_SUFFIX = ".next"
STAGED_ATTEMPTS = 3  # connections tried with a renewed certificate before giving it up
PROBE_INTERVAL_S = 60.0  # how often a failing connection asks the broker why, at most
_PROBE_TIMEOUT_S = 5.0
_PEM_CERT = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----"
)
_SEQUENCE, _UTC_TIME, _GENERALIZED_TIME, _EXPLICIT_0 = 0x30, 0x17, 0x18, 0xA0


def certificate_der(cert_pem: bytes) -> bytes:
    """The DER bytes of the first certificate in a PEM file; ValueError when there is none."""
    match = _PEM_CERT.search(cert_pem)
    if match is None:
        raise ValueError("no PEM certificate found")
    try:
        return base64.b64decode(b"".join(match.group(1).split()), validate=True)
    except binascii.Error:
        raise ValueError("the PEM certificate is not base64") from None


def certificate_id(cert_pem: bytes) -> str:
    """SHA-256 of the DER certificate (IoT Core's certificate id; what `hello` reports)."""
    return hashlib.sha256(certificate_der(cert_pem)).hexdigest()


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start, end) of the DER element at `offset`."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + length > len(data):
        raise ValueError("truncated DER")
    return tag, start, start + length


def _der_time(tag: int, raw: bytes) -> dt.datetime:
    text = raw.decode("ascii")
    if tag == _UTC_TIME:  # YYMMDDHHMMSSZ: 50-99 are 19xx (RFC 5280)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != _GENERALIZED_TIME:
        raise ValueError("validity is not a time")
    return dt.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=dt.timezone.utc)


def certificate_validity(cert_pem: bytes) -> tuple[dt.datetime, dt.datetime]:
    """(not before, not after) of a certificate, read from its DER without `cryptography`."""
    der = certificate_der(cert_pem)
    tag, start, _ = _tlv(der, 0)  # Certificate
    tbs_tag, position, _ = _tlv(der, start)  # TBSCertificate
    if tag != _SEQUENCE or tbs_tag != _SEQUENCE:
        raise ValueError("not an X.509 certificate")
    if der[position] == _EXPLICIT_0:  # version
        position = _tlv(der, position)[2]
    for _ in range(3):  # serial number, signature algorithm, issuer
        position = _tlv(der, position)[2]
    validity_tag, position, _ = _tlv(der, position)
    if validity_tag != _SEQUENCE:
        raise ValueError("no validity in the certificate")
    first_tag, first_start, first_end = _tlv(der, position)
    second_tag, second_start, second_end = _tlv(der, first_end)
    return (
        _der_time(first_tag, der[first_start:first_end]),
        _der_time(second_tag, der[second_start:second_end]),
    )


def renewal_due(
    validity: tuple[dt.datetime, dt.datetime], now: dt.datetime, fraction: float = 2 / 3
) -> bool:
    """True once `fraction` of the certificate's lifetime has passed."""
    start, end = validity
    return now >= start + (end - start) * fraction


def certificate_problem(cert_file: Path, now: dt.datetime | None = None) -> str | None:
    """Why this certificate cannot connect (expired, not yet valid, unreadable), or None."""
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        not_before, not_after = certificate_validity(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        return f"cannot read the client certificate {cert_file}: {exc}"
    if now > not_after:
        return (
            f"the client certificate EXPIRED on {not_after:%Y-%m-%d %H:%M} UTC; the broker "
            "refuses it: re-enroll this host (hostrelay hosts enroll NAME --replace)"
        )
    if now < not_before:
        return (
            f"the client certificate is not valid before {not_before:%Y-%m-%d %H:%M} UTC; "
            "check this host's clock"
        )
    return None


def broker_refusal(settings: RelaySettings, cert_file: Path, key_file: Path) -> str | None:
    """The broker's TLS alert for this client certificate (e.g. `certificate revoked`).

    None when the broker accepts it or cannot be reached (then it is not the certificate).
    """
    broker = settings.broker
    try:
        context = ssl.create_default_context(cafile=str(broker.ca_file))
        context.load_cert_chain(str(cert_file), str(key_file))
        with (
            socket.create_connection((broker.host, broker.port), timeout=_PROBE_TIMEOUT_S) as raw,
            context.wrap_socket(raw, server_hostname=broker.host) as tls,
        ):
            tls.settimeout(1.0)
            tls.recv(1)
    except ssl.SSLError as exc:
        return str(exc.reason or exc).replace("_", " ").lower()
    except OSError:
        return None
    return None


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def _public_der(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


class CertificateRotation:
    """The relay's side of renewal. The current pair stays in place until the new one works.

    A renewal makes a new key next to the current one (`client.key.next`, never sent
    anywhere) and a CSR for it; the control plane answers with a signed `cert.install`
    job, whose certificate is staged as `client.pem.next`. The link then connects with the
    staged pair; once the broker accepts it, the staged files replace the current ones. A
    staged certificate the broker refuses is dropped and the current pair is used again.
    """

    def __init__(
        self,
        settings: RelaySettings,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        self._host = settings.host
        self._fraction = settings.cert_renew_fraction
        self.cert_file = settings.broker.cert_file
        self.key_file = settings.broker.key_file
        self.next_cert_file = self.cert_file.with_name(self.cert_file.name + NEXT_SUFFIX)
        self.next_key_file = self.key_file.with_name(self.key_file.name + NEXT_SUFFIX)
        self._clock = clock
        self._lock = threading.Lock()
        self._staged_failures = 0
        self._settings = settings
        self._next_probe = 0.0
        self.on_staged: Callable[[], None] = lambda: None

    # --- which pair to connect with ------------------------------------------------------

    def credentials(self) -> tuple[Path, Path]:
        """(certificate, key) for the next connection: the staged pair when there is one."""
        with self._lock:
            if self.next_cert_file.exists() and self.next_key_file.exists():
                return self.next_cert_file, self.next_key_file
            return self.cert_file, self.key_file

    def connected(self, cert_file: Path) -> None:
        """The broker accepted `cert_file`: a staged pair becomes the current one."""
        if cert_file != self.next_cert_file:
            return
        self._staged_failures = 0
        with self._lock:
            if not self.next_cert_file.exists():
                return
            self.next_key_file.replace(self.key_file)
            self.next_cert_file.replace(self.cert_file)
        logger.info(
            "certificate rotated", extra={"cert_id": certificate_id(self.cert_file.read_bytes())}
        )

    def connect_failed(self, cert_file: Path) -> None:
        """No session with `cert_file`: after a few tries a staged one is dropped."""
        if cert_file == self.next_cert_file:
            self._staged_failures += 1
            if self._staged_failures < STAGED_ATTEMPTS:
                return
            self._staged_failures = 0
            with self._lock:
                self.next_cert_file.unlink(missing_ok=True)
            logger.error(
                "the broker refused the renewed certificate; keeping the current one",
                extra={"cert_file": str(cert_file)},
            )
            return
        problem = certificate_problem(cert_file, self._clock())
        if problem is not None:
            logger.error("cannot connect with this certificate", extra={"problem": problem})
            return
        if time.monotonic() < self._next_probe:
            return
        self._next_probe = time.monotonic() + PROBE_INTERVAL_S
        refusal = broker_refusal(self._settings, cert_file, self.key_file)
        if refusal is not None:
            logger.error(
                "the broker refuses this host's certificate; if it was revoked, re-enroll "
                "this host (hostrelay hosts enroll NAME --replace)",
                extra={"reason": refusal},
            )

    # --- asking for the next certificate -------------------------------------------------

    def due(self) -> bool:
        try:
            validity = certificate_validity(self.cert_file.read_bytes())
        except (OSError, ValueError):
            return False
        return renewal_due(validity, self._clock(), self._fraction)

    def renewal_request(self) -> dict[str, Any] | None:
        """The `cert_renewal` event fields when a renewal is due and none is staged."""
        if not self.due() or self.next_cert_file.exists():
            return None
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import NameOID

        with self._lock:
            key = self._next_key()
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self._host)]))
            .sign(key, hashes.SHA256())
        )
        return {"csr": csr.public_bytes(serialization.Encoding.PEM).decode()}

    def _next_key(self) -> ec.EllipticCurvePrivateKey:
        """The pending key: made once, so asking again asks for the same key."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if self.next_key_file.exists():
            loaded = serialization.load_pem_private_key(
                self.next_key_file.read_bytes(), password=None
            )
            if isinstance(loaded, ec.EllipticCurvePrivateKey):
                return loaded
        key = ec.generate_private_key(ec.SECP256R1())
        _write_private(
            self.next_key_file,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        return key

    # --- installing the answer -----------------------------------------------------------

    def stage(self, certificate_pem: str) -> x509.Certificate:
        """Keep the new certificate next to the current one; ValueError when it is not ours."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.x509.oid import NameOID

        cert = x509.load_pem_x509_certificate(certificate_pem.encode())
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if [name.value for name in names] != [self._host]:
            raise ValueError(f"the certificate is not for host {self._host}")
        if self._clock() > cert.not_valid_after_utc:
            raise ValueError("the certificate has already expired")
        with self._lock:
            if not self.next_key_file.exists():
                raise ValueError("no renewal is pending on this host")
            key = serialization.load_pem_private_key(self.next_key_file.read_bytes(), password=None)
            if _public_der(cert.public_key()) != _public_der(key.public_key()):
                raise ValueError("the certificate does not carry this host's pending key")
            _write_private(self.next_cert_file, cert.public_bytes(serialization.Encoding.PEM))
        logger.info(
            "renewed certificate staged",
            extra={"not_after": cert.not_valid_after_utc.isoformat()},
        )
        self.on_staged()
        return cert


class CertInstallHandler(Handler[CertInstallParams]):
    """`cert.install`: the control plane's answer to a renewal, as a signed job."""

    type = CERT_INSTALL_TYPE
    params_model = CertInstallParams

    def __init__(self, settings: RelaySettings, rotation: CertificateRotation) -> None:
        super().__init__(settings)
        self._rotation = rotation

    def run(self, params: CertInstallParams, ctx: JobContext) -> dict[str, Any]:
        try:
            cert = self._rotation.stage(params.certificate_pem)
        except ValueError as exc:
            raise JobError("bad_certificate", str(exc)) from None
        return CertInstallResult(
            cert_id=certificate_id(params.certificate_pem.encode()),
            not_after=cert.not_valid_after_utc.isoformat(),
        ).model_dump()
