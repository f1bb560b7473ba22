"""Kubernetes: namespaces, nodes, workloads (deployments, statefulsets, daemonsets), services.

Each resource is listed cluster-wide in pages (`limit`/`continue`); the pages of one list are
one consistent snapshot at the list's resourceVersion. A continue token that expired (HTTP 410
Gone) restarts that list from the first page, as the API server asks clients to do.

Between full reads, the changes since a list's resourceVersion are one watch per resource
(`watch=true&resourceVersion=<saved>&timeoutSeconds=<n>`): ADDED/MODIFIED objects and
DELETED ones, up to the version the next run starts from. A version the server no longer
has (410 Gone, or an ERROR event with a 410 Status) raises VersionExpired: read everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hostrelay_contract.jobs.sources import KubernetesSource
from hostrelay_sources.entities import SourceEntity, compact
from hostrelay_sources.errors import Rejected
from hostrelay_sources.https import JsonClient
from hostrelay_sources.kinds import ENTITY_KINDS, KUBERNETES_KINDS
from hostrelay_sources.retry import RetryPolicy

RawObject = dict[str, Any]
MAX_RELISTS = 3
MAX_PAGES = 100_000
# How long a watch waits for more changes once it has sent those since the saved version.
WATCH_TIMEOUT_S = 1
CHANGE_TYPES = ("ADDED", "MODIFIED", "DELETED")


class VersionExpired(Exception):
    """The API server no longer has the changes since a saved resourceVersion."""

    api_calls = 0  # what finding that out took (readers sets it)


@dataclass(frozen=True)
class Resource:
    path: str
    kind: str
    namespaced: bool


_PATHS = {
    "namespaces": ("/api/v1/namespaces", False),
    "nodes": ("/api/v1/nodes", False),
    "deployments": ("/apis/apps/v1/deployments", True),
    "statefulsets": ("/apis/apps/v1/statefulsets", True),
    "daemonsets": ("/apis/apps/v1/daemonsets", True),
    "services": ("/api/v1/services", True),
}
RESOURCES: dict[str, Resource] = {
    name: Resource(path, KUBERNETES_KINDS[name], namespaced)
    for name, (path, namespaced) in _PATHS.items()
}
KINDS = ENTITY_KINDS["kubernetes"]


@dataclass
class KubernetesApi:
    client: JsonClient
    page_size: int = 500
    relists: int = 0
    resource_versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def connect(
        cls,
        base_url: str,
        token: str,
        *,
        page_size: int = 500,
        ca_file: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> KubernetesApi:
        client = JsonClient(
            base_url,
            {"Authorization": f"Bearer {token}"},
            ca_file=ca_file,
            retry=retry or RetryPolicy(),
        )
        return cls(client, page_size)

    @property
    def calls(self) -> int:
        return self.client.calls

    def list_all(self, name: str, should_stop: Callable[[], bool]) -> list[RawObject] | None:
        """Every object of a resource, one consistent snapshot; None when stopped midway."""
        path = RESOURCES[name].path
        items: list[RawObject] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            if should_stop():
                return None
            query: dict[str, Any] = {"limit": self.page_size}
            if token:
                query["continue"] = token
            try:
                body = self.client.request("GET", path, query=query).body
            except Rejected as exc:
                if exc.status != 410 or not token or self.relists >= MAX_RELISTS:
                    raise
                self.relists += 1  # the snapshot expired: list again from the start
                items, token = [], None
                continue
            if not isinstance(body, dict):
                raise Rejected(f"GET {path}: the answer is not a list", status=200)
            items += [item for item in body.get("items") or [] if isinstance(item, dict)]
            metadata = body.get("metadata") or {}
            token = metadata.get("continue") or None
            if not token:
                self.resource_versions[name] = str(metadata.get("resourceVersion") or "")
                return items
        raise Rejected(f"GET {path}: too many pages", status=200)

    def watch_changes(self, name: str, since: str) -> list[tuple[str, RawObject]]:
        """(event type, object) of every change to a resource after resourceVersion `since`;
        `resource_versions[name]` becomes the version the changes reach."""
        path = RESOURCES[name].path
        query = {
            "watch": "true",
            "resourceVersion": since,
            "timeoutSeconds": WATCH_TIMEOUT_S,
            "allowWatchBookmarks": "true",
        }
        try:
            events = self.client.events(path, query=query)
        except Rejected as exc:
            if exc.status == 410:
                raise VersionExpired(name) from None
            raise
        version, changes = since, []
        for event in events:
            kind = event.get("type") if isinstance(event, dict) else None
            raw = event.get("object") if isinstance(event, dict) else None
            if not isinstance(raw, dict):
                continue
            if kind == "ERROR":  # a Status: 410 Expired when `since` was compacted away
                if raw.get("code") == 410:
                    raise VersionExpired(name)
                raise Rejected(
                    f"watch {path}: {raw.get('reason')}", status=int(raw.get("code") or 0)
                )
            version = str(_meta(raw).get("resourceVersion") or version)
            if kind in CHANGE_TYPES:
                changes.append((str(kind), raw))
        self.resource_versions[name] = version
        return changes


def _meta(raw: RawObject) -> RawObject:
    meta = raw.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _containers_images(raw: RawObject) -> list[str]:
    template = ((raw.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [str(c.get("image")) for c in template.get("containers") or [] if c.get("image")]


def _common(raw: RawObject) -> dict[str, Any]:
    meta = _meta(raw)
    return {
        "namespace": meta.get("namespace"),
        "labels": meta.get("labels") or {},
        "created": meta.get("creationTimestamp"),
    }


def _namespace(raw: RawObject) -> dict[str, Any]:
    return {"phase": (raw.get("status") or {}).get("phase")}


def _node(raw: RawObject) -> dict[str, Any]:
    status, spec = raw.get("status") or {}, raw.get("spec") or {}
    labels = _meta(raw).get("labels") or {}
    ready = next(
        (c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"),
        None,
    )
    info = status.get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return {
        "roles": sorted(
            key.split("/", 1)[1]
            for key in labels
            if key.startswith("node-role.kubernetes.io/") and "/" in key
        ),
        "ready": ready == "True" if ready is not None else None,
        "unschedulable": bool(spec.get("unschedulable")),
        "kubelet_version": info.get("kubeletVersion"),
        "os_image": info.get("osImage"),
        "architecture": info.get("architecture"),
        "internal_ip": addresses.get("InternalIP"),
    }


def _replicated(raw: RawObject) -> dict[str, Any]:
    spec, status = raw.get("spec") or {}, raw.get("status") or {}
    return {
        "replicas": spec.get("replicas"),
        "ready_replicas": status.get("readyReplicas", 0),
        "images": _containers_images(raw),
    }


def _daemonset(raw: RawObject) -> dict[str, Any]:
    status = raw.get("status") or {}
    return {
        "desired": status.get("desiredNumberScheduled"),
        "ready": status.get("numberReady", 0),
        "images": _containers_images(raw),
    }


def _service(raw: RawObject) -> dict[str, Any]:
    spec = raw.get("spec") or {}
    return {
        "type": spec.get("type"),
        "cluster_ip": spec.get("clusterIP"),
        "ports": [f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []],
        "selector": spec.get("selector") or {},
    }


_ATTRIBUTES: dict[str, Callable[[RawObject], dict[str, Any]]] = {
    "namespaces": _namespace,
    "nodes": _node,
    "deployments": _replicated,
    "statefulsets": _replicated,
    "daemonsets": _daemonset,
    "services": _service,
}


def object_entity(name: str, raw: RawObject) -> SourceEntity | None:
    meta = _meta(raw)
    uid, object_name = meta.get("uid"), meta.get("name")
    if not uid or not object_name:
        return None
    resource = RESOURCES[name]
    shown = f"{meta.get('namespace')}/{object_name}" if resource.namespaced else str(object_name)
    return SourceEntity(
        id=str(uid),
        kind=resource.kind,
        name=shown,
        attributes=compact({**_common(raw), **_ATTRIBUTES[name](raw)}),
    )


def read_kubernetes(
    api: KubernetesApi, source: KubernetesSource, should_stop: Callable[[], bool]
) -> list[SourceEntity] | None:
    """Every object of the wanted resources; None when stopped midway."""
    entities: list[SourceEntity] = []
    for name in source.wanted():
        items = api.list_all(name, should_stop)
        if items is None:
            return None
        entities += [e for e in (object_entity(name, raw) for raw in items) if e is not None]
    return entities


@dataclass
class KubernetesChanges:
    """The objects changed and the uids deleted since the saved versions."""

    changed: list[SourceEntity]
    deleted: list[str]
    versions: dict[str, str]


def read_kubernetes_changes(
    api: KubernetesApi,
    source: KubernetesSource,
    versions: dict[str, str],
    should_stop: Callable[[], bool],
) -> KubernetesChanges | None:
    """What changed in the wanted resources since `versions`; None when stopped midway.
    Raises VersionExpired for a resource without a saved version or one the server dropped."""
    latest: dict[str, SourceEntity | None] = {}  # uid → its last state (None: deleted)
    for name in source.wanted():
        if should_stop():
            return None
        since = versions.get(name)
        if not since:
            raise VersionExpired(name)
        for kind, raw in api.watch_changes(name, since):
            uid = _meta(raw).get("uid")
            if not uid:
                continue
            latest[str(uid)] = None if kind == "DELETED" else object_entity(name, raw)
    return KubernetesChanges(
        changed=[entity for entity in latest.values() if entity is not None],
        deleted=[uid for uid, entity in latest.items() if entity is None],
        versions=dict(api.resource_versions),
    )
