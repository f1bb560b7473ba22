"""What a connector of each kind holds in its settings (validated when it is created)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hostrelay.domain.sync_cursor import IncrementalSchedule
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
