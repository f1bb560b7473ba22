"""Scoped API tokens end to end: what a service token may do, and what nobody sees again."""

from __future__ import annotations

import hashlib

import pytest

from hostrelay.dal.hosts_repo import HostRepository
from tests.integration.api.conftest import Api

pytestmark = pytest.mark.integration


def test_a_service_token_stays_within_its_job_types_and_hosts(
    admin: Api, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an admin-made service token for ping on dc01, shown once
    HostRepository().register("dc01")
    HostRepository().register("dc02")
    created = admin.post(
        "/v1/tokens",
        json_body={
            "name": "linbo",
            "scopes": ["service"],
            "job_types": ["ping"],
            "hosts": ["dc01"],
        },
    ).body
    service = Api(api.handler, token=created["token"], default_headers=api.default_headers)

    # Then it creates ping jobs on dc01, and nothing else
    ping = {"type": "ping", "host": "dc01", "params": {}}
    assert service.post("/v1/jobs", json_body=ping).status == 201
    exec_job = {"type": "exec", "host": "dc01", "params": {"argv": ["/bin/true"]}}
    assert service.post("/v1/jobs", json_body=exec_job).status == 403
    assert service.post("/v1/jobs", json_body={**ping, "host": "dc02"}).status == 403
    assert service.post("/v1/tokens", json_body={"name": "x", "scopes": ["admin"]}).status == 403
    assert service.post("/v1/enrollments", json_body={"host": "evil"}).status == 403
    assert service.get("/v1/audit").status == 403
    assert service.request("DELETE", "/v1/hosts/dc01").status == 403

    # And the secret is never shown again: not in listings, the audit trail or the logs
    listed = admin.get("/v1/tokens").body["tokens"]
    digest = hashlib.sha256(created["token"].encode()).hexdigest()
    audit = admin.get("/v1/audit").body
    logs = capsys.readouterr()
    for text in (created["token"], digest):
        assert text not in str(listed) and text not in str(audit)
        assert text not in logs.out + logs.err
    mine = next(t for t in listed if t["id"] == created["id"])
    assert mine["last_used_at"] is not None and mine["job_types"] == ["ping"]


def test_a_revoked_or_expired_token_is_refused(admin: Api, api: Api) -> None:
    created = admin.post("/v1/tokens", json_body={"name": "gone", "scopes": ["reader"]}).body
    reader = Api(api.handler, token=created["token"], default_headers=api.default_headers)
    assert reader.get("/v1/hosts").status == 200

    assert admin.delete(f"/v1/tokens/{created['id']}").status == 200

    refused = reader.get("/v1/hosts")
    assert refused.status == 401 and refused.error_code == "unauthorized"
