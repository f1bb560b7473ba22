"""Enrollment: a one-shot token becomes a host certificate, signed from a CSR the host made."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from string import Template

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from ulid import ULID

from hostrelay.clock import utcnow
from hostrelay.dal.audit_repo import AuditRepository
from hostrelay.dal.certificates import IotCertificateAuthority
from hostrelay.dal.enrollments_repo import EnrollmentRepository
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.signing_keys import SigningKeyStore
from hostrelay.domain.errors import Conflict, Forbidden, InvalidRequest, NotFound
from hostrelay.domain.principal import Principal, Scope
from hostrelay.domain.tags import check_tags
from hostrelay.observability import logger
from hostrelay_contract.names import CLOUD_HOST
from hostrelay_contract.names import check_host_name as check_host_label

MAX_CSR_BYTES = 16 * 1024
# Names that are not hosts: the cloud pseudo-host, the control plane's broker identity, and the
# local stack's topic-rule bridges (hostrelay-topic-rules-<n>, their own certificates).
RESERVED_HOSTS = frozenset({CLOUD_HOST, "hostrelay-control-plane"})
RESERVED_HOST_PREFIXES = ("hostrelay-topic-rules",)


def check_host_name(host: str) -> str:
    """A name a new host may take: the contract's host name rule, and not a reserved one."""
    try:
        check_host_label(host)
    except ValueError as exc:
        raise InvalidRequest(str(exc), details=[{"field": "host"}]) from None
    if host in RESERVED_HOSTS or host.startswith(RESERVED_HOST_PREFIXES):
        raise InvalidRequest(f"{host!r} is reserved", details=[{"field": "host"}])
    return host


@dataclass(frozen=True)
class EnrollmentOffer:
    enrollment_id: str
    host: str
    token: str
    command: str
    expires_at: datetime


@dataclass(frozen=True)
class EnrollmentBundle:
    """Everything a relay needs to connect, returned once for a valid CSR."""

    host: str
    certificate_pem: str
    certificate_expires_at: datetime
    ca_pem: str
    broker_host: str
    broker_port: int
    envelope_public_key_pem: str
    control_plane_url: str


@dataclass(frozen=True)
class EnrollmentConfig:
    ttl: timedelta
    public_url: str
    relay_package: str
    broker_ca_pem: str
    broker_host: str = ""
    broker_port: int = 8883


class EnrollmentService:
    def __init__(
        self,
        enrollments: EnrollmentRepository,
        hosts: HostRepository,
        authority: IotCertificateAuthority,
        keys: SigningKeyStore,
        *,
        audit: AuditRepository,
        config: EnrollmentConfig,
    ) -> None:
        self._enrollments = enrollments
        self._hosts = hosts
        self._authority = authority
        self._keys = keys
        self._audit = audit
        self._config = config

    def _url(self, base_url: str) -> str:
        return (self._config.public_url or base_url).rstrip("/")

    def offer(
        self,
        host: str,
        principal: Principal,
        *,
        roles: list[str] | None = None,
        replace: bool = False,
        base_url: str = "",
        tags: dict[str, str] | None = None,
    ) -> EnrollmentOffer:
        """Create a one-shot token and the single command an admin pastes on the host.

        `tags` become the host's tags when it enrolls (None: a re-enrolled host keeps its own).
        """
        principal.require(Scope.ADMIN)
        check_host_name(host)
        if tags is not None:
            tags = check_tags(tags)
        existing = self._hosts.find(host)
        if existing is not None and existing.cert_id and not replace:
            raise Conflict(
                f"host {host} is already enrolled; pass replace=true to re-enroll it "
                "(its current certificate is revoked when the new one is issued)"
            )
        now = utcnow()
        token, record = self._enrollments.create(
            enrollment_id=str(ULID()),
            host=host,
            roles=roles or [],
            replace=replace,
            created_by=principal.label,
            tags=tags,
            now=now,
            ttl=self._config.ttl,
        )
        url = self._url(base_url)
        command = f"curl -fsSL {shlex.quote(f'{url}/v1/enroll/{token}.sh')} | sudo bash"
        self._audit.append(
            principal.label, "enrollment.create", f"host:{host}",
            {"enrollment_id": record.enrollment_id, "replace": replace, "roles": roles or [],
             "tags": tags},
        )  # fmt: skip
        logger.info(
            "enrollment offered",
            extra={"host": host, "enrollment_id": record.enrollment_id, "replace": replace},
        )
        return EnrollmentOffer(
            enrollment_id=record.enrollment_id,
            host=host,
            token=token,
            command=command,
            expires_at=record.valid_until,
        )

    def bootstrap_script(self, token: str, base_url: str = "") -> str:
        """The shell script behind the pasted command, or one that refuses and changes nothing."""
        record = self._enrollments.find(token)
        now = utcnow()
        if record is None or record.valid_until <= now:
            return _refusal(
                "this enrollment link is unknown or has expired; nothing was changed on this "
                "host. Ask an admin for a new one (hostrelay hosts enroll NAME)."
            )
        if record.consumed_at is not None:
            return _refusal(
                "this enrollment link was already used; nothing was changed on this host. "
                "Ask an admin for a new one (hostrelay hosts enroll NAME --replace)."
            )
        template = Template(
            resources.files("hostrelay.bootstrap").joinpath("enroll.sh").read_text()
        )
        return template.substitute(
            host=shlex.quote(record.host),
            url=shlex.quote(self._url(base_url)),
            token=shlex.quote(token),
            relay_package=shlex.quote(self._config.relay_package),
            valid_until=record.valid_until.strftime("%Y-%m-%d %H:%M:%S"),
        )

    def complete(self, token: str, host: str, csr_pem: str, base_url: str = "") -> EnrollmentBundle:
        """Check the token and the CSR, consume the token, and issue the host certificate."""
        record = self._enrollments.find(token)
        now = utcnow()
        if record is None:
            raise NotFound("unknown enrollment token; ask an admin for a new enrollment command")
        if record.consumed_at is not None:
            raise Conflict("this enrollment token was already used; ask an admin for a new one")
        if record.valid_until <= now:
            raise Forbidden("this enrollment token has expired; ask an admin for a new one")
        if host != record.host:
            raise Forbidden(f"this enrollment token is for host {record.host}, not {host}")
        check_csr(csr_pem, record.host)
        previous = self._hosts.find(record.host)
        if previous is not None and previous.cert_id and not record.replace:
            raise Conflict(f"host {record.host} was enrolled meanwhile; ask for a replace=true one")
        public_key = self._keys.ensure_public_key_pem()
        if not self._enrollments.consume(token, now):
            raise Conflict("this enrollment token was already used; ask an admin for a new one")
        self._hosts.register(record.host, roles=list(record.roles))
        issued = self._authority.issue(record.host, csr_pem)
        for old_id in previous.certificate_ids if previous is not None else []:
            if old_id != issued.certificate_id:
                self._authority.deactivate(old_id)
        self._hosts.set_certificate(
            record.host,
            issued.certificate_id,
            issued.not_after,
            roles=list(record.roles),
            tags=record.tags,
        )
        self._audit.append(
            f"enrollment:{record.enrollment_id}", "host.enroll", f"host:{record.host}",
            {"certificate_id": issued.certificate_id, "replaced": previous is not None,
             "created_by": record.created_by},
        )  # fmt: skip
        logger.info(
            "host enrolled",
            extra={"host": record.host, "certificate_id": issued.certificate_id},
        )
        broker_host, broker_port = self._config.broker_host, self._config.broker_port
        if not broker_host:
            endpoint = self._authority.broker_endpoint()
            broker_host, broker_port = endpoint.host, endpoint.port
        return EnrollmentBundle(
            host=record.host,
            certificate_pem=issued.certificate_pem,
            certificate_expires_at=issued.not_after,
            ca_pem=self._config.broker_ca_pem,
            broker_host=broker_host,
            broker_port=broker_port,
            envelope_public_key_pem=public_key,
            control_plane_url=self._url(base_url),
        )


def check_csr(csr_pem: str, host: str) -> x509.CertificateSigningRequest:
    """The CSR must verify, name exactly CN=host, and use a strong key; Forbidden/Invalid else."""
    if len(csr_pem) > MAX_CSR_BYTES:
        raise InvalidRequest("csr is too large")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError:
        raise InvalidRequest("csr is not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise InvalidRequest("csr signature does not verify")
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or len(csr.subject) != 1 or names[0].value != host:
        raise Forbidden(f"csr subject must be exactly CN={host} (the enrolled host name)")
    key = csr.public_key()
    strong = (isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size >= 256) or (
        isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
    )
    if not strong:
        raise InvalidRequest("csr key must be EC P-256 or stronger, or RSA 2048 or stronger")
    return csr


def _refusal(message: str) -> str:
    template = Template(resources.files("hostrelay.bootstrap").joinpath("refuse.sh").read_text())
    return template.substitute(message=shlex.quote(message))
