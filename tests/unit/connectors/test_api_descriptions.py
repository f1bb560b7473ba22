"""The checks that keep the Google and Azure fakes true to the published API descriptions."""

from __future__ import annotations

from tests.fakes.api_description import ApiDescription

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
