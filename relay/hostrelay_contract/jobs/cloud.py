"""Jobs the control plane runs itself (host `cloud`): cloud discovery and SaaS connectors."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from hostrelay_contract.base import JobResult, StrictParams
from hostrelay_contract.jobs.membership import check_membership_change
from hostrelay_contract.names import ConnectorId
from hostrelay_contract.text_patterns import TextPattern

OKTA_ID_PATTERN = r"^[A-Za-z0-9]{1,64}$"
OKTA_ID = TextPattern(OKTA_ID_PATTERN, "an Okta id: 1-64 letters or digits")
OktaId = Annotated[str, OKTA_ID]


class DiscoveryAwsParams(StrictParams):
    connector: ConnectorId
    regions: list[str] = Field(
        default_factory=list, max_length=32, description="Unset: the connector's regions"
    )
    assume_role_arn: str | None = None


class SourceSyncParams(StrictParams):
    """A cloud-side connector's run: the handler reads everything else from the connector."""

    connector: ConnectorId


class OktaGroupMembersParams(StrictParams):
    """Add/remove members of one Okta-owned group; a dry run (the default) changes nothing."""

    connector: ConnectorId
    group_id: OktaId
    add: list[OktaId] = Field(default_factory=list, max_length=1000)
    remove: list[OktaId] = Field(default_factory=list, max_length=1000)
    dry_run: bool = True

    @model_validator(mode="after")
    def _something_to_do(self) -> OktaGroupMembersParams:
        check_membership_change(self.add, self.remove)
        return self


class DiscoveryError(JobResult):
    resource_type: str
    region: str
    error: str


class DiscoveryAwsResult(JobResult):
    connector: str
    created: int
    updated: int
    unchanged: int
    deleted: int
    total: int
    by_kind: dict[str, int]
    regions: list[str]
    errors: list[DiscoveryError] = Field(description="What could not be read, per type/region")
    duration_s: float


class SourceSyncResult(JobResult):
    """`okta.sync`; a failed run's result has only `connector` and `api_calls`."""

    connector: str
    mode: Literal["full", "incremental"] = Field(
        default="full",
        description="full: everything read, what is gone deleted; incremental: only what "
        "changed since the last run",
    )
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    total: int = 0
    by_kind: dict[str, int] = Field(default_factory=dict)
    api_calls: int
    errors: list[str] = Field(default_factory=list)
    duration_s: float = 0.0


class OktaMemberError(JobResult):
    user_id: str
    error: str


class OktaGroupMembersResult(JobResult):
    """A dry run's diff against Okta now; an applied run adds what it changed."""

    group_id: str
    group: str | None
    dry_run: bool
    add: list[str]
    remove: list[str]
    unchanged: list[str]
    added: int | None = None
    removed: int | None = None
    errors: list[OktaMemberError] | None = None
