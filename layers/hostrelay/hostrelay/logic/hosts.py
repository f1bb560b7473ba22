"""Enrolled hosts for operators: list, show, tag and select them, and revoke one for good."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from hostrelay.dal.audit_repo import AuditRepository
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.domain.errors import Conflict, Forbidden, InvalidRequest, NotFound
from hostrelay.domain.hosts import Host, HostState
from hostrelay.domain.principal import Principal, Scope
from hostrelay.domain.tags import check_tags
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

    def list(self, principal: Principal, tags: Mapping[str, str] | None = None) -> list[Host]:
        """Hosts the caller may see (a service token: its own), carrying every tag of `tags`."""
        visible = self._visible_hosts(principal)
        found = self._hosts.all(tags=check_tags(tags or {}))
        return sorted(
            (host for host in found if visible is None or host.name in visible),
            key=lambda host: host.name,
        )

    def get(self, name: str, principal: Principal) -> Host:
        visible = self._visible_hosts(principal)
        if visible is not None and name not in visible:
            raise NotFound(f"host {name} not found")  # the same answer as for an unknown host
        return self._hosts.get(name)

    @staticmethod
    def _visible_hosts(principal: Principal) -> set[str] | None:
        """Readers see every host (None); a service token the hosts it names."""
        if principal.has(Scope.READER):
            return None
        if Scope.SERVICE not in principal.scopes:
            raise Forbidden(f"this token lacks the {Scope.READER.value} scope")
        readable = principal.readable_hosts()
        return None if readable is None else set(readable)

    def set_tags(self, name: str, patch: Mapping[str, str | None], principal: Principal) -> Host:
        """Apply a merge patch to a host's tags (a value sets, None removes), audited with
        the tags before and after. Conditional on the tags read: a concurrent change is read
        again and the patch re-applied to it. An unchanged result writes nothing."""
        principal.require(Scope.ADMIN)
        for _ in range(5):
            host = self._hosts.get(name)
            after = {key: value for key, value in host.tags.items() if key not in patch}
            after.update({key: value for key, value in patch.items() if value is not None})
            after = check_tags(after)
            if after == host.tags:
                return host
            if self._hosts.replace_tags(name, after, read_version=host.tags_version):
                self._audit.append(
                    principal.label,
                    "host.tags",
                    f"host:{name}",
                    {"before": host.tags, "after": after},
                )
                logger.info("host tags changed", extra={"host": name, "tags": len(after)})
                return self._hosts.get(name)
        raise Conflict(f"the tags of host {name} keep changing; try again")

    def select_hosts(
        self, principal: Principal, names: Iterable[str], tags: Mapping[str, str] | None
    ) -> builtins.list[str]:
        """The hosts a request targets: `names` plus every host carrying all of `tags` (none
        when `tags` is empty), sorted, each once.

        Named hosts must be enrolled (not revoked) and usable by the caller, else 422 / 403;
        a tag selector matches only hosts the caller may use (a service token: its own).
        """
        names = list(names)
        for name in names:
            if not principal.may_target_host(name):
                raise Forbidden(f"this token may not target host {name}")
        found = self._hosts.find_many(names) if names else {}
        selected: set[str] = set()
        for name in names:
            host = found.get(name)
            if host is None or host.state is HostState.REVOKED:
                raise InvalidRequest(
                    f"host {name!r} is not enrolled or is revoked",
                    details=[{"field": "targets.hosts", "host": name}],
                )
            selected.add(name)
        if tags:
            selected.update(
                name
                for name in self._hosts.names_with_tags(check_tags(tags))
                if principal.may_target_host(name)
            )
        return sorted(selected)

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
