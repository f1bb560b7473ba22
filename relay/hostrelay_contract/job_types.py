"""Every job type: where it runs, its default timeout, and its params and result models.

Adding a job type: its params and result models in `jobs/`, one line below, and (for a
host type) one relay handler file `hostrelay_relay/handlers/<name with '_' for '.'>.py`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from hostrelay_contract import error_codes as codes
from hostrelay_contract.base import JobResult, StrictParams
from hostrelay_contract.error_codes import ErrorCode


class UnknownJobType(ValueError):
    """No job type of that name exists."""


@dataclass(frozen=True)
class JobTypeSpec:
    """A job type; its models are imported on first use (a relay meets a few types)."""

    name: str
    module: str
    params_name: str
    result_name: str
    summary: str
    runs_in: Literal["host", "cloud"] = "host"
    default_timeout_s: int = 300
    errors: tuple[ErrorCode, ...] = ()  # its own `error.code`s, besides every job's
    internal: bool = False  # made by the control plane only, never through POST /v1/jobs

    @property
    def params(self) -> type[StrictParams]:
        model: type[StrictParams] = getattr(self._module(), self.params_name)
        return model

    @property
    def result(self) -> type[JobResult]:
        model: type[JobResult] = getattr(self._module(), self.result_name)
        return model

    @property
    def common_errors(self) -> tuple[ErrorCode, ...]:
        """The codes any job where this one runs can end with."""
        where = codes.EVERY_HOST_JOB if self.runs_in == "host" else codes.EVERY_CLOUD_JOB
        return codes.EVERY_JOB + where

    def error_codes(self) -> frozenset[str]:
        """Every `error.code` a job of this type can end with."""
        return frozenset(error.code for error in self.common_errors + self.errors)

    def _module(self) -> Any:
        return importlib.import_module(f"hostrelay_contract.jobs.{self.module}")


_CLOUD_WRITE_BACK = codes.SOURCE + codes.CLOUD_SOURCE + codes.CLOUD_WRITE_BACK + codes.WRITE_BACK
# Connector syncs the control plane runs: each reads its whole source into the inventory,
# with the same params and result models, error codes and default timeout (15 min).
_CLOUD_SYNCS = {
    "okta.sync": "Reads an Okta org's users and groups into the inventory",
    "workspace.sync": "Reads a Google Workspace's users, groups and org units into the inventory",
    "discovery.gcp": "Reads GCP projects' instances, VPC networks and buckets into the inventory",
    "discovery.azure": "Reads Azure subscriptions' VMs, virtual networks and storage accounts",
    # Self-hosted sources: read by the cloud when reachable, else by a relay (connector.sync).
    "authentik.sync": "Reads an Authentik's users, nested groups and memberships",
    "kubernetes.sync": "Reads a Kubernetes cluster's namespaces, nodes, workloads and services",
}
_CLOUD_SYNC_ERRORS = codes.SOURCE + codes.CLOUD_SOURCE

# The types POST /v1/jobs, fleet runs, tokens and the CLI know.
JOB_TYPES: dict[str, JobTypeSpec] = {
    spec.name: spec
    for spec in (
        JobTypeSpec(
            "ping", "ping", "PingParams", "PingResult",
            "Proves the whole path works; echoes a message", default_timeout_s=60,
        ),
        JobTypeSpec(
            "macct.capture", "macct", "MacctCaptureParams", "MacctCaptureResult",
            "Keeps an image's machine-account secrets on this DC", default_timeout_s=60,
            errors=codes.MACCT + codes.MACCT_CAPTURE,
        ),
        JobTypeSpec(
            "macct.repair", "macct", "MacctRepairParams", "MacctRepairResult",
            "Gives restored computers their image's captured secrets",
            errors=codes.MACCT + codes.MACCT_REPAIR,
        ),
        JobTypeSpec(
            "exec", "exec", "ExecParams", "ExecResult",
            "Runs an allow-listed command in namespaces and a cgroup", errors=codes.EXEC,
        ),
        JobTypeSpec(
            "ldap.sync", "ldap", "LdapSyncParams", "LdapSyncResult",
            "Mirrors a directory into the connector's inventory", default_timeout_s=1800,
            errors=codes.LDAP + codes.LDAP_SYNC,
        ),
        JobTypeSpec(
            "ldap.group_members", "ldap", "LdapGroupMembersParams", "LdapGroupMembersResult",
            "Adds and removes members of one directory group",
            errors=codes.LDAP + codes.LDAP_GROUP_MEMBERS,
        ),
        JobTypeSpec(
            "discovery.aws", "cloud", "DiscoveryAwsParams", "DiscoveryAwsResult",
            "Reads an AWS account's resources into the inventory",
            runs_in="cloud", default_timeout_s=900,
            errors=codes.CLOUD_SOURCE + codes.DISCOVERY_AWS,
        ),
        *(
            JobTypeSpec(
                name, "cloud", "SourceSyncParams", "SourceSyncResult", summary,
                runs_in="cloud", default_timeout_s=900, errors=_CLOUD_SYNC_ERRORS,
            )
            for name, summary in _CLOUD_SYNCS.items()
        ),
        JobTypeSpec(
            "okta.group_members", "cloud", "OktaGroupMembersParams", "OktaGroupMembersResult",
            "Adds and removes members of one Okta-owned group", runs_in="cloud",
            errors=_CLOUD_WRITE_BACK + codes.OKTA_WRITE_BACK,
        ),
        JobTypeSpec(
            "authentik.group_members", "sources", "AuthentikGroupMembersParams",
            "AuthentikGroupMembersResult",
            "Adds and removes members of one Authentik group", runs_in="cloud",
            errors=_CLOUD_WRITE_BACK,
        ),
        JobTypeSpec(
            "connector.sync", "sources", "ConnectorSyncParams", "ConnectorSyncResult",
            "Reads a self-hosted source (Authentik, Kubernetes) the relay reaches",
            default_timeout_s=1800, errors=codes.SOURCE + codes.CONNECTOR_SYNC,
        ),
        JobTypeSpec(
            "connector.group_members", "sources", "RelayGroupMembersParams",
            "AuthentikGroupMembersResult",
            "Adds and removes members of an Authentik group the relay reaches",
            errors=codes.SOURCE + codes.WRITE_BACK,
        ),
    )
}  # fmt: skip
# Types only the control plane makes; POST /v1/jobs refuses them as unknown.
INTERNAL_JOB_TYPES: dict[str, JobTypeSpec] = {
    spec.name: spec
    for spec in (
        JobTypeSpec(
            "cert.install", "cert", "CertInstallParams", "CertInstallResult",
            "Installs the relay's renewed client certificate (the answer to `cert_renewal`)",
            default_timeout_s=60, errors=codes.CERT_INSTALL, internal=True,
        ),
    )
}  # fmt: skip
CERT_INSTALL = INTERNAL_JOB_TYPES["cert.install"]


def job_type(name: str) -> JobTypeSpec:
    """The spec of job type `name`; UnknownJobType when there is none."""
    spec = JOB_TYPES.get(name)
    if spec is None:
        raise UnknownJobType(f"unknown job type {name!r}")
    return spec


def host_job_types() -> list[str]:
    """The types a relay runs with a handler of handlers/ (cert.install is built in)."""
    return [name for name, spec in JOB_TYPES.items() if spec.runs_in == "host"]


def validate_params(name: str, params: Any) -> StrictParams:
    """The params of a job of type `name`, judged as the relay judges them.

    Raises UnknownJobType, or pydantic.ValidationError naming each bad field.
    """
    return job_type(name).params.model_validate(params)
