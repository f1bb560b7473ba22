"""Google Workspace, GCP and Azure connectors: their settings and the inventory kinds they fill."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from hostrelay.domain.connector_settings import CredentialArn, _Settings
from hostrelay_contract.text_patterns import TextPattern

# Google's rules: a customer is "my_customer" or its id (C0...); a project id is 6-30
# lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen.
WORKSPACE_CUSTOMER_PATTERN = r"^(?:my_customer|C[0-9A-Za-z]{4,20})$"
EMAIL_PATTERN = r"^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+$"
GCP_PROJECT_PATTERN = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"
GUID_PATTERN = r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"
WORKSPACE_CUSTOMER = TextPattern(
    WORKSPACE_CUSTOMER_PATTERN, "my_customer or a customer id: 'C' and 4-20 letters or digits"
)
EMAIL = TextPattern(EMAIL_PATTERN, "an e-mail address such as admin@example.com")
GCP_PROJECT = TextPattern(
    GCP_PROJECT_PATTERN,
    "a project id: 6-30 lower-case letters, digits or '-', starting with a letter, not ending "
    "with '-'",
)
GUID = TextPattern(GUID_PATTERN, "a GUID: 8-4-4-4-12 hexadecimal digits")

# Inventory kinds and the relations between them.
WORKSPACE_USER = "workspace.user"
WORKSPACE_GROUP = "workspace.group"
WORKSPACE_ORG_UNIT = "workspace.org_unit"
ORG_UNIT = "org_unit"  # user → its org unit
PARENT = "parent"  # org unit → its parent org unit
CHILDREN = "children"  # org unit → its child org units
NETWORKS = "networks"  # a GCP instance → the VPC networks of its interfaces


class GcpResourceType(StrEnum):
    COMPUTE_INSTANCE = "compute.instance"
    COMPUTE_NETWORK = "compute.network"
    STORAGE_BUCKET = "storage.bucket"

    @property
    def kind(self) -> str:
        """The inventory kind, e.g. `gcp.compute.instance`."""
        return f"gcp.{self.value}"


class AzureResourceType(StrEnum):
    VIRTUAL_MACHINE = "compute.virtual_machine"
    VIRTUAL_NETWORK = "network.virtual_network"
    STORAGE_ACCOUNT = "storage.account"

    @property
    def kind(self) -> str:
        """The inventory kind, e.g. `azure.compute.virtual_machine`."""
        return f"azure.{self.value}"


class WorkspaceConnectorSettings(_Settings):
    """A Google Workspace read by a service account with domain-wide delegation."""

    customer: Annotated[str, WORKSPACE_CUSTOMER] = Field(
        default="my_customer", description="`my_customer` (the admin's own) or a customer id"
    )
    admin_email: Annotated[str, StringConstraints(max_length=254), EMAIL] = Field(
        description="The admin the service account acts as (domain-wide delegation subject)"
    )
    credential_arn: CredentialArn = Field(
        description="Secrets Manager secret (hostrelay/...) or SSM SecureString "
        "(/hostrelay/<stage>/connectors/...) holding the service account's JSON key"
    )
    page_size: int = Field(default=500, ge=1, le=500)


class _Scoped(_Settings):
    @model_validator(mode="after")
    def _no_duplicates(self) -> _Scoped:
        scopes = self.scopes()
        if len(set(scopes)) != len(scopes):
            raise ValueError("projects or subscriptions must not repeat")
        return self

    def scopes(self) -> list[str]:
        raise NotImplementedError


class GcpConnectorSettings(_Scoped):
    """GCP projects read by a service account (Compute and Storage read-only scopes)."""

    projects: list[Annotated[str, GCP_PROJECT]] = Field(min_length=1, max_length=50)
    credential_arn: CredentialArn = Field(
        description="Secret or SecureString holding the service account's JSON key"
    )
    resource_types: list[GcpResourceType] | None = Field(
        default=None, min_length=1, description="Only these types; all of them when unset"
    )
    page_size: int = Field(default=500, ge=1, le=500)

    def scopes(self) -> list[str]:
        return list(self.projects)

    def types(self) -> list[GcpResourceType]:
        return list(self.resource_types or GcpResourceType)


class AzureConnectorSettings(_Scoped):
    """Azure subscriptions read by an app registration (client credentials, Reader role)."""

    tenant_id: Annotated[str, GUID]
    client_id: Annotated[str, GUID]
    subscriptions: list[Annotated[str, GUID]] = Field(min_length=1, max_length=50)
    credential_arn: CredentialArn = Field(
        description="Secret or SecureString holding the app registration's client secret"
    )
    resource_types: list[AzureResourceType] | None = Field(
        default=None, min_length=1, description="Only these types; all of them when unset"
    )

    def scopes(self) -> list[str]:
        return [subscription.lower() for subscription in self.subscriptions]

    def types(self) -> list[AzureResourceType]:
        return list(self.resource_types or AzureResourceType)
