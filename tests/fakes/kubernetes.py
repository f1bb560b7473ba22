"""A stateful fake Kubernetes API server: cluster-wide list of the resources the connector reads.

Lists follow the API conventions (api-concepts "Retrieving large results sets in chunks"):
`limit` and `continue` page one consistent snapshot taken at the first page's
resourceVersion; a continue token that is too old answers 410 Gone with a Status of reason
Expired, and the client must list again from the start. Objects carry metadata.uid,
resourceVersion and creationTimestamp; errors are `Status` objects (401 Unauthorized,
403 Forbidden, 429 TooManyRequests with Retry-After).

Watches (api-concepts "Efficient detection of changes"): the same list path with `watch=true`
and a `resourceVersion` streams one JSON watch event a line (`{"type": ADDED | MODIFIED |
DELETED, "object": ...}`) for every change after that version. A version older than the
event history the fake keeps (`compact()` drops it, as etcd compaction does) is answered with
an ERROR event carrying a 410 Expired Status, as the API server does. The real server holds a
watch open until `timeoutSeconds`; the fake ends it once it has sent the changes it has (the
tests change nothing while a watch is open), so no test waits on a timeout.

Every request and answer is checked against Kubernetes' OpenAPI document (the excerpt in
tests/fakes/specs/kubernetes.json, with its provenance): the path is one of its list
operations and the query uses only their declared parameters with their declared types; a list
answers its `<Kind>List` schema, each watch event the WatchEvent schema (its object the
resource's schema, or a Status for ERROR), and every error a Status. What breaks these rules is
recorded in `state.violations`, which the tests assert empty.
"""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.api_description import ApiDescription
from tests.fakes.server import FakeApiState, FakeServer, JsonHandler

TIMESTAMP = "2026-01-02T03:04:05Z"
# path -> (resource, list kind, apiVersion)
PATHS = {
    "/api/v1/namespaces": ("namespaces", "NamespaceList", "v1"),
    "/api/v1/nodes": ("nodes", "NodeList", "v1"),
    "/apis/apps/v1/deployments": ("deployments", "DeploymentList", "apps/v1"),
    "/apis/apps/v1/statefulsets": ("statefulsets", "StatefulSetList", "apps/v1"),
    "/apis/apps/v1/daemonsets": ("daemonsets", "DaemonSetList", "apps/v1"),
    "/api/v1/services": ("services", "ServiceList", "v1"),
}
KUBERNETES_API = ApiDescription.openapi("kubernetes.json")
STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
WATCH_EVENT = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent"
# The event types of apimachinery's watch.EventType (the document says only "string").
WATCH_EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR")


class StatusError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def body(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


@dataclass(kw_only=True)
class KubernetesState(FakeApiState):
    token: str
    objects: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {resource: {} for resource, _, _ in PATHS.values()}
    )
    denied: set[str] = field(default_factory=set)  # resources answered with 403
    expire_after_pages: int | None = None  # the next continue token served after n pages is stale
    expired: int = 0
    violations: list[str] = field(default_factory=list)  # against the OpenAPI document
    _version: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _snapshots: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # (resourceVersion, resource, event type, object) of every change, oldest first
    history: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    compacted_before: int = 0  # a watch from an older version is answered 410 Expired
    _last_version: int = 1

    def _next_version(self) -> str:
        self._last_version = next(self._version)
        return str(self._last_version)

    def put(
        self,
        resource: str,
        name: str,
        *,
        namespace: str | None = None,
        spec: dict[str, Any] | None = None,
        status: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
    ) -> str:
        """Create or replace an object; returns its uid."""
        key = f"{namespace}/{name}" if namespace else name
        old = self.objects[resource].get(key)
        uid = old["metadata"]["uid"] if old else str(uuid.uuid5(uuid.NAMESPACE_URL, resource + key))
        metadata: dict[str, Any] = {
            "name": name,
            "uid": uid,
            "resourceVersion": self._next_version(),
            "creationTimestamp": TIMESTAMP,
        }
        if namespace:
            metadata["namespace"] = namespace
        if labels:
            metadata["labels"] = labels
        self.objects[resource][key] = {
            "metadata": metadata,
            "spec": spec or {},
            "status": status or {},
        }
        self._record(resource, "MODIFIED" if old else "ADDED", self.objects[resource][key])
        return uid

    def delete(self, resource: str, key: str) -> None:
        gone = self.objects[resource].pop(key)
        version = self._next_version()
        self._record(
            resource,
            "DELETED",
            {**gone, "metadata": {**gone["metadata"], "resourceVersion": version}},
        )

    def _record(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        self.history.append((int(obj["metadata"]["resourceVersion"]), resource, kind, obj))

    def compact(self) -> None:
        """Forget the change history up to now, as etcd compaction does."""
        self.compacted_before = int(self._next_version())
        self.history.clear()

    def calls(self) -> int:
        return len(self.requests)

    def resource_version(self) -> str:
        """The cluster's current version: the last one any change (or compaction) took."""
        return str(self._last_version)

    def _cursor(self, token: str) -> tuple[str, str, int]:
        try:
            cursor = json.loads(base64.urlsafe_b64decode(token))
        except ValueError:
            raise StatusError(400, "BadRequest", "continue key is not valid") from None
        if cursor["snapshot"] not in self._snapshots:
            self.expired += 1
            raise StatusError(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter.",
            )
        return str(cursor["snapshot"]), str(cursor["rv"]), int(cursor["start"])

    def list_page(self, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        resource, list_kind, api_version = PATHS[path]
        if resource in self.denied:
            raise StatusError(
                403,
                "Forbidden",
                f'{resource} is forbidden: User "system:serviceaccount:hostrelay:reader" cannot '
                f'list resource "{resource}" at the cluster scope',
            )
        limit = int(query.get("limit", ["0"])[0])
        token = query.get("continue", [""])[0]
        if token:
            snapshot_id, version, start = self._cursor(token)
            snapshot = self._snapshots[snapshot_id]
        else:
            snapshot_id, version, start = uuid.uuid4().hex, self.resource_version(), 0
            snapshot = [self.objects[resource][key] for key in sorted(self.objects[resource])]
        end = start + limit if limit else len(snapshot)
        metadata: dict[str, Any] = {"resourceVersion": version}
        if end < len(snapshot):
            self._snapshots[snapshot_id] = snapshot
            if self.expire_after_pages is not None:
                if self.expire_after_pages <= 0:  # compacted away before the next page
                    self._snapshots.pop(snapshot_id)
                    self.expire_after_pages = None
                else:
                    self.expire_after_pages -= 1
            cursor = {"snapshot": snapshot_id, "rv": version, "start": end}
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()
            metadata["remainingItemCount"] = len(snapshot) - end
        return {
            "kind": list_kind,
            "apiVersion": api_version,
            "metadata": metadata,
            "items": snapshot[start:end],
        }


def watch_events(state: KubernetesState, path: str, query: dict[str, list[str]]) -> list[Any]:
    """The watch events of a resource after `resourceVersion`."""
    resource = PATHS[path][0]
    if resource in state.denied:
        raise StatusError(403, "Forbidden", f"{resource} is forbidden")
    assert query.get("watch") == ["true"] and "continue" not in query and "limit" not in query
    since = int(query.get("resourceVersion", ["0"])[0])
    if since < state.compacted_before:
        expired = StatusError(410, "Expired", f"too old resource version: {since}")
        return [{"type": "ERROR", "object": expired.body()}]
    return [
        {"type": kind, "object": obj}
        for version, changed, kind, obj in state.history
        if changed == resource and version > since
    ]


def item_definition(path: str) -> str:
    """The schema of one object of a list path's answer (its `<Kind>List`'s items)."""
    listing = KUBERNETES_API.method("GET", path)
    assert listing is not None and listing.response is not None
    list_schema = KUBERNETES_API.schemas[listing.response["$ref"].rsplit("/", 1)[-1]]
    return str(list_schema["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[-1])


def event_problems(path: str, event: dict[str, Any]) -> list[str]:
    """A watch event against WatchEvent, its object against the resource's schema (ERROR: a
    Status); the document types the object as a RawExtension, i.e. any object."""
    kind = event.get("type")
    problems = KUBERNETES_API.definition_problems("watch event", WATCH_EVENT, {"type": kind})
    if kind not in WATCH_EVENT_TYPES:
        problems.append(f"watch event: type {kind!r} is not one of {WATCH_EVENT_TYPES}")
    inner = STATUS if kind == "ERROR" else item_definition(path)
    return problems + KUBERNETES_API.definition_problems(
        f"watch event {kind}.object", inner, event.get("object")
    )


def _handler_for(state: KubernetesState) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def _status(self, error: StatusError, headers: dict[str, str] | None = None) -> None:
            body = error.body()
            state.violations.extend(KUBERNETES_API.definition_problems("Status", STATUS, body))
            self.send_json(error.code, body, headers)

        def do_GET(self) -> None:
            path, query = self.path_and_query()
            try:
                with state.lock:
                    state.requests.append(("GET", path))
                    if self.headers.get("Authorization") != f"Bearer {state.token}":
                        raise StatusError(401, "Unauthorized", "Unauthorized")
                    if state.throttle_now():
                        error = StatusError(429, "TooManyRequests", "too many requests")
                        self._status(error, {"Retry-After": state.retry_after})
                        return
                    if path not in PATHS:
                        raise StatusError(
                            404, "NotFound", "the server could not find the requested resource"
                        )
                    state.violations.extend(KUBERNETES_API.request_problems("GET", path, query))
                    if query.get("watch") == ["true"]:
                        events = watch_events(state, path, query)
                        for event in events:
                            state.violations.extend(event_problems(path, event))
                        self.send_json_lines(events)
                        return
                    body = state.list_page(path, query)
                    state.violations.extend(KUBERNETES_API.response_problems("GET", path, body))
                self.send_json(200, body)
            except StatusError as error:
                self._status(error)

    return Handler


class KubernetesFake(FakeServer[KubernetesState]):
    """Started on a free port with a test CA; `state` is the cluster tests arrange."""

    def __init__(self, directory: Path, token: str) -> None:
        state = KubernetesState(token=token)
        super().__init__(state, _handler_for(state), directory)
