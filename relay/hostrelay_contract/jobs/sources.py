"""Self-hosted sources (Authentik, Kubernetes): validated settings of each source, the params
of `connector.sync` / `connector.group_members` (relay) and `authentik.group_members` (cloud),
and their results.

The control plane validates connectors and jobs with these same models; the relay runs them.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from hostrelay_contract.base import JobResult, StrictParams
from hostrelay_contract.jobs.membership import check_membership_change
from hostrelay_contract.names import ConnectorId
from hostrelay_contract.text_patterns import TextPattern

# An origin: https only, a host name, no credentials, no path beyond "/".
HTTPS_ORIGIN_PATTERN = r"^https://[A-Za-z0-9.-]{1,253}(?::\d{1,5})?/?$"
HTTPS_ORIGIN = TextPattern(
    HTTPS_ORIGIN_PATTERN, "https://host or https://host:port, nothing after it but '/'"
)
RESOURCE_VERSION_PATTERN = r"^[0-9A-Za-z._:-]{1,128}$"
RESOURCE_VERSION = TextPattern(
    RESOURCE_VERSION_PATTERN, "a resourceVersion: 1-128 letters, digits, '.', '_', ':' or '-'"
)
GROUP_UUID_PATTERN = (
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
GROUP_UUID = TextPattern(GROUP_UUID_PATTERN, "a UUID: 8-4-4-4-12 hexadecimal digits")
_FILE_PATTERN = re.compile(r"^/[A-Za-z0-9._@+/-]{1,1023}$")

KUBERNETES_RESOURCES = (
    "namespaces",
    "nodes",
    "deployments",
    "statefulsets",
    "daemonsets",
    "services",
)
KubernetesResource = Literal[
    "namespaces", "nodes", "deployments", "statefulsets", "daemonsets", "services"
]


def check_credential_file(value: str) -> str:
    """An absolute path without `..` parts, `//` or odd characters."""
    parts = value.split("/")[1:]
    if not _FILE_PATTERN.match(value) or any(part in ("", ".", "..") for part in parts):
        raise ValueError("credential_file must be an absolute path (no '..', no '//')")
    return value


HttpsOrigin = Annotated[str, HTTPS_ORIGIN]
CredentialFile = Annotated[str, AfterValidator(check_credential_file)]
# A Kubernetes resourceVersion: opaque to clients (etcd's revision, digits, in practice).
ResourceVersion = Annotated[str, RESOURCE_VERSION]
ResourceVersions = dict[KubernetesResource, ResourceVersion]


# Models are built on first use, not at import: a function's cold start pays only for those
# it uses.
_CONFIG = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class _Source(BaseModel):
    model_config = _CONFIG

    url: HttpsOrigin = Field(description="The source's origin, e.g. https://auth.example.org")

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")


class AuthentikSource(_Source):
    """An Authentik instance read with an API token (users, groups, memberships)."""

    kind: Literal["authentik"] = "authentik"
    page_size: int = Field(default=100, ge=1, le=1000)


class KubernetesSource(_Source):
    """A Kubernetes API server read with a service account token."""

    kind: Literal["kubernetes"] = "kubernetes"
    page_size: int = Field(default=500, ge=1, le=5000)
    resources: tuple[KubernetesResource, ...] | None = Field(
        default=None, min_length=1, description="Only these resources; all of them when unset"
    )

    def wanted(self) -> tuple[str, ...]:
        return tuple(self.resources or KUBERNETES_RESOURCES)


Source = Annotated[AuthentikSource | KubernetesSource, Field(discriminator="kind")]


class ConnectorSyncParams(StrictParams):
    """`connector.sync` on a relay: read one self-hosted source into the connector's inventory.

    The token stays on the host in `credential_file`; the relay's config lists the directory
    such files may be in and the origins a token may be sent to.
    """

    connector: ConnectorId
    source: Source
    credential_file: CredentialFile
    since: ResourceVersions | None = Field(
        default=None,
        description="Kubernetes: the resourceVersion each resource's last read reached (the "
        "connector's cursor, from the last run's result). The run then reads only the changes "
        "after them (one watch per resource, deletes included), or everything when the API "
        "server no longer has them (410 Gone) or the relay has no state of the last run. "
        "Unset: read everything.",
    )

    @model_validator(mode="after")
    def _since_is_kubernetes(self) -> ConnectorSyncParams:
        if self.since is not None and self.source.kind != "kubernetes":
            raise ValueError("since applies to kubernetes sources only")
        return self


UserPk = Annotated[int, Field(ge=1, le=2**53)]
GroupUuid = Annotated[
    str,
    StringConstraints(to_lower=True),
    GROUP_UUID,
]


class AuthentikGroupMembersParams(StrictParams):
    """Add/remove users (by pk) of one Authentik group; a dry run (the default) changes nothing."""

    connector: ConnectorId
    group: GroupUuid
    add: list[UserPk] = Field(default_factory=list, max_length=1000)
    remove: list[UserPk] = Field(default_factory=list, max_length=1000)
    dry_run: bool = True

    @model_validator(mode="after")
    def _something_to_do(self) -> AuthentikGroupMembersParams:
        check_membership_change(self.add, self.remove)
        return self


class RelayGroupMembersParams(AuthentikGroupMembersParams):
    """`connector.group_members` on a relay: write-back to an Authentik the relay reaches, with
    the token file and origin checked as for connector.sync."""

    source: AuthentikSource
    credential_file: CredentialFile


class ConnectorSyncResult(JobResult):
    """What `connector.sync` read and sent (only changes and deletes leave the relay)."""

    connector: str
    kind: str
    mode: Literal["full", "incremental"] = Field(
        description="full: every object read (what the source no longer has is deleted); "
        "incremental: only the changes since `since`"
    )
    created: int
    updated: int
    unchanged: int
    deleted: int
    total: int
    by_kind: dict[str, int]
    api_calls: int
    batches: int = Field(description="`inventory` events sent")
    errors: list[str]
    duration_s: float
    resource_versions: ResourceVersions | None = Field(
        default=None,
        description="Kubernetes: the resourceVersion each resource's read reached; the "
        "control plane keeps them as the connector's cursor, the next run's `since`",
    )


class MemberError(JobResult):
    user: int
    error: str


class AuthentikGroupMembersResult(JobResult):
    """The diff against the group (a dry run stops there), then what was applied."""

    group: str
    group_name: str | None
    dry_run: bool
    add: list[int]
    remove: list[int]
    unchanged: list[int]
    added: int | None = None
    removed: int | None = None
    errors: list[MemberError] | None = None
