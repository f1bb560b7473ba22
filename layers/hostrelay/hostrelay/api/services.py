"""The services the API routes use, built once per container from validated settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hostrelay.api.auth import AccessControl, Authenticator
from hostrelay.api.job_output import JobOutputReader
from hostrelay.api.token_admin import TokenAdmin
from hostrelay.dal.audit_repo import AuditRepository
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.dal.output_store import OutputStore
from hostrelay.logic.jobs import JobService
from hostrelay.logic.macct import MacctService
from hostrelay.settings import ApiSettings
from hostrelay.wiring import (
    build_audit_repository,
    build_enrollment_provider,
    build_job_service,
    build_token_repository,
)

if TYPE_CHECKING:
    from hostrelay.logic.enrollment import EnrollmentService


@dataclass(frozen=True)
class ApiServices:
    access: AccessControl
    jobs: JobService
    hosts: HostRepository
    output: JobOutputReader
    tokens: TokenAdmin
    macct: MacctService
    max_body_bytes: int
    audit: AuditRepository
    # Built by the first request that needs it: most containers never enroll or revoke.
    enrollment: Callable[[], EnrollmentService] | None = None


def build_api_services(settings: ApiSettings) -> ApiServices:
    jobs = build_job_service(settings)  # binds the jobs, hosts and output tables too
    tokens = build_token_repository(settings)
    audit = build_audit_repository(settings)
    return ApiServices(
        access=AccessControl(Authenticator(tokens, settings.bootstrap_token_hash)),
        jobs=jobs,
        hosts=HostRepository(),
        output=JobOutputReader(jobs, OutputStore()),
        tokens=TokenAdmin(tokens, audit=audit),
        macct=MacctService(jobs, JobRepository()),
        max_body_bytes=settings.max_body_bytes,
        audit=audit,
        enrollment=build_enrollment_provider(settings),
    )
