"""The LINBO conveniences: /v1/macct/repair and /v1/macct/capture with service tokens."""

from __future__ import annotations

from hostrelay.dal.hosts_repo import HostRepository
from tests.integration.api.conftest import Api, Tokens


def linbo_hook(api: Api, tokens: Tokens, *types: str) -> Api:
    """Given dc01 enrolled and a service token limited to the macct job types."""
    HostRepository().register("dc01")
    token = tokens.create("service", name="linbo", job_types=list(types) or None, hosts=["dc01"])
    return Api(api.handler, token=token)


def test_repair_queues_one_job_for_all_computers(api: Api, tokens: Tokens) -> None:
    hook = linbo_hook(api, tokens, "macct.repair", "macct.capture")
    response = hook.post(
        "/v1/macct/repair",
        json_body={
            "host": "dc01",
            "image": "win11.qcow2",
            "computers": ["r100-pc01", "R100-PC02$"],
        },
    )
    assert response.status == 201
    job = response.body["created"]
    # The names as the relay will use them: validated and normalized by the contract's model
    assert (job["type"], job["state"], job["params"]["computers"]) == (
        "macct.repair", "QUEUED", ["R100-PC01", "R100-PC02"]
    )  # fmt: skip
    assert response.body["computers"] == {"R100-PC01": job["id"], "R100-PC02": job["id"]}
    assert job["created_by"].endswith("/linbo")


def test_second_request_for_a_pending_computer_returns_the_existing_job(
    api: Api, tokens: Tokens
) -> None:
    hook = linbo_hook(api, tokens, "macct.repair")
    first = hook.post(
        "/v1/macct/repair", json_body={"host": "dc01", "image": "img", "computers": ["pc01"]}
    ).body["created"]
    # When LINBO asks again for pc01 (and a new pc02)
    again = hook.post(
        "/v1/macct/repair",
        json_body={"host": "dc01", "image": "img", "computers": ["PC01", "pc02"]},
    )
    # Then pc01 keeps its pending job and only pc02 gets a new one
    assert again.status == 201
    assert [job["id"] for job in again.body["reused"]] == [first["id"]]
    assert again.body["created"]["params"]["computers"] == ["PC02"]
    assert again.body["computers"]["PC01"] == first["id"]
    # And a request covered entirely by pending jobs creates nothing
    covered = hook.post(
        "/v1/macct/repair", json_body={"host": "dc01", "image": "img", "computers": ["pc01"]}
    )
    assert covered.status == 200 and covered.body["created"] is None


def test_capture_queues_a_capture_job(api: Api, tokens: Tokens) -> None:
    hook = linbo_hook(api, tokens, "macct.capture")
    response = hook.post(
        "/v1/macct/capture", json_body={"host": "dc01", "image": "img", "computer": "pc01"}
    )
    assert response.status == 201
    assert response.body["type"] == "macct.capture"


def test_service_token_cannot_create_other_job_types(api: Api, tokens: Tokens) -> None:
    hook = linbo_hook(api, tokens, "macct.repair", "macct.capture")
    refused = hook.post("/v1/jobs", json_body={"type": "exec", "host": "dc01",
                                              "params": {"argv": ["/bin/true"]}})  # fmt: skip
    assert refused.status == 403
    capture_only = linbo_hook(api, tokens, "macct.capture")
    assert (
        capture_only.post(
            "/v1/macct/repair", json_body={"host": "dc01", "image": "i", "computers": ["pc1"]}
        ).status
        == 403
    )


def test_bad_names_and_sizes_are_rejected_before_anything_is_queued(
    api: Api, tokens: Tokens
) -> None:
    hook = linbo_hook(api, tokens, "macct.repair")
    for body in (
        {"host": "dc01", "image": "../etc", "computers": ["pc01"]},
        {"host": "dc01", "image": "img", "computers": []},
        {"host": "dc01", "image": "img", "computers": ["x" * 17]},
        {"host": "dc01", "image": "img", "computers": [f"pc{i}" for i in range(501)]},
        {"host": "dc01", "image": "img", "computers": ["pc01"], "extra": 1},
    ):
        response = hook.post("/v1/macct/repair", json_body=body)
        assert response.status == 422, body
        assert "error" in response.body
    listed = Api(api.handler, token=tokens.create("reader")).get("/v1/jobs")
    assert listed.body["jobs"] == []
