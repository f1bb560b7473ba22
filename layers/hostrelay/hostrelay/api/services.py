"""The logic services the API routes use; wiring builds them once per container."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hostrelay.api.auth import AccessControl
from hostrelay.logic.audit import AuditTrail
from hostrelay.logic.tokens import TokenAdmin

if TYPE_CHECKING:
    from hostrelay.logic.connectors import ConnectorService
    from hostrelay.logic.enrollment import EnrollmentService
    from hostrelay.logic.hosts import HostService
    from hostrelay.logic.inventory import InventoryQueries
    from hostrelay.logic.job_output import JobOutputReader
    from hostrelay.logic.jobs import JobService
    from hostrelay.logic.macct import MacctService
    from hostrelay.logic.runs import RunService


@dataclass(frozen=True)
class ApiServices:
    access: AccessControl
    tokens: TokenAdmin
    audit: AuditTrail
    # Built by the first request that needs them: a container serving tokens, hosts or
    # audit never imports the job service, one serving jobs neither hosts nor output.
    jobs: Callable[[], JobService]
    hosts: Callable[[], HostService]
    output: Callable[[], JobOutputReader]
    macct: Callable[[], MacctService]
    max_body_bytes: int
    # Built by the first request that needs it: most containers never enroll.
    enrollment: Callable[[], EnrollmentService] | None = None
    # Where the deployment has connector and inventory tables; built on first use too.
    connectors: Callable[[], ConnectorService] | None = None
    inventory: Callable[[], InventoryQueries] | None = None
    # Where the deployment has a runs table; built on first use.
    runs: Callable[[], RunService] | None = None
