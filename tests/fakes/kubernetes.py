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
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.tls import HttpsFake

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
LIST_PARAMS = {
    "limit",
    "continue",
    "resourceVersion",
    "resourceVersionMatch",
    "labelSelector",
    "fieldSelector",
    "timeoutSeconds",
    "watch",
    "allowWatchBookmarks",
}


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


@dataclass
class KubernetesState:
    token: str
    objects: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {resource: {} for resource, _, _ in PATHS.values()}
    )
    requests: list[tuple[str, str]] = field(default_factory=list)
    throttle_next: int = 0
    retry_after: str = "1"
    throttled: int = 0
    denied: set[str] = field(default_factory=set)  # resources answered with 403
    expire_after_pages: int | None = None  # the next continue token served after n pages is stale
    expired: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
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
        unknown = set(query) - LIST_PARAMS
        assert not unknown, f"list has no query parameters {unknown}"
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
    unknown = set(query) - LIST_PARAMS
    assert not unknown, f"watch has no query parameters {unknown}"
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


def _handler_for(state: KubernetesState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send_lines(self, events: list[Any]) -> None:
            data = b"".join(json.dumps(event).encode() + b"\n" for event in events)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            try:
                with state.lock:
                    state.requests.append(("GET", parts.path))
                    if self.headers.get("Authorization") != f"Bearer {state.token}":
                        raise StatusError(401, "Unauthorized", "Unauthorized")
                    if state.throttle_next > 0:
                        state.throttle_next -= 1
                        state.throttled += 1
                        error = StatusError(429, "TooManyRequests", "too many requests")
                        self._send(429, error.body(), {"Retry-After": state.retry_after})
                        return
                    if parts.path not in PATHS:
                        raise StatusError(
                            404, "NotFound", "the server could not find the requested resource"
                        )
                    query = parse_qs(parts.query)
                    if query.get("watch") == ["true"]:
                        events = watch_events(state, parts.path, query)
                    else:
                        body = state.list_page(parts.path, query)
                if query.get("watch") == ["true"]:
                    self._send_lines(events)
                    return
                self._send(200, body)
            except StatusError as error:
                self._send(error.code, error.body())

    return Handler


class KubernetesFake:
    """Started on a free port with a test CA; `state` is the cluster tests arrange."""

    def __init__(self, directory: Path, token: str) -> None:
        self.state = KubernetesState(token=token)
        self._https = HttpsFake(_handler_for(self.state), directory)
        self.base_url = self._https.base_url
        self.ca_file = self._https.ca_file

    def start(self) -> KubernetesFake:
        self._https.start()
        return self

    def stop(self) -> None:
        self._https.stop()
