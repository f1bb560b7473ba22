"""Every job type: where it runs, its default timeout, and its params and result models.

Adding a job type: its params and result models in `jobs/`, one line below, and (for a
host type) one relay handler file `hostrelay_relay/handlers/<name with '_' for '.'>.py`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from hostrelay_contract.base import JobResult, StrictParams


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

    @property
    def params(self) -> type[StrictParams]:
        model: type[StrictParams] = getattr(self._module(), self.params_name)
        return model

    @property
    def result(self) -> type[JobResult]:
        model: type[JobResult] = getattr(self._module(), self.result_name)
        return model

    def _module(self) -> Any:
        return importlib.import_module(f"hostrelay_contract.jobs.{self.module}")


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
        ),
        JobTypeSpec(
            "macct.repair", "macct", "MacctRepairParams", "MacctRepairResult",
            "Gives restored computers their image's captured secrets",
        ),
        JobTypeSpec(
            "exec", "exec", "ExecParams", "ExecResult",
            "Runs an allow-listed command in namespaces and a cgroup",
        ),
        JobTypeSpec(
            "ldap.sync", "ldap", "LdapSyncParams", "LdapSyncResult",
            "Mirrors a directory into the connector's inventory", default_timeout_s=1800,
        ),
        JobTypeSpec(
            "ldap.group_members", "ldap", "LdapGroupMembersParams", "LdapGroupMembersResult",
            "Adds and removes members of one directory group",
        ),
        JobTypeSpec(
            "discovery.aws", "cloud", "DiscoveryAwsParams", "DiscoveryAwsResult",
            "Reads an AWS account's resources into the inventory",
            runs_in="cloud", default_timeout_s=900,
        ),
        JobTypeSpec(
            "okta.sync", "cloud", "SourceSyncParams", "SourceSyncResult",
            "Reads an Okta org's users and groups into the inventory",
            runs_in="cloud", default_timeout_s=900,
        ),
        JobTypeSpec(
            "okta.group_members", "cloud", "OktaGroupMembersParams", "OktaGroupMembersResult",
            "Adds and removes members of one Okta-owned group", runs_in="cloud",
        ),
        JobTypeSpec(
            "workspace.sync", "cloud", "SourceSyncParams", "SourceSyncResult",
            "Reads a Google Workspace's users, groups and org units into the inventory",
            runs_in="cloud", default_timeout_s=900,
        ),
        JobTypeSpec(
            "discovery.gcp", "cloud", "SourceSyncParams", "SourceSyncResult",
            "Reads GCP projects' instances, VPC networks and buckets into the inventory",
            runs_in="cloud", default_timeout_s=900,
        ),
        JobTypeSpec(
            "discovery.azure", "cloud", "SourceSyncParams", "SourceSyncResult",
            "Reads Azure subscriptions' VMs, virtual networks and storage accounts",
            runs_in="cloud", default_timeout_s=900,
        ),
        # Self-hosted sources: read by the cloud when reachable, else by a relay beside them.
        JobTypeSpec(
            "authentik.sync", "cloud", "SourceSyncParams", "SourceSyncResult",
            "Reads an Authentik's users, nested groups and memberships into the inventory",
            runs_in="cloud", default_timeout_s=900,
        ),
        JobTypeSpec(
            "kubernetes.sync", "cloud", "SourceSyncParams", "SourceSyncResult",
            "Reads a Kubernetes cluster's namespaces, nodes, workloads and services",
            runs_in="cloud", default_timeout_s=900,
        ),
        JobTypeSpec(
            "authentik.group_members", "sources", "AuthentikGroupMembersParams",
            "AuthentikGroupMembersResult",
            "Adds and removes members of one Authentik group", runs_in="cloud",
        ),
        JobTypeSpec(
            "connector.sync", "sources", "ConnectorSyncParams", "ConnectorSyncResult",
            "Reads a self-hosted source (Authentik, Kubernetes) the relay reaches",
            default_timeout_s=1800,
        ),
        JobTypeSpec(
            "connector.group_members", "sources", "RelayGroupMembersParams",
            "AuthentikGroupMembersResult",
            "Adds and removes members of an Authentik group the relay reaches",
        ),
    )
}  # fmt: skip


def job_type(name: str) -> JobTypeSpec:
    """The spec of job type `name`; UnknownJobType when there is none."""
    spec = JOB_TYPES.get(name)
    if spec is None:
        raise UnknownJobType(f"unknown job type {name!r}")
    return spec


def host_job_types() -> list[str]:
    """The types a relay runs (each has a handler there)."""
    return [name for name, spec in JOB_TYPES.items() if spec.runs_in == "host"]


def validate_params(name: str, params: Any) -> StrictParams:
    """The params of a job of type `name`, judged as the relay judges them.

    Raises UnknownJobType, or pydantic.ValidationError naming each bad field.
    """
    return job_type(name).params.model_validate(params)
