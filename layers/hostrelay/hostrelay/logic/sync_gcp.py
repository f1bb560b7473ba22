"""GCP connector: `discovery.gcp` reads Compute instances, VPC networks and Storage buckets
of each project.

Entity ids are Google's full resource names (`//compute.googleapis.com/projects/p/zones/z/
instances/name`), unique across projects and connectors. An instance relates to the networks
of its interfaces (`networks`). Every run is a full read of the types the connector asks for;
what a complete run no longer sees is deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from hostrelay.dal.google_apis import GcpProjects, RawObject
from hostrelay.domain.cloud_sources import NETWORKS, GcpConnectorSettings, GcpResourceType
from hostrelay.domain.connectors import ConnectorKind
from hostrelay.domain.inventory import EntityUpsert
from hostrelay.logic.source_sync import SourceSpec
from hostrelay_sources.entities import compact

COMPUTE_NAME_ROOT = "//compute.googleapis.com/"
STORAGE_NAME_ROOT = "//storage.googleapis.com/"


def _last(url: Any) -> str | None:
    """`zones/us-central1-a` or a selfLink → its last path segment."""
    return str(url).rstrip("/").rsplit("/", 1)[-1] if url else None


def compute_full_name(self_link: str) -> str:
    """A Compute selfLink (https://.../compute/v1/projects/...) as a full resource name."""
    path = urlsplit(self_link).path
    _, _, resource = path.partition("/projects/")
    return f"{COMPUTE_NAME_ROOT}projects/{resource}"


def instance_entity(project: str, raw: RawObject) -> EntityUpsert:
    zone = _last(raw.get("zone"))
    interfaces = raw.get("networkInterfaces") or []
    networks = [compute_full_name(str(i["network"])) for i in interfaces if i.get("network")]
    external = [
        str(access["natIP"])
        for interface in interfaces
        for access in interface.get("accessConfigs") or []
        if access.get("natIP")
    ]
    attributes = {
        "project": project,
        "zone": zone,
        "id": raw.get("id"),
        "machine_type": _last(raw.get("machineType")),
        "status": raw.get("status"),
        "internal_ips": [str(i["networkIP"]) for i in interfaces if i.get("networkIP")],
        "external_ips": external,
        "labels": raw.get("labels"),
        "created": raw.get("creationTimestamp"),
    }
    return EntityUpsert(
        id=f"{COMPUTE_NAME_ROOT}projects/{project}/zones/{zone}/instances/{raw['name']}",
        kind=GcpResourceType.COMPUTE_INSTANCE.kind,
        name=str(raw["name"]),
        attributes=compact(attributes),
        relations={NETWORKS: sorted(set(networks))} if networks else {},
    )


def network_entity(project: str, raw: RawObject) -> EntityUpsert:
    attributes = {
        "project": project,
        "id": raw.get("id"),
        "auto_create_subnetworks": raw.get("autoCreateSubnetworks"),
        "routing_mode": (raw.get("routingConfig") or {}).get("routingMode"),
        "mtu": raw.get("mtu"),
        "subnetworks": sorted(_last(s) or "" for s in raw.get("subnetworks") or []),
        "created": raw.get("creationTimestamp"),
    }
    return EntityUpsert(
        id=f"{COMPUTE_NAME_ROOT}projects/{project}/global/networks/{raw['name']}",
        kind=GcpResourceType.COMPUTE_NETWORK.kind,
        name=str(raw["name"]),
        attributes=compact(attributes),
        relations={},
    )


def bucket_entity(project: str, raw: RawObject) -> EntityUpsert:
    iam = raw.get("iamConfiguration") or {}
    attributes = {
        "project": project,
        "location": raw.get("location"),
        "location_type": raw.get("locationType"),
        "storage_class": raw.get("storageClass"),
        "versioning": (raw.get("versioning") or {}).get("enabled"),
        "uniform_bucket_level_access": (iam.get("uniformBucketLevelAccess") or {}).get("enabled"),
        "public_access_prevention": iam.get("publicAccessPrevention"),
        "labels": raw.get("labels"),
        "created": raw.get("timeCreated"),
    }
    return EntityUpsert(
        id=f"{STORAGE_NAME_ROOT}projects/_/buckets/{raw['name']}",
        kind=GcpResourceType.STORAGE_BUCKET.kind,
        name=str(raw["name"]),
        attributes=compact(attributes),
        relations={},
    )


def read_projects(
    client: GcpProjects, settings: GcpConnectorSettings, should_stop: Callable[[], bool]
) -> list[EntityUpsert] | None:
    """Every resource of the asked types in every project; None when canceled midway."""
    types = settings.types()
    entities: list[EntityUpsert] = []
    for project in settings.projects:
        if should_stop():
            return None
        if GcpResourceType.COMPUTE_NETWORK in types:
            entities += [
                network_entity(project, n) for n in client.networks(project) if "name" in n
            ]
        if GcpResourceType.COMPUTE_INSTANCE in types:
            entities += [
                instance_entity(project, instance)
                for _, instance in client.instances(project)
                if "name" in instance
            ]
        if GcpResourceType.STORAGE_BUCKET in types:
            entities += [bucket_entity(project, b) for b in client.buckets(project) if "name" in b]
    return entities


GCP_SOURCE: SourceSpec[GcpConnectorSettings, GcpProjects] = SourceSpec(
    kind=ConnectorKind.GCP,
    settings=GcpConnectorSettings,
    entity_kinds=frozenset(resource_type.kind for resource_type in GcpResourceType),
    read=read_projects,
    read_kinds=lambda settings: frozenset(t.kind for t in settings.types()),
)
