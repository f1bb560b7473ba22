"""The checks that keep the Google, Azure, Kubernetes and Okta fakes true to the published API
descriptions."""

from __future__ import annotations

from tests.fakes.api_description import ApiDescription
from tests.fakes.kubernetes import KUBERNETES_API as KUBERNETES
from tests.fakes.kubernetes import STATUS, StatusError, event_problems
from tests.fakes.okta import OKTA_API, OktaState

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


def _okta_user() -> dict[str, object]:
    state = OktaState(token="t")
    state.add_user("00u1", "ada.lovelace@example.test")
    return state.users["00u1"]


def test_the_okta_excerpt_allows_the_requests_the_connector_sends() -> None:
    # listUsers/listGroups paged (limit, after) with a lastUpdated filter or search
    since = '"2025-01-02T03:04:05.000Z"'
    query = {"limit": ["200"], "after": ["00u1"], "filter": [f"lastUpdated gt {since}"]}
    assert OKTA_API.request_problems("GET", "/api/v1/users", query) == []
    assert (
        OKTA_API.request_problems("GET", "/api/v1/users", {"search": [f"lastUpdated gt {since}"]})
        == []
    )
    expression = f"lastUpdated gt {since} or lastMembershipUpdated gt {since}"
    assert OKTA_API.request_problems("GET", "/api/v1/groups", {"filter": [expression]}) == []
    assert OKTA_API.request_problems("GET", "/api/v1/groups/00g1/users", {"limit": ["1000"]}) == []
    assert OKTA_API.request_problems("PUT", "/api/v1/groups/00g1/users/00u1", {}) == []
    assert OKTA_API.request_problems("DELETE", "/api/v1/groups/00g1/users/00u1", {}) == []


def test_the_okta_excerpt_reports_unknown_operations_parameters_and_values() -> None:
    assert OKTA_API.request_problems("GET", "/api/v1/apps", {}) != []
    assert OKTA_API.request_problems("POST", "/api/v1/groups/00g1/users/00u1", {}) != []
    # listGroupUsers has no filter; limit is an integer
    assert OKTA_API.request_problems("GET", "/api/v1/groups/00g1/users", {"filter": ["x"]}) != []
    assert OKTA_API.request_problems("GET", "/api/v1/users", {"limit": ["all"]}) != []
    assert OKTA_API.request_problems("GET", "/api/v1/users", {"cursor": ["x"]}) != []


def test_the_okta_excerpt_catches_a_wrong_response_shape() -> None:
    user = _okta_user()
    # What the fake answers is a bare array of User objects (lastLogin null: never signed in)
    assert OKTA_API.response_problems("GET", "/api/v1/users", [user]) == []
    # Okta pages are bare arrays, not an object wrapping them
    wrapped = {"items": [user]}
    assert OKTA_API.response_problems("GET", "/api/v1/users", wrapped) != []
    # An invented property, a status Okta does not have, a mistyped profile attribute
    invented = {**user, "deleted": True}
    assert any(
        "'deleted'" in p for p in OKTA_API.response_problems("GET", "/api/v1/users", [invented])
    )
    assert (
        OKTA_API.response_problems("GET", "/api/v1/users", [{**user, "status": "DISABLED"}]) != []
    )
    profile = {**user["profile"], "firstName": 7}  # type: ignore[dict-item]
    assert OKTA_API.response_problems("GET", "/api/v1/users", [{**user, "profile": profile}]) != []
    # null only where Okta sends null: an id never is
    assert OKTA_API.response_problems("GET", "/api/v1/users", [{**user, "id": None}]) != []
    group = {"id": "00g1", "type": "OKTA_GROUP", "profile": {"name": "Eng"}, "objectClass": []}
    assert OKTA_API.response_problems("GET", "/api/v1/groups/00g1", group) == []
    assert OKTA_API.response_problems("GET", "/api/v1/groups/00g1", {**group, "type": "TEAM"}) != []
    assert OKTA_API.response_problems("GET", "/api/v1/groups/00g1/users", group) != []
