"""Who is calling: the identity and scopes a bearer token grants."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from hostrelay.domain.errors import Forbidden

# What a service token names, on purpose, to allow every job type or every host.
ANY = "*"


class Scope(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    READER = "reader"
    SERVICE = "service"


# What each scope may do; admin implies operator implies reader.
_IMPLIES: dict[Scope, set[Scope]] = {
    Scope.ADMIN: {Scope.ADMIN, Scope.OPERATOR, Scope.READER},
    Scope.OPERATOR: {Scope.OPERATOR, Scope.READER},
    Scope.READER: {Scope.READER},
    Scope.SERVICE: {Scope.SERVICE},
}


class Principal(BaseModel):
    model_config = ConfigDict(defer_build=True)

    token_id: str
    name: str
    scopes: list[Scope]
    job_types: list[str] | None = None
    hosts: list[str] | None = None

    @property
    def label(self) -> str:
        """How jobs and the audit trail name this caller: `token:<id>/<name>`."""
        return f"token:{self.token_id}/{self.name}"

    def has(self, scope: Scope) -> bool:
        return any(scope in _IMPLIES[granted] for granted in self.scopes)

    def require(self, scope: Scope) -> None:
        if not self.has(scope):
            raise Forbidden(f"this token lacks the {scope.value} scope")

    def require_job_create(self, job_type: str, host: str) -> None:
        """Operators create any job; service tokens only their listed types and hosts."""
        if self.has(Scope.OPERATOR):
            return
        if Scope.SERVICE not in self.scopes:
            raise Forbidden("creating jobs needs the operator or service scope")
        if not grants(self.job_types, job_type):
            raise Forbidden(f"this service token may not create {job_type} jobs")
        if not self.may_target_host(host):
            raise Forbidden(f"this service token may not target host {host}")

    def may_target_host(self, host: str) -> bool:
        """Operators send jobs to any host; service tokens only to the hosts they name."""
        if self.has(Scope.OPERATOR):
            return True
        return Scope.SERVICE in self.scopes and grants(self.hosts, host)

    def require_run_create(self, job_type: str) -> None:
        """Operators start any run; service tokens only runs of their listed types."""
        if self.has(Scope.OPERATOR):
            return
        if Scope.SERVICE not in self.scopes:
            raise Forbidden("starting runs needs the operator or service scope")
        if not grants(self.job_types, job_type):
            raise Forbidden(f"this service token may not create {job_type} jobs")

    def targetable_hosts(self) -> list[str] | None:
        """The hosts this caller may send jobs to; None when it may use every host."""
        if self.has(Scope.OPERATOR) or (self.hosts is not None and ANY in self.hosts):
            return None
        return sorted(set(self.hosts or []))

    def may_read_job(self, job_type: str, host: str) -> bool:
        if self.has(Scope.READER):
            return True
        return (
            Scope.SERVICE in self.scopes
            and grants(self.job_types, job_type)
            and grants(self.hosts, host)
        )

    def readable_hosts(self) -> list[str] | None:
        """The hosts whose jobs this caller may read; None when it may read every host's."""
        return self._readable(self.hosts)

    def readable_job_types(self) -> list[str] | None:
        """The job types this caller may read; None when it may read every type."""
        return self._readable(self.job_types)

    def _readable(self, allowed: list[str] | None) -> list[str] | None:
        if self.has(Scope.READER):
            return None
        if Scope.SERVICE not in self.scopes:
            return []
        if allowed is not None and ANY in allowed:
            return None
        return sorted(set(allowed or []))


def grants(allowed: list[str] | None, value: str) -> bool:
    """A service token's list: unset grants nothing (closed by default), `*` grants all."""
    return allowed is not None and (ANY in allowed or value in allowed)
