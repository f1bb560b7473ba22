"""Host tags through the real ApiFunction handler: PATCH, filter, audit and token scoping."""

from __future__ import annotations

from typing import Any

import pytest

from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.domain.errors import Forbidden, InvalidRequest
from hostrelay.domain.principal import Principal, Scope
from hostrelay.settings import ApiSettings, load_settings
from hostrelay.wiring import build_api_services
from tests.integration.api.conftest import Api, Tokens

pytestmark = pytest.mark.integration


@pytest.fixture
def fleet(admin: Api) -> Api:
    """Given dc01 and dc02 (role dc, two sites) and web01 (role web), tagged by an admin."""
    hosts = HostRepository()
    for name in ("dc01", "dc02", "web01"):
        hosts.register(name)
    for name, tags in (
        ("dc01", {"role": "dc", "site": "north"}),
        ("dc02", {"role": "dc", "site": "south"}),
        ("web01", {"role": "web", "site": "north"}),
    ):
        assert admin.request("PATCH", f"/v1/hosts/{name}", json_body={"tags": tags}).status == 200
    return admin


def names(response: Any) -> list[str]:
    assert response.status == 200, response.body
    return [host["name"] for host in response.body["hosts"]]


def test_admin_sets_and_removes_tags_with_a_merge_patch_and_it_is_audited(fleet: Api) -> None:
    # When an admin sets site=east and removes role on dc01
    patched = fleet.request(
        "PATCH", "/v1/hosts/dc01", json_body={"tags": {"site": "east", "role": None}}
    )
    # Then the host carries exactly the merged tags, here and when read again
    assert patched.status == 200, patched.body
    assert patched.body["tags"] == {"site": "east"}
    assert fleet.get("/v1/hosts/dc01").body["tags"] == {"site": "east"}
    # And the audit trail names who changed what, with the tags before and after
    trail = fleet.get("/v1/audit", query={"action": "host.tags"}).body["events"]
    latest = trail[0]
    assert latest["target"] == "host:dc01"
    assert latest["actor"].endswith("/root")
    assert latest["details"] == {
        "before": {"role": "dc", "site": "north"},
        "after": {"site": "east"},
    }


def test_list_filters_by_every_tag_given(fleet: Api) -> None:
    assert names(fleet.get("/v1/hosts", query={"tag": "role:dc"})) == ["dc01", "dc02"]
    assert names(fleet.get("/v1/hosts", query={"tag": "site=north"})) == ["dc01", "web01"]
    # Repeated tag parameters (API Gateway joins them with commas) must all match
    both = fleet.get("/v1/hosts", query={"tag": "role:dc,site:north"})
    assert names(both) == ["dc01"]
    assert names(fleet.get("/v1/hosts", query={"tag": "role:mail"})) == []
    assert names(fleet.get("/v1/hosts")) == ["dc01", "dc02", "web01"]


@pytest.mark.parametrize(
    "tags",
    [
        {"Role": "dc"},  # upper-case key
        {"-role": "dc"},  # key starting with a dash
        {"ro le": "dc"},  # space
        {"k" * 64: "v"},  # key too long
        {"role": ""},  # empty value
        {"role": "d c"},  # space in value
        {"role": "v" * 129},  # value too long
        {"role": 7},  # not a string
        {f"k{index}": "v" for index in range(33)},  # too many in one patch
    ],
)
def test_bad_tags_are_refused_with_422_and_change_nothing(fleet: Api, tags: dict[str, Any]) -> None:
    before = fleet.get("/v1/hosts/dc01").body
    response = fleet.request("PATCH", "/v1/hosts/dc01", json_body={"tags": tags})
    assert response.status == 422, response.body
    assert response.body["error"]["details"]
    assert fleet.get("/v1/hosts/dc01").body == before


def test_more_than_sixteen_tags_on_a_host_are_refused(fleet: Api) -> None:
    # Given dc01 with 2 tags, When a patch would leave it with 17
    extra = {f"k{index:02}": "v" for index in range(15)}
    response = fleet.request("PATCH", "/v1/hosts/dc01", json_body={"tags": extra})
    # Then 422 names the limit, and the host keeps its 2 tags
    assert response.status == 422
    assert "16" in str(response.body["error"]["details"])
    assert fleet.get("/v1/hosts/dc01").body["tags"] == {"role": "dc", "site": "north"}
    # But 16 exactly is fine
    fifteen_more = dict(list(extra.items())[:14])
    assert fleet.request("PATCH", "/v1/hosts/dc01", json_body={"tags": fifteen_more}).status == 200
    assert len(fleet.get("/v1/hosts/dc01").body["tags"]) == 16


@pytest.mark.parametrize("selector", ["role", "Role:dc", "role:", "role:d c", ":dc"])
def test_bad_tag_filters_are_refused_with_422(fleet: Api, selector: str) -> None:
    response = fleet.get("/v1/hosts", query={"tag": selector})
    assert response.status == 422, response.body


def test_only_admins_change_tags_and_unknown_hosts_are_404(
    fleet: Api, api: Api, tokens: Tokens
) -> None:
    operator = Api(api.handler, token=tokens.create("operator"))
    body = {"tags": {"role": "x"}}
    assert operator.request("PATCH", "/v1/hosts/dc01", json_body=body).status == 403
    assert fleet.request("PATCH", "/v1/hosts/nope", json_body=body).status == 404
    assert fleet.request("PATCH", "/v1/hosts/dc01", json_body={}).status == 422
    assert fleet.get("/v1/hosts/dc01").body["tags"]["role"] == "dc"


def test_service_tokens_see_only_their_hosts(fleet: Api, api: Api, tokens: Tokens) -> None:
    # Given a service token for dc01 only
    service = Api(api.handler, token=tokens.create("service", job_types=["ping"], hosts=["dc01"]))
    # Then it lists only dc01, even when its tag filter matches other hosts
    assert names(service.get("/v1/hosts")) == ["dc01"]
    assert names(service.get("/v1/hosts", query={"tag": "role:dc"})) == ["dc01"]
    # And other hosts do not exist for it
    assert service.get("/v1/hosts/dc01").status == 200
    missing = service.get("/v1/hosts/dc02")
    assert missing.status == 404
    assert missing.body == fleet.get("/v1/hosts/nothere").body | {
        "error": missing.body["error"] | {"message": "host dc02 not found"}
    }


def test_select_hosts_joins_names_and_tag_matches_the_caller_may_use(fleet: Api) -> None:
    # Given the hosts service as the runs API would use it (the handler bound the tables)
    hosts = build_api_services(load_settings(ApiSettings)).hosts()
    operator = Principal(token_id="o", name="ops", scopes=[Scope.OPERATOR])
    service = Principal(
        token_id="s", name="svc", scopes=[Scope.SERVICE], job_types=["*"], hosts=["dc02", "web01"]
    )
    HostRepository().revoke("web01")
    # Then names plus (hosts with every tag), sorted, once each; revoked hosts are never matched
    assert hosts.select_hosts(operator, ["dc02"], {"site": "north"}) == ["dc01", "dc02"]
    assert hosts.select_hosts(operator, [], {"role": "dc", "site": "south"}) == ["dc02"]
    assert hosts.select_hosts(operator, ["dc01"], {}) == ["dc01"]
    # And a service token's tag selector matches only its own hosts
    assert hosts.select_hosts(service, [], {"role": "dc"}) == ["dc02"]
    assert HostRepository().names_with_tags({"role": "dc"}) == ["dc01", "dc02"]
    # And naming a host it may not use is 403, an unknown or revoked one 422
    with pytest.raises(Forbidden):
        hosts.select_hosts(service, ["dc01"], {})
    with pytest.raises(InvalidRequest):
        hosts.select_hosts(operator, ["nope"], {})
    with pytest.raises(InvalidRequest):
        hosts.select_hosts(operator, ["web01"], {})
