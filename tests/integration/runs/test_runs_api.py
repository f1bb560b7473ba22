"""/v1/runs: bad input is a clear 4xx that writes nothing; scoping and idempotency as for jobs."""

from __future__ import annotations

from typing import Any

import pytest

from hostrelay.dal.hosts_repo import HostRepository
from tests.conftest import AwsStack
from tests.integration.api.conftest import Api, Tokens
from tests.integration.runs.conftest import Fleet

GOOD: dict[str, Any] = {"type": "ping", "params": {}, "targets": {"hosts": ["dc01"]}}


def _items(aws: AwsStack, logical_id: str) -> int:
    return int(aws.client("dynamodb").scan(TableName=aws.ref(logical_id))["Count"])


BAD_BODIES = [
    ({}, 422),
    ({"type": "ping", "params": {}}, 422),  # no targets
    ({**GOOD, "targets": {}}, 422),  # neither hosts nor tags
    ({**GOOD, "targets": {"hosts": []}}, 422),
    ({**GOOD, "targets": {"hosts": ["nosuch"]}}, 422),  # not enrolled
    ({**GOOD, "targets": {"hosts": ["bad_name!"]}}, 422),
    ({**GOOD, "targets": {"hosts": "dc01"}}, 422),
    ({**GOOD, "targets": {"hosts": ["dc01"], "extra": 1}}, 422),
    ({**GOOD, "targets": {"tags": {"role": "none-such"}}}, 422),  # matches nothing
    ({**GOOD, "targets": {"tags": {"": "x"}}}, 422),
    ({**GOOD, "targets": {"tags": {"role": 5}}}, 422),
    ({**GOOD, "type": "nosuch"}, 422),
    ({**GOOD, "type": "discovery.aws"}, 422),  # runs in the cloud
    ({**GOOD, "type": "ping", "params": {"message": 5}}, 422),  # the job type's own model
    ({**GOOD, "params": {"unknown": True}}, 422),
    ({**GOOD, "max_concurrency": 0}, 422),
    ({**GOOD, "max_concurrency": -1}, 422),
    ({**GOOD, "max_concurrency": "0%"}, 422),
    ({**GOOD, "max_concurrency": "150%"}, 422),
    ({**GOOD, "max_concurrency": "ten"}, 422),
    ({**GOOD, "max_concurrency": 5001}, 422),
    ({**GOOD, "max_concurrency": True}, 422),
    ({**GOOD, "max_errors": "5.5%"}, 422),
    ({**GOOD, "max_errors": 1.5}, 422),
    ({**GOOD, "timeout_s": 0}, 422),
    ({**GOOD, "timeout_s": "60"}, 422),
    ({**GOOD, "deliver_by": "2001-01-01T00:00:00+00:00"}, 422),  # past
    ({**GOOD, "deliver_by": 1893456000}, 422),
    ({**GOOD, "continuous": True}, 422),  # continuous needs tags
    ({**GOOD, "continuous": "yes"}, 422),
    ({**GOOD, "expired_counts_as_error": 0}, 422),
    ({**GOOD, "idempotency_key": ""}, 422),
    ({**GOOD, "surprise": 1}, 422),
    ({**GOOD, "targets": {"hosts": [f"h{n}" for n in range(5001)]}}, 422),
]


@pytest.mark.parametrize(("body", "status"), BAD_BODIES)
def test_bad_run_request_is_refused_and_writes_nothing(
    fleet: Fleet, aws: AwsStack, body: dict[str, Any], status: int
) -> None:
    # Given dc01 enrolled, an operator, and nothing in the runs and jobs tables
    # When the body is bad
    response = fleet.api.post("/v1/runs", json_body=body)
    # Then the answer is a 4xx with an error body, never a 500
    assert response.status == status, response.body
    assert response.body["error"]["code"]
    # And nothing was written
    assert _items(aws, "RunsTable") == 0
    assert _items(aws, "JobsTable") == 0


def test_unparseable_and_wrong_paths_are_4xx(fleet: Fleet) -> None:
    assert fleet.api.post("/v1/runs", body="{not json").status == 400
    assert fleet.api.get("/v1/runs/not-a-ulid").status == 422
    assert fleet.api.get("/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV").status == 404
    assert fleet.api.post("/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel").status == 404
    assert fleet.api.get("/v1/runs", query={"next_token": "garbage"}).status == 400
    run = fleet.start(**GOOD)
    bad_state = fleet.api.get(f"/v1/runs/{run['id']}/targets", query={"state": "NOPE"})
    assert bad_state.status == 422


def test_service_token_runs_only_its_types_on_its_hosts(
    fleet: Fleet, api: Api, tokens: Tokens
) -> None:
    # Given hosts a1..a3 tagged role=lab, and a service token for ping on a1 and a2
    fleet.enroll(["a1", "a2", "a3"], tags={"role": "lab"})
    service = Api(
        api.handler, token=tokens.create("service", job_types=["ping"], hosts=["a1", "a2"])
    )
    # When it starts a run by tag, the tag matches only the hosts it may use
    response = service.post(
        "/v1/runs", json_body={"type": "ping", "targets": {"tags": {"role": "lab"}}}
    )
    assert response.status == 201
    run_id = response.body["id"]
    hosts = sorted(t["host"] for t in service.get(f"/v1/runs/{run_id}/targets").body["targets"])
    assert hosts == ["a1", "a2"]
    # And naming a host it may not use, or a type it may not run, is forbidden
    named = service.post("/v1/runs", json_body={"type": "ping", "targets": {"hosts": ["a3"]}})
    other_type = service.post(
        "/v1/runs",
        json_body={"type": "exec", "params": {"argv": ["true"]}, "targets": {"hosts": ["a1"]}},
    )
    assert (named.status, other_type.status) == (403, 403)
    # And another service token neither sees nor cancels the run
    other = Api(api.handler, token=tokens.create("service", job_types=["ping"], hosts=["*"]))
    assert other.get(f"/v1/runs/{run_id}").status == 404
    assert other.post(f"/v1/runs/{run_id}/cancel").status == 404
    assert run_id not in [r["id"] for r in other.get("/v1/runs").body["runs"]]
    # And a reader sees it but may not cancel it, nor start runs
    reader = Api(api.handler, token=tokens.create("reader"))
    assert reader.get(f"/v1/runs/{run_id}").status == 200
    assert reader.post(f"/v1/runs/{run_id}/cancel").status == 403
    assert reader.post("/v1/runs", json_body=GOOD).status == 403


def test_same_idempotency_key_returns_the_first_run(fleet: Fleet, aws: AwsStack) -> None:
    body = {**GOOD, "idempotency_key": "deploy-42"}
    first = fleet.api.post("/v1/runs", json_body=body)
    again = fleet.api.post("/v1/runs", json_body=body)
    assert (first.status, again.status) == (201, 200)
    assert first.body["id"] == again.body["id"]
    assert _items(aws, "JobsTable") == 1
    changed = fleet.api.post("/v1/runs", json_body={**body, "max_errors": 3})
    assert changed.status == 409


def test_runs_are_listed_newest_first_in_pages(fleet: Fleet) -> None:
    ids = [fleet.start(**GOOD)["id"] for _ in range(3)]
    first = fleet.api.get("/v1/runs", query={"limit": 2})
    assert [r["id"] for r in first.body["runs"]] == ids[::-1][:2]
    rest = fleet.api.get("/v1/runs", query={"limit": 2, "next_token": first.body["next_token"]})
    assert [r["id"] for r in rest.body["runs"]] == ids[:1]


def _pages(api: Api, path: str, key: str, **query: Any) -> list[list[dict[str, Any]]]:
    """Every page of a listing, following next_token."""
    pages, token = [], None
    while True:
        page = api.get(path, query={**query, "next_token": token})
        assert page.status == 200, page.body
        pages.append(page.body[key])
        token = page.body.get("next_token")
        if not token:
            return pages


def test_a_service_token_lists_its_own_runs_in_full_pages(
    fleet: Fleet, api: Api, tokens: Tokens
) -> None:
    # Given 23 runs started by three callers, interleaved: an operator's (12), service
    # token A's (8) and service token B's (3)
    fleet.enroll(["a1", "b1"])
    a = Api(api.handler, token=tokens.create("service", job_types=["ping"], hosts=["a1"]))
    b = Api(api.handler, token=tokens.create("service", job_types=["ping"], hosts=["b1"]))
    started: dict[str, list[str]] = {"ops": [], "a": [], "b": []}
    for n in range(23):
        who = "a" if n % 3 == 1 else "b" if n % 5 == 2 else "ops"
        caller, host = {"ops": (fleet.api, "dc01"), "a": (a, "a1"), "b": (b, "b1")}[who]
        response = caller.post("/v1/runs", json_body={**GOOD, "targets": {"hosts": [host]}})
        assert response.status == 201, response.body
        started[who].append(response.body["id"])
    assert [len(ids) for ids in started.values()] == [12, 8, 3]
    # When service token A lists its runs 3 at a time
    pages = _pages(a, "/v1/runs", "runs", limit=3)
    # Then every page but the last is full, and it sees each of its runs once, newest first
    assert [len(page) for page in pages[:-1]] == [3, 3]
    assert [r["id"] for page in pages for r in page] == started["a"][::-1]
    # And B sees its own 3, and the operator all 23, each once, in full pages
    assert [r["id"] for page in _pages(b, "/v1/runs", "runs", limit=2) for r in page] == (
        started["b"][::-1]
    )
    everyone = _pages(fleet.api, "/v1/runs", "runs", limit=7)
    assert [len(page) for page in everyone[:3]] == [7, 7, 7]
    listed = [r["id"] for page in everyone for r in page]
    assert sorted(listed) == sorted(run for ids in started.values() for run in ids)
    assert len(set(listed)) == 23
    # And a next_token of one caller's listing is refused (400) in another's
    a_token = a.get("/v1/runs", query={"limit": 3}).body["next_token"]
    ops_token = fleet.api.get("/v1/runs", query={"limit": 3}).body["next_token"]
    assert b.get("/v1/runs", query={"next_token": a_token}).status == 400
    assert a.get("/v1/runs", query={"next_token": ops_token}).status == 400
    assert fleet.api.get("/v1/runs", query={"next_token": a_token}).status == 400


def test_targets_of_one_state_come_in_full_pages(fleet: Fleet) -> None:
    # Given a run of 30 targets at once where every third host fails
    hosts = fleet.enroll(f"agent{n:02d}" for n in range(30))
    failing = set(hosts[::3])
    run = fleet.start(targets={"hosts": hosts}, max_concurrency=30, max_errors=30)
    fleet.drive(run["id"], lambda host: "failed" if host in failing else "succeeded")
    assert fleet.run(run["id"])["counts"] == {"FAILED": 10, "SUCCEEDED": 20}
    # When its FAILED targets are listed 3 at a time
    path = f"/v1/runs/{run['id']}/targets"
    pages = _pages(fleet.api, path, "targets", state="FAILED", limit=3)
    # Then the pages hold 3, 3, 3 and 1, each failed host once, in start order
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    assert [t["host"] for page in pages for t in page] == sorted(failing)
    succeeded = _pages(fleet.api, path, "targets", state="SUCCEEDED", limit=7)
    assert [len(page) for page in succeeded] == [7, 7, 6]
    assert [t["host"] for page in succeeded for t in page] == sorted(set(hosts) - failing)
    # And a next_token of the FAILED listing is refused (400) in the SUCCEEDED one
    token = fleet.api.get(path, query={"state": "FAILED", "limit": 3}).body["next_token"]
    refused = fleet.api.get(path, query={"state": "SUCCEEDED", "next_token": token})
    assert refused.status == 400


def test_targets_of_a_live_job_state_come_in_full_pages(fleet: Fleet) -> None:
    # Given a run of 12 targets at once whose every other host is offline (its job stays
    # QUEUED) while the others' jobs are DISPATCHED
    hosts = fleet.enroll(f"agent{n:02d}" for n in range(12))
    for host in hosts[::2]:
        HostRepository().mark_offline(host)
    run = fleet.start(targets={"hosts": hosts}, max_concurrency=12)
    assert len(fleet.dispatch()) == 6
    # When the targets are listed by their jobs' live state, 4 at a time
    path = f"/v1/runs/{run['id']}/targets"
    queued = _pages(fleet.api, path, "targets", state="QUEUED", limit=4)
    dispatched = _pages(fleet.api, path, "targets", state="DISPATCHED", limit=4)
    # Then pages are full until the last, and each target appears once in its listing
    assert [len(page) for page in queued] == [4, 2]
    assert [t["host"] for page in queued for t in page] == hosts[::2]
    assert [len(page) for page in dispatched] == [4, 2]
    assert [t["host"] for page in dispatched for t in page] == hosts[1::2]
