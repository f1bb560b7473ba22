"""The checks that keep the Google, Azure and Kubernetes fakes true to the published API
descriptions."""

from __future__ import annotations

from tests.fakes.api_description import ApiDescription
from tests.fakes.kubernetes import KUBERNETES_API as KUBERNETES
from tests.fakes.kubernetes import STATUS, StatusError, event_problems

DIRECTORY = ApiDescription.google("admin.directory_v1")
COMPUTE = ApiDescription.google("compute.v1")
ARM = ApiDescription.openapi("azure_arm.json")
VMS = (
    "/subscriptions/11111111-2222-4333-8444-555555555555"
    "/providers/Microsoft.Compute/virtualMachines"
)


def test_a_request_the_discovery_document_allows_passes() -> None:
    query = {"customer": ["my_customer"], "maxResults": ["500"], "pageToken": ["x"]}
    assert DIRECTORY.request_problems("GET", "/admin/directory/v1/users", query) == []


def test_unknown_methods_parameters_and_out_of_range_values_are_reported() -> None:
    assert DIRECTORY.request_problems("GET", "/admin/directory/v1/people", {}) != []
    problems = DIRECTORY.request_problems(
        "GET", "/admin/directory/v1/users", {"limit": ["10"], "maxResults": ["501"]}
    )
    assert any("'limit'" in p for p in problems)
    assert any("maxResults=501" in p for p in problems)


def test_a_response_with_an_undeclared_property_or_a_wrong_type_is_reported() -> None:
    path = "/compute/v1/projects/corp-prod-4711/global/networks"
    good = {"kind": "compute#networkList", "items": [{"name": "default", "mtu": 1460}]}
    assert COMPUTE.response_problems("GET", path, good) == []
    invented = {"kind": "compute#networkList", "items": [{"name": "default", "vpcId": "v"}]}
    assert any("'vpcId'" in p for p in COMPUTE.response_problems("GET", path, invented))
    mistyped = {"items": [{"name": "default", "mtu": "1460"}]}
    assert any("mtu" in p for p in COMPUTE.response_problems("GET", path, mistyped))


def test_the_azure_excerpt_requires_its_api_version_and_checks_nested_schemas() -> None:
    assert ARM.request_problems("GET", VMS, {"api-version": ["2024-07-01"]}) == []
    assert ARM.request_problems("GET", VMS, {}) != []
    assert ARM.request_problems("GET", VMS, {"api-version": ["2019-03-01"]}) != []
    bad_os = {
        "value": [{"id": "x", "properties": {"storageProfile": {"osDisk": {"osType": "Mac"}}}}]
    }
    assert ARM.response_problems("GET", VMS, bad_os) != []
    tagged = {"value": [{"id": "x", "tags": {"env": "prod"}, "properties": {"vmId": "v"}}]}
    assert ARM.response_problems("GET", VMS, tagged) == []


def test_the_kubernetes_excerpt_checks_list_paging_and_watch_parameters() -> None:
    # The list operations the connector calls, with limit/continue and a watch's parameters
    paged = {"limit": ["500"], "continue": ["eyJ0b2tlbiI6MX0="]}
    assert KUBERNETES.request_problems("GET", "/api/v1/namespaces", paged) == []
    watch = {
        "watch": ["true"],
        "resourceVersion": ["1042"],
        "timeoutSeconds": ["1"],
        "allowWatchBookmarks": ["true"],
    }
    assert KUBERNETES.request_problems("GET", "/apis/apps/v1/deployments", watch) == []
    # An operation it does not have, a parameter it does not declare, a mistyped value
    assert KUBERNETES.request_problems("GET", "/apis/apps/v1/replicasets", {}) != []
    assert KUBERNETES.request_problems("GET", "/api/v1/nodes", {"page": ["2"]}) != []
    assert KUBERNETES.request_problems("GET", "/api/v1/nodes", {"watch": ["yes"]}) != []
    assert KUBERNETES.request_problems("GET", "/api/v1/nodes", {"limit": ["ten"]}) != []


def test_the_kubernetes_excerpt_checks_lists_watch_events_and_status() -> None:
    listing = {
        "kind": "NamespaceList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "1042", "continue": "x", "remainingItemCount": 3},
        "items": [{"metadata": {"name": "shop", "uid": "u1"}, "status": {"phase": "Active"}}],
    }
    assert KUBERNETES.response_problems("GET", "/api/v1/namespaces", listing) == []
    invented = {**listing, "metadata": {"nextPage": "2"}}
    assert any(
        "'nextPage'" in p
        for p in KUBERNETES.response_problems("GET", "/api/v1/namespaces", invented)
    )
    # A watch event: WatchEvent, its object the resource's schema, or a Status for ERROR
    modified = {
        "type": "MODIFIED",
        "object": {"metadata": {"name": "web"}, "spec": {"replicas": 2}},
    }
    assert event_problems("/apis/apps/v1/deployments", modified) == []
    assert event_problems("/apis/apps/v1/deployments", {**modified, "type": "CHANGED"}) != []
    mistyped = {"type": "ADDED", "object": {"spec": {"replicas": "2"}}}
    assert event_problems("/apis/apps/v1/deployments", mistyped) != []
    # 410 Gone (an expired continue token or resourceVersion) is a Status
    expired = StatusError(410, "Expired", "too old resource version: 1000").body()
    assert KUBERNETES.definition_problems("Status", STATUS, expired) == []
    error = {"type": "ERROR", "object": expired}
    assert event_problems("/api/v1/services", error) == []
    assert KUBERNETES.definition_problems("Status", STATUS, {**expired, "code": "410"}) != []
