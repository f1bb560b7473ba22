"""Scoped API tokens end to end: what a service token may do, and what nobody sees again."""

from __future__ import annotations

import hashlib

import pytest

from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.tables import TokenRecord
from tests.integration.api.conftest import Api, Tokens

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


@pytest.mark.parametrize(
    "limits",
    [
        {},
        {"job_types": ["ping"]},
        {"hosts": ["dc01"]},
        {"job_types": [], "hosts": []},
        {"job_types": ["*", "ping"], "hosts": ["dc01"]},
        {"job_types": ["ping"], "hosts": ["*", "dc01"]},
    ],
)
def test_a_service_token_must_name_its_job_types_and_hosts(
    admin: Api, limits: dict[str, list[str]]
) -> None:
    before = admin.get("/v1/tokens").body["tokens"]

    # When an admin asks for a service token that leaves its types or hosts open (or muddles `*`)
    refused = admin.post("/v1/tokens", json_body={"name": "open", "scopes": ["service"], **limits})

    # Then it is refused with the fields to fill in, and no token exists
    assert refused.status == 422 and refused.error_code == "invalid_request"
    assert {d["field"] for d in refused.body["error"]["details"]} <= {"job_types", "hosts"}
    assert admin.get("/v1/tokens").body["tokens"] == before


def test_a_service_token_opened_with_a_star_is_audited_as_such(admin: Api, api: Api) -> None:
    # Given dc01 and dc02, and an admin who types `*` for the hosts on purpose
    HostRepository().register("dc01")
    HostRepository().register("dc02")
    created = admin.post(
        "/v1/tokens",
        json_body={"name": "pinger", "scopes": ["service"], "job_types": ["ping"], "hosts": ["*"]},
    )
    assert created.status == 201
    service = Api(api.handler, token=created.body["token"], default_headers=api.default_headers)

    # Then it pings any host, but still creates no other type (exec least of all)
    ping = {"type": "ping", "host": "dc02", "params": {}}
    pinged = service.post("/v1/jobs", json_body=ping)
    assert pinged.status == 201
    exec_job = {"type": "exec", "host": "dc01", "params": {"argv": ["/bin/true"]}}
    assert service.post("/v1/jobs", json_body=exec_job).status == 403
    assert admin.post("/v1/jobs", json_body=exec_job).status == 201
    # And it lists its pings on any host, never the exec job
    listed = service.get("/v1/jobs").body["jobs"]
    assert pinged.body["id"] in {job["id"] for job in listed}
    assert {job["type"] for job in listed} == {"ping"}
    # And the audit trail says which limit was opened
    trail = admin.get("/v1/audit", query={"action": "token.create"}).body["events"]
    assert trail[0]["details"]["unrestricted"] == ["hosts"]


def test_a_service_token_stored_without_limits_creates_no_job(api: Api, tokens: Tokens) -> None:
    # Given a service token written before limits were required (no types, no hosts)
    HostRepository().register("dc01")
    legacy = Api(api.handler, token=tokens.create("service"), default_headers=api.default_headers)

    # Then it may not create any job, not even exec on dc01, and lists none
    exec_job = {"type": "exec", "host": "dc01", "params": {"argv": ["/bin/true"]}}
    assert legacy.post("/v1/jobs", json_body=exec_job).status == 403
    assert legacy.post("/v1/jobs", json_body={"type": "ping", "host": "dc01"}).status == 403
    assert legacy.get("/v1/jobs").body["jobs"] == []


def test_revoke_finds_the_token_by_its_id_without_scanning_the_table(
    admin: Api, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given many tokens
    made = [
        admin.post("/v1/tokens", json_body={"name": f"r{n}", "scopes": ["reader"]}).body
        for n in range(12)
    ]
    victim, bystander = made[5], made[6]

    # When one is revoked, with a scan of the tokens table made impossible
    def no_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("revoke scanned the tokens table")

    monkeypatch.setattr(TokenRecord, "scan", no_scan)
    revoked = admin.delete(f"/v1/tokens/{victim['id']}")

    # Then it alone is revoked, found through the by_token_id index
    assert revoked.status == 200 and revoked.body["name"] == "r5"
    assert revoked.body["revoked_at"] is not None
    as_victim = Api(api.handler, token=victim["token"], default_headers=api.default_headers)
    as_bystander = Api(api.handler, token=bystander["token"], default_headers=api.default_headers)
    assert as_victim.get("/v1/hosts").status == 401
    assert as_bystander.get("/v1/hosts").status == 200
    # And an unknown id is a 404 that changes nothing
    assert admin.delete("/v1/tokens/no-such-token").status == 404


def _all_pages(client: Api, limit: int, **query: str) -> list[list[str]]:
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        params = {"limit": str(limit), **query, **({"next_token": token} if token else {})}
        body = client.get("/v1/jobs", query=params).body
        pages.append([job["id"] for job in body["jobs"]])
        token = body.get("next_token")
        if not token:
            return pages


def test_a_service_token_lists_full_pages_of_its_own_jobs(admin: Api, api: Api) -> None:
    # Given many jobs it may not see (on dc03, or exec on dc01) and seven pings it may see
    for name in ("dc01", "dc02", "dc03"):
        HostRepository().register(name)
    ping = {"type": "ping", "params": {}}
    hidden = [admin.post("/v1/jobs", json_body={**ping, "host": "dc03"}) for _ in range(25)]
    exec_job = {"type": "exec", "host": "dc01", "params": {"argv": ["/bin/true"]}}
    hidden += [admin.post("/v1/jobs", json_body=exec_job) for _ in range(5)]
    assert all(response.status == 201 for response in hidden)
    visible = {
        admin.post("/v1/jobs", json_body={**ping, "host": host}).body["id"]
        for host in ("dc01", "dc02", "dc01", "dc02", "dc02", "dc01", "dc01")
    }
    created = admin.post(
        "/v1/tokens",
        json_body={
            "name": "lister",
            "scopes": ["service"],
            "job_types": ["ping"],
            "hosts": ["dc01", "dc02"],
        },
    ).body
    service = Api(api.handler, token=created["token"], default_headers=api.default_headers)

    # When it lists its jobs three at a time, Then every page is full until the last
    pages = _all_pages(service, 3)
    assert [len(page) for page in pages] == [3, 3, 1]
    assert {job for page in pages for job in page} == visible
    # And so with a state filter
    queued = _all_pages(service, 3, state="QUEUED")
    assert [len(page) for page in queued] == [3, 3, 1]
    assert {job for page in queued for job in page} == visible
    # And a host it may read holds only its jobs there; one it may not, none
    dc01 = _all_pages(service, 2, host="dc01")
    assert [len(page) for page in dc01] == [2, 2]
    assert service.get("/v1/jobs", query={"host": "dc03"}).body["jobs"] == []


def test_a_service_token_of_every_host_lists_full_pages_of_its_types(admin: Api, api: Api) -> None:
    # Given many exec jobs it may not see and seven pings it may see, on any host
    for name in ("dc01", "dc02"):
        HostRepository().register(name)
    exec_job = {"type": "exec", "params": {"argv": ["/bin/true"]}}
    hidden = [admin.post("/v1/jobs", json_body={**exec_job, "host": "dc01"}) for _ in range(30)]
    assert all(response.status == 201 for response in hidden)
    visible = {
        admin.post("/v1/jobs", json_body={"type": "ping", "params": {}, "host": host}).body["id"]
        for host in ("dc01", "dc02", "dc01", "dc02", "dc02", "dc01", "dc01")
    }
    created = admin.post(
        "/v1/tokens",
        json_body={
            "name": "any-host",
            "scopes": ["service"],
            "job_types": ["ping"],
            "hosts": ["*"],
        },
    ).body
    service = Api(api.handler, token=created["token"], default_headers=api.default_headers)

    # When it lists its jobs three at a time (a scan of the table filtered by type),
    # Then every page is full until the last: the scan reads on until a page is full
    pages = _all_pages(service, 3)
    assert [len(page) for page in pages] == [3, 3, 1]
    assert {job for page in pages for job in page} == visible
