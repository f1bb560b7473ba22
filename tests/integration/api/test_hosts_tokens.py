"""Hosts and tokens through the real ApiFunction handler."""

from __future__ import annotations

import pytest

from hostrelay.dal.hosts_repo import HostRepository
from tests.integration.api.conftest import Api

pytestmark = pytest.mark.integration

HOST_FIELDS = {
    "name", "state", "roles", "last_seen", "connected_at", "relay_version", "cert_expires_at",
    "revoked_at", "tags",
}  # fmt: skip


def test_list_and_show_hosts(admin: Api) -> None:
    # Given two hosts, one of which has connected
    hosts = HostRepository()
    hosts.register("dc02", roles=["dc"])
    hosts.register("dc01")
    hosts.seen("dc01", relay_version="1.2.3", connected=True)
    # When they are listed
    listed = admin.get("/v1/hosts")
    # Then both come back by name, with presence and relay details
    assert listed.status == 200
    assert [h["name"] for h in listed.body["hosts"]] == ["dc01", "dc02"]
    assert set(listed.body["hosts"][0]) == HOST_FIELDS
    dc01 = admin.get("/v1/hosts/dc01").body
    assert dc01["state"] == "online"
    assert dc01["relay_version"] == "1.2.3"
    assert dc01["last_seen"] is not None
    assert admin.get("/v1/hosts/dc02").body["roles"] == ["dc"]


def test_unknown_or_invalid_host_name(admin: Api) -> None:
    assert admin.get("/v1/hosts/nope").status == 404
    assert admin.get("/v1/hosts/-bad-").status == 422
    assert admin.get("/v1/hosts/" + "a" * 64).status == 422


def test_revoking_a_host_stops_new_jobs(admin: Api) -> None:
    HostRepository().register("dc01")
    revoked = admin.delete("/v1/hosts/dc01")
    assert revoked.status == 200
    assert revoked.body["state"] == "revoked"
    assert revoked.body["revoked_at"] is not None
    response = admin.post("/v1/jobs", json_body={"type": "ping", "host": "dc01", "params": {}})
    assert response.status == 422
    assert admin.delete("/v1/hosts/dc09").status == 404


def test_created_token_works_once_shown_and_is_never_listed_with_its_secret(admin: Api) -> None:
    # When an admin creates a reader token that expires in an hour
    created = admin.post(
        "/v1/tokens", json_body={"name": "grafana", "scopes": ["reader"], "expires_in_s": 3600}
    )
    # Then the secret is returned once with the token's metadata
    assert created.status == 201
    body = created.body
    assert set(body) == {"id", "token", "name", "scopes", "expires_at"}
    assert body["token"].startswith("hr_")
    assert body["scopes"] == ["reader"] and body["expires_at"] is not None
    # And the new token authenticates
    reader = Api(admin.handler, token=body["token"])
    assert reader.get("/v1/hosts").status == 200
    # And listing tokens never shows secrets or hashes
    listed = admin.get("/v1/tokens").body["tokens"]
    text = str(listed)
    assert body["token"] not in text
    assert "token_hash" not in text and "hash" not in {k for t in listed for k in t}
    grafana = next(t for t in listed if t["id"] == body["id"])
    assert grafana["name"] == "grafana" and grafana["last_used_at"] is not None


def test_revoked_token_stops_working(admin: Api) -> None:
    created = admin.post("/v1/tokens", json_body={"name": "ci", "scopes": ["operator"]}).body
    revoked = admin.delete(f"/v1/tokens/{created['id']}")
    assert revoked.status == 200
    assert revoked.body["revoked_at"] is not None
    assert Api(admin.handler, token=created["token"]).get("/v1/jobs").status == 401
    assert admin.delete("/v1/tokens/no-such-token").status == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["root"]},
        {"name": "", "scopes": ["reader"]},
        {"name": "x", "scopes": ["reader"], "expires_in_s": 1},
        {"name": "x", "scopes": ["reader"], "secret": "mine"},
    ],
)
def test_invalid_token_requests_are_422(admin: Api, body: dict[str, object]) -> None:
    response = admin.post("/v1/tokens", json_body=body)
    assert response.status == 422
    assert response.error_code == "validation_error"


def test_restrictions_need_the_service_scope_and_known_types(admin: Api) -> None:
    operator_limited = {"name": "x", "scopes": ["operator"], "job_types": ["ping"]}
    assert admin.post("/v1/tokens", json_body=operator_limited).error_code == "invalid_request"
    unknown_type = {"name": "x", "scopes": ["service"], "job_types": ["teleport"]}
    assert admin.post("/v1/tokens", json_body=unknown_type).status == 422
    service = {"name": "linbo", "scopes": ["service"], "job_types": ["ping"], "hosts": ["dc01"]}
    assert admin.post("/v1/tokens", json_body=service).status == 201
