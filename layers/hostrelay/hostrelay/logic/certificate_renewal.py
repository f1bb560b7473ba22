"""Certificate renewal: a relay's CSR becomes a new certificate, sent back as a signed job."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization

from hostrelay.clock import utcnow
from hostrelay.dal.audit_repo import AuditRepository
from hostrelay.dal.certificates import IotCertificateAuthority
from hostrelay.dal.dispatch_queue import DispatchQueue
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.domain.errors import DomainError, NotFound
from hostrelay.domain.hosts import HostState
from hostrelay.domain.jobs import Job, JobState, new_job_identity
from hostrelay.logic.enrollment import check_csr
from hostrelay.observability import logger
from hostrelay_contract.job_types import CERT_INSTALL
from hostrelay_contract.jobs.cert import CertInstallParams

CERT_INSTALL_TYPE = CERT_INSTALL.name
RENEWAL_ACTOR = "system:cert-renewal"
INSTALL_TIMEOUT_S = CERT_INSTALL.default_timeout_s
INSTALL_DELIVER_WITHIN = timedelta(days=1)
# A certificate may be renewed once this much of its lifetime has passed (relays ask at 2/3).
RENEWAL_WINDOW_FRACTION = 0.5
# At most one renewal granted per host this often (an install that failed may ask again).
RENEWAL_INTERVAL = timedelta(hours=1)


def _key_sha256(csr_pem: str) -> str:
    from cryptography import x509

    key = x509.load_pem_x509_csr(csr_pem.encode()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


class CertificateRenewal:
    """Issues a host's next certificate and retires the old one once the host uses the new.

    The host is the one the broker authorized (the events topic), so a host can only ever
    renew its own certificate, and only with a CSR that names it.
    """

    def __init__(
        self,
        hosts: HostRepository,
        jobs: JobRepository,
        queue: DispatchQueue,
        authority: IotCertificateAuthority,
        audit: AuditRepository,
    ) -> None:
        self._hosts = hosts
        self._jobs = jobs
        self._queue = queue
        self._authority = authority
        self._audit = audit

    def renew(self, host: str, csr_pem: str) -> str:
        """Handle a `cert_renewal` event; a short word saying what happened.

        Granted only inside the current certificate's renewal window, with no other renewal
        pending, and at most once per RENEWAL_INTERVAL per host; every refusal is audited.
        """
        record = self._hosts.find(host)
        if record is None or record.state == HostState.REVOKED:
            return self._refuse(host, "revoked", "the host is unknown or revoked")
        try:
            check_csr(csr_pem, host)
        except DomainError as exc:
            return self._refuse(host, "bad_csr", exc.message)
        key_sha256 = _key_sha256(csr_pem)
        pending: dict[str, Any] = dict(record.pending_cert or {})
        if pending and self._in_flight(pending):
            if pending.get("key_sha256") == key_sha256:
                return "renewal_pending"  # the same request again: its certificate is on its way
            return self._refuse(host, "pending", "another renewal is pending")
        now = utcnow()
        opens_at = self._window_opens(record.cert_id)
        if opens_at is None or now < opens_at:
            when = opens_at.isoformat() if opens_at else "never (no current certificate)"
            return self._refuse(host, "outside_window", f"renewal window opens {when}")
        if not self._hosts.claim_renewal(host, now, granted_before=now - RENEWAL_INTERVAL):
            return self._refuse(host, "rate_limited", "a renewal was granted too recently")
        if pending.get("id"):
            self._authority.deactivate(str(pending["id"]))  # superseded, never used
        issued = self._authority.issue(host, csr_pem)
        job_id, created_at = new_job_identity(now)
        job = Job(
            id=job_id,
            type=CERT_INSTALL_TYPE,
            host=host,
            params=CertInstallParams(certificate_pem=issued.certificate_pem).model_dump(),
            state=JobState.QUEUED,
            timeout_s=INSTALL_TIMEOUT_S,
            deliver_by=now + INSTALL_DELIVER_WITHIN,
            created_by=RENEWAL_ACTOR,
            created_at=created_at,
            updated_at=created_at,
        )
        recorded = self._hosts.set_pending_certificate(
            host,
            {
                "id": issued.certificate_id,
                "fingerprint": issued.fingerprint,
                "expires_at": issued.not_after.isoformat(),
                "key_sha256": key_sha256,
                "job_id": job.id,
            },
        )
        if not recorded:  # revoked while we were issuing
            self._authority.deactivate(issued.certificate_id)
            return "renewal_refused"
        self._jobs.create(job)
        self._queue.send(job.id, job.attempt)
        self._audit.append(
            RENEWAL_ACTOR, "host.cert_renew", f"host:{host}",
            {"certificate_id": issued.certificate_id, "job_id": job.id},
        )  # fmt: skip
        logger.info(
            "certificate renewed",
            extra={"host": host, "certificate_id": issued.certificate_id, "job_id": job.id},
        )
        return "renewal_issued"

    def _window_opens(self, certificate_id: str | None) -> datetime | None:
        """When the current certificate may be renewed; None when there is none to renew."""
        if not certificate_id:
            return None
        validity = self._authority.validity(certificate_id)
        if validity is None:
            return None
        not_before, not_after = validity
        return not_before + (not_after - not_before) * RENEWAL_WINDOW_FRACTION

    def _refuse(self, host: str, reason: str, message: str) -> str:
        logger.warning("certificate renewal refused", extra={"host": host, "reason": reason})
        self._audit.append(
            RENEWAL_ACTOR, "host.cert_renew_refused", f"host:{host}",
            {"reason": reason, "message": message},
        )  # fmt: skip
        return "renewal_refused"

    def _in_flight(self, pending: dict[str, Any]) -> bool:
        try:
            job = self._jobs.get(str(pending.get("job_id")))
        except NotFound:
            return False
        return not job.state.terminal

    def confirm(self, host: str, fingerprint: str) -> bool:
        """The host connected with `fingerprint`: if it is the pending certificate, switch."""
        record = self._hosts.find(host)
        pending: dict[str, Any] = dict(record.pending_cert or {}) if record else {}
        if record is None or pending.get("fingerprint") != fingerprint:
            return False
        old_id = record.cert_id
        if old_id and old_id != pending["id"]:
            # First, so a retry after a failure here still retires it.
            self._authority.deactivate(old_id)
        promoted = self._hosts.promote_pending_certificate(
            host,
            old_cert_id=old_id,
            new_cert_id=str(pending["id"]),
            expires_at=datetime.fromisoformat(str(pending["expires_at"])),
        )
        if promoted:
            self._audit.append(
                f"host:{host}", "host.cert_rotate", f"host:{host}",
                {"old_certificate_id": old_id, "certificate_id": pending["id"]},
            )  # fmt: skip
            logger.info(
                "certificate rotated",
                extra={"host": host, "certificate_id": pending["id"], "retired": old_id},
            )
        return promoted
