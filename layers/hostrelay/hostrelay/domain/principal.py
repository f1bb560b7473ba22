"""Who is calling: the identity and scopes a bearer token grants."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from hostrelay.domain.errors import Forbidden


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
        if self.job_types is not None and job_type not in self.job_types:
            raise Forbidden(f"this service token may not create {job_type} jobs")
        if self.hosts is not None and host not in self.hosts:
            raise Forbidden(f"this service token may not target host {host}")

    def may_read_job(self, job_type: str, host: str) -> bool:
        if self.has(Scope.READER):
            return True
        return (self.job_types is None or job_type in self.job_types) and (
            self.hosts is None or host in self.hosts
        )
