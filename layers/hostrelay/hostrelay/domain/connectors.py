"""Connectors: where inventory comes from (a directory via a relay, a cloud account, a SaaS)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from hostrelay.domain.jobs import Job, JobErrorInfo, JobState
from hostrelay_contract.jobs.ldap import LdapSyncSettings
from hostrelay_contract.jobs.sources import (
    AuthentikSource,
    CredentialFile,
    HttpsOrigin,
    KubernetesSource,
)
from hostrelay_contract.text_patterns import TextPattern

AWS_REGION_PATTERN = r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$"
AWS_REGION = TextPattern(AWS_REGION_PATTERN, "an AWS region such as eu-west-1")
ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
ROLE_ARN = TextPattern(
    ROLE_ARN_PATTERN, "an IAM role ARN: arn:aws:iam::<12-digit account>:role/<name>"
)
# Where a cloud-side connector's credential lives: a Secrets Manager secret named hostrelay/...
# or an SSM SecureString under /hostrelay/<stage>/connectors/. The discovery function may read
# only these (template.yaml), so nothing else (the signing key) is reachable through a connector.
CREDENTIAL_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:(?:secretsmanager:[a-z0-9-]+:\d{12}:secret:hostrelay/[A-Za-z0-9/_+=.@-]{1,480}"
    r"|ssm:[a-z0-9-]+:\d{12}:parameter/hostrelay/[A-Za-z0-9_-]{1,32}/connectors/"
    r"[A-Za-z0-9/_.-]{1,400})$"
)
CREDENTIAL_ARN = TextPattern(
    CREDENTIAL_ARN_PATTERN,
    "the ARN of a Secrets Manager secret named hostrelay/... or of an SSM parameter under "
    "/hostrelay/<stage>/connectors/",
)

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


class AwsResourceType(StrEnum):
    EC2_VPC = "ec2.vpc"
    EC2_SUBNET = "ec2.subnet"
    EC2_SECURITY_GROUP = "ec2.security_group"
    EC2_INSTANCE = "ec2.instance"
    S3_BUCKET = "s3.bucket"
    RDS_INSTANCE = "rds.instance"
    LAMBDA_FUNCTION = "lambda.function"

    @property
    def kind(self) -> str:
        """The inventory kind of entities of this type, e.g. `aws.ec2.instance`."""
        return f"aws.{self.value}"


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# What an `ldap.sync` job needs, minus the connector id and the password (the relay config
# holds that): the contract's model, so a connector can never hold settings its jobs break on.
LdapConnectorSettings = LdapSyncSettings


class AwsConnectorSettings(_Settings):
    """Which regions of which account to discover, and how to get there."""

    regions: list[Annotated[str, AWS_REGION]] = Field(min_length=1, max_length=32)
    assume_role_arn: Annotated[str, ROLE_ARN] | None = None
    resource_types: list[AwsResourceType] | None = Field(
        default=None, min_length=1, description="Only these types; all of them when unset"
    )

    @model_validator(mode="after")
    def _no_duplicates(self) -> AwsConnectorSettings:
        if len(set(self.regions)) != len(self.regions):
            raise ValueError("regions must not repeat")
        return self

    def types(self) -> list[AwsResourceType]:
        return list(self.resource_types or AwsResourceType)


CredentialArn = Annotated[str, CREDENTIAL_ARN]


class IncrementalSchedule(BaseModel):
    """When a source that can read its changes since the last run reads everything instead:
    only a full run sees what was deleted."""

    full_sync_every: int = Field(
        default=24,
        ge=1,
        le=10_000,
        description="Every Nth run reads everything (1: every run); the runs between read "
        "only what changed since the run before",
    )
    full_sync_max_age_h: int = Field(
        default=24,
        ge=1,
        le=24 * 31,
        description="A run reads everything when the last full run is older than this",
    )


class OktaConnectorSettings(_Settings, IncrementalSchedule):
    """An Okta org read with an API token that a secret holds (never the token itself)."""

    org_url: HttpsOrigin = Field(description="e.g. https://example.okta.com")
    credential_arn: CredentialArn = Field(
        description="Secrets Manager secret (hostrelay/...) or SSM SecureString "
        "(/hostrelay/<stage>/connectors/...) holding the API token"
    )
    page_size: int = Field(default=200, ge=1, le=200)
    write_back: bool = Field(
        default=False, description="Allow okta.group_members jobs to change Okta-owned groups"
    )

    @property
    def base_url(self) -> str:
        return self.org_url.rstrip("/")


class _SelfHostedCredential(BaseModel):
    """Where a self-hosted source's token is: a secret (the cloud reads the source) or a file
    on the relay host (mode 0600; the relay reads the source). Never the token itself."""

    model_config = ConfigDict(defer_build=True)

    credential_arn: CredentialArn | None = Field(
        default=None,
        description="Secrets Manager secret or SSM SecureString holding the token (target cloud)",
    )
    credential_file: CredentialFile | None = Field(
        default=None,
        description="File on the relay host holding the token, mode 0600 (target a host)",
    )

    @model_validator(mode="after")
    def _one_credential(self) -> _SelfHostedCredential:
        if (self.credential_arn is None) == (self.credential_file is None):
            raise ValueError(
                "set exactly one of credential_arn (target cloud) or credential_file (a relay)"
            )
        return self


class AuthentikConnectorSettings(AuthentikSource, _SelfHostedCredential):
    """An Authentik instance: users, groups (nested, several parents), memberships."""

    write_back: bool = Field(
        default=False, description="Allow authentik.group_members jobs to change its groups"
    )

    def source(self) -> AuthentikSource:
        return AuthentikSource(url=self.url, page_size=self.page_size)


class KubernetesConnectorSettings(KubernetesSource, _SelfHostedCredential, IncrementalSchedule):
    """A Kubernetes cluster: namespaces, nodes, workloads and services. Read from the cloud,
    the runs between full ones watch each resource from its last resourceVersion."""

    def source(self) -> KubernetesSource:
        return KubernetesSource(url=self.url, page_size=self.page_size, resources=self.resources)


SelfHostedSettings = AuthentikConnectorSettings | KubernetesConnectorSettings


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
