"""The job types the API accepts and the shape of their params (the relay re-validates)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from hostrelay.domain.connectors import check_verify_tls
from hostrelay.domain.errors import InvalidRequest
from hostrelay_sources.settings import (
    AuthentikGroupMembersParams,
    ConnectorSyncParams,
    RelayGroupMembersParams,
)

CLOUD_HOST = "cloud"


class _Params(BaseModel):
    # Built when a job of the type is first created: a container sees a few types at most.
    model_config = ConfigDict(extra="forbid", defer_build=True)


class PingParams(_Params):
    message: str = Field(default="", max_length=1024)
    sleep_s: float = Field(default=0.0, ge=0, le=3600)


ComputerName = Annotated[str, StringConstraints(min_length=1, max_length=16)]
ImageName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


class MacctCaptureParams(_Params):
    image: ImageName
    computer: ComputerName


class MacctRepairParams(_Params):
    image: ImageName
    computers: list[ComputerName] = Field(min_length=1, max_length=500)
    school: str | None = Field(default=None, max_length=64)
    dry_run: bool = False


class ExecParams(_Params):
    model_config = ConfigDict(extra="forbid")
    argv: list[str] = Field(min_length=1, max_length=4096)
    env: dict[str, str] | None = None
    cwd: str | None = None
    stdin: str | None = Field(default=None, max_length=1024 * 1024)
    timeout_s: int | None = Field(default=None, ge=1, le=86400)
    limits: dict[str, Any] | None = None
    isolation: dict[str, Any] | None = None


class _LdapParams(_Params):
    # The relay checks the rest; TLS verification is refused here too, as the relay does.
    model_config = ConfigDict(extra="allow")
    verify_tls: bool | None = None

    @field_validator("verify_tls")
    @classmethod
    def _cannot_weaken_tls(cls, value: bool | None) -> bool | None:
        return check_verify_tls(value)


class LdapSyncParams(_LdapParams):
    connector: str


class LdapGroupMembersParams(_LdapParams):
    connector: str
    group_dn: str
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    dry_run: bool = False


class DiscoveryAwsParams(_Params):
    connector: str
    regions: list[str] = Field(default_factory=list, max_length=32)
    assume_role_arn: str | None = None


OktaId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,64}$")]


class SourceSyncParams(_Params):
    """A cloud-side connector's run: the handler reads everything else from the connector."""

    connector: str


class OktaGroupMembersParams(_Params):
    """Add/remove members of one Okta-owned group; a dry run (the default) changes nothing."""

    connector: str
    group_id: OktaId
    add: list[OktaId] = Field(default_factory=list, max_length=1000)
    remove: list[OktaId] = Field(default_factory=list, max_length=1000)
    dry_run: bool = True

    @model_validator(mode="after")
    def _something_to_do(self) -> OktaGroupMembersParams:
        if not self.add and not self.remove:
            raise ValueError("add or remove must name at least one user")
        if set(self.add) & set(self.remove):
            raise ValueError("a user cannot be both added and removed")
        return self


class JobTypeSpec(BaseModel):
    name: str
    params: type[BaseModel]
    runs_in: Literal["host", "cloud"] = "host"
    default_timeout_s: int = 300


JOB_TYPES: dict[str, JobTypeSpec] = {
    spec.name: spec
    for spec in (
        JobTypeSpec(name="ping", params=PingParams, default_timeout_s=60),
        JobTypeSpec(name="macct.capture", params=MacctCaptureParams, default_timeout_s=60),
        JobTypeSpec(name="macct.repair", params=MacctRepairParams, default_timeout_s=300),
        JobTypeSpec(name="exec", params=ExecParams, default_timeout_s=300),
        JobTypeSpec(name="ldap.sync", params=LdapSyncParams, default_timeout_s=1800),
        JobTypeSpec(name="ldap.group_members", params=LdapGroupMembersParams),
        JobTypeSpec(
            name="discovery.aws",
            params=DiscoveryAwsParams,
            runs_in="cloud",
            default_timeout_s=900,
        ),
        JobTypeSpec(
            name="okta.sync", params=SourceSyncParams, runs_in="cloud", default_timeout_s=900
        ),
        JobTypeSpec(name="okta.group_members", params=OktaGroupMembersParams, runs_in="cloud"),
        # Self-hosted sources: read by the cloud when reachable, else by a relay (connector.sync,
        # whose params model the relay validates with too).
        JobTypeSpec(
            name="authentik.sync", params=SourceSyncParams, runs_in="cloud", default_timeout_s=900
        ),
        JobTypeSpec(
            name="kubernetes.sync", params=SourceSyncParams, runs_in="cloud", default_timeout_s=900
        ),
        JobTypeSpec(
            name="authentik.group_members", params=AuthentikGroupMembersParams, runs_in="cloud"
        ),
        JobTypeSpec(name="connector.sync", params=ConnectorSyncParams, default_timeout_s=1800),
        JobTypeSpec(name="connector.group_members", params=RelayGroupMembersParams),
    )
}


def validate_params(job_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check the type is known and its params have the right shape; returns clean params."""
    spec = JOB_TYPES.get(job_type)
    if spec is None:
        raise InvalidRequest(
            f"unknown job type {job_type!r}",
            details=[{"field": "type", "allowed": sorted(JOB_TYPES)}],
        )
    try:
        model = spec.params.model_validate(params)
    except ValidationError as exc:
        raise InvalidRequest(
            f"invalid params for {job_type}",
            details=[
                {"field": ".".join(str(p) for p in ("params", *err["loc"])), "message": err["msg"]}
                for err in exc.errors()
            ],
        ) from None
    return model.model_dump(exclude_unset=True)
