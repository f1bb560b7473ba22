"""Enrolled hosts for operators: list and show them, and revoke one for good."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hostrelay.dal.audit_repo import AuditRepository
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.domain.hosts import Host, HostState
from hostrelay.domain.principal import Principal, Scope
from hostrelay.observability import logger

if TYPE_CHECKING:
    from hostrelay.dal.certificates import IotCertificateAuthority


class HostService:
    """`authority` is called on the first revocation: few containers ever revoke, and the
    certificate code costs cold start to import."""

    def __init__(
        self,
        hosts: HostRepository,
        authority: Callable[[], IotCertificateAuthority],
        *,
        audit: AuditRepository,
    ) -> None:
        self._hosts = hosts
        self._authority = authority
        self._audit = audit

    def list(self, principal: Principal) -> list[Host]:
        principal.require(Scope.READER)
        return sorted(self._hosts.all(), key=lambda host: host.name)

    def get(self, name: str, principal: Principal) -> Host:
        principal.require(Scope.READER)
        return self._hosts.get(name)

    def revoke(self, name: str, principal: Principal) -> Host:
        """Deactivate the host's certificates (current and any pending renewal) for good, and
        record who did it. Revoking a revoked host again does both again (idempotent)."""
        principal.require(Scope.ADMIN)
        host = self._hosts.get(name)
        cert_ids = host.certificate_ids
        if cert_ids:
            authority = self._authority()
            for cert_id in cert_ids:
                authority.deactivate(cert_id)
        if host.state != HostState.REVOKED or host.pending_cert:
            host = self._hosts.revoke(name)
        self._audit.append(principal.label, "host.revoke", f"host:{name}", {"cert_ids": cert_ids})
        logger.info("host revoked", extra={"host": name, "certificates": len(cert_ids)})
        return host
