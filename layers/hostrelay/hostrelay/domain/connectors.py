"""Connectors: where inventory comes from (a directory via a relay, a cloud account, a SaaS).

What each kind's settings hold is in domain/connector_settings.py: reading, scheduling and
listing connectors needs none of those models (nor the job models they come from).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hostrelay.domain.jobs import Job, JobErrorInfo, JobState

# Keys that would put a secret in DynamoDB: the relay holds passwords, connectors name them.
SECRET_KEY_MARKERS = (
    "password",
    "passwd",
    "secret",
    "private_key",
    "api_key",
    "bind_pw",
    "token",
)


class ConnectorKind(StrEnum):
    LDAP = "ldap"
    AWS = "aws"
    OKTA = "okta"
    WORKSPACE = "workspace"
    GCP = "gcp"
    AZURE = "azure"
    AUTHENTIK = "authentik"
    KUBERNETES = "kubernetes"


# Self-hosted sources: the cloud reads them when reachable (credential_arn, target `cloud`),
# else a relay beside them does (credential_file, target that host, job connector.sync).
SELF_HOSTED_KINDS = frozenset({ConnectorKind.AUTHENTIK, ConnectorKind.KUBERNETES})
RELAY_SYNC_JOB = "connector.sync"


class Connector(BaseModel):
    """A connector as users see it (GET /v1/connectors/{id})."""

    model_config = ConfigDict(defer_build=True)

    id: str
    name: str
    kind: ConnectorKind
    target: str = Field(description="Host that runs the sync, or `cloud`")
    settings: dict[str, Any]
    schedule: str | None = None
    enabled: bool = True
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_job_id: str | None = None
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int = 0

    @property
    def scheduled(self) -> bool:
        return self.enabled and self.schedule is not None


class ConnectorRun(BaseModel):
    """One job of a connector, summarised for its run history."""

    model_config = ConfigDict(defer_build=True)

    job_id: str
    state: JobState
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int]
    error: JobErrorInfo | None

    @classmethod
    def from_job(cls, job: Job) -> ConnectorRun:
        result = job.result or {}
        counts = {
            key: value
            for key, value in result.items()
            if isinstance(value, int) and not isinstance(value, bool)
        }
        return cls(
            job_id=job.id,
            state=job.state,
            created_by=job.created_by,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            counts=counts,
            error=job.error,
        )
