"""Jobs through the real ApiFunction handler: create, idempotency, validation, list, cancel."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import pytest

from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.dal.output_store import OutputStore
from hostrelay.domain.jobs import JobOutputInfo, JobState
from hostrelay.domain.output import OutputBatch
from tests.conftest import AwsStack
from tests.integration.api.conftest import Api

pytestmark = pytest.mark.integration

PING = {"type": "ping", "host": "dc01", "params": {"message": "hi"}}


def dispatch_messages(aws: AwsStack) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    got = sqs.receive_message(
        QueueUrl=aws.ref("DispatchQueue"), MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_create_ping_job_queues_it_for_dispatch(operator: Api, aws: AwsStack) -> None:
    # When an operator queues a ping for dc01
    response = operator.post("/v1/jobs", json_body=PING)
    # Then the job is created QUEUED with the type's defaults
    assert response.status == 201
    job = response.body
    assert job["state"] == "QUEUED"
    assert job["type"] == "ping" and job["host"] == "dc01"
    assert job["params"] == {"message": "hi"}
    assert job["attempt"] == 1 and job["max_attempts"] == 1
    assert job["created_by"].endswith("/ops")
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["created_at"].endswith("Z")
    # And the dispatcher was asked to deliver it, the job as written in the message (so the
    # dispatcher need not read it back)
    [message] = dispatch_messages(aws)
    carried = message.pop("job")
    assert message == {"job_id": job["id"], "attempt": 1, "action": "publish"}
    assert {k: carried[k] for k in job} == job
    # And it reads back the same
    assert operator.get(f"/v1/jobs/{job['id']}").body == job


def test_same_idempotency_key_and_body_returns_the_first_job(operator: Api, aws: AwsStack) -> None:
    body = {**PING, "idempotency_key": "nightly-2030-01-01"}
    first = operator.post("/v1/jobs", json_body=body)
    again = operator.post("/v1/jobs", json_body=body)
    assert first.status == 201
    assert again.status == 200
    assert again.body["id"] == first.body["id"]
    assert len(dispatch_messages(aws)) == 1


def test_same_idempotency_key_with_another_body_is_409(operator: Api) -> None:
    operator.post("/v1/jobs", json_body={**PING, "idempotency_key": "k1"})
    other = {**PING, "params": {"message": "other"}, "idempotency_key": "k1"}
    response = operator.post("/v1/jobs", json_body=other)
    assert response.status == 409
    assert response.error_code == "conflict"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**PING, "type": "teleport"}, "type"),
        ({**PING, "host": "dc99"}, "host"),
    ],
)
def test_unknown_type_or_host_is_422(operator: Api, body: dict[str, Any], field: str) -> None:
    response = operator.post("/v1/jobs", json_body=body)
    assert response.status == 422
    assert response.error_code == "invalid_request"
    assert response.body["error"]["details"][0]["field"] == field


def test_invalid_params_are_422_with_the_field(operator: Api) -> None:
    response = operator.post("/v1/jobs", json_body={**PING, "params": {"sleep_s": -1}})
    assert response.status == 422
    assert response.body["error"]["details"][0]["field"] == "params.sleep_s"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**PING, "priority": "high"}, "body.priority"),
        ({**PING, "max_attempts": 11}, "body.max_attempts"),
        ({**PING, "idempotency_key": ""}, "body.idempotency_key"),
        ({**PING, "idempotency_key": "k" * 129}, "body.idempotency_key"),
        ({**PING, "deliver_by": "2030-01-01T00:00:00"}, "body.deliver_by"),
        ({"host": "dc01"}, "body.type"),
        ({**PING, "host": "not a host"}, "body.host"),
    ],
)
def test_bad_body_fields_are_422(operator: Api, body: dict[str, Any], field: str) -> None:
    response = operator.post("/v1/jobs", json_body=body)
    assert response.status == 422
    assert response.error_code == "validation_error"
    assert field in [d["field"] for d in response.body["error"]["details"]]


@pytest.mark.parametrize("body", ['{"type": "ping",', "not json", '{"x": NaN}', "[1, 2"])
def test_malformed_json_is_400(operator: Api, body: str) -> None:
    response = operator.post("/v1/jobs", body=body)
    assert response.status == 400
    assert response.error_code == "malformed_json"


def test_oversize_body_is_413_before_parsing(operator: Api) -> None:
    # A body over 256 KiB, which is not even JSON: the size alone decides
    response = operator.post("/v1/jobs", body="x" * (256 * 1024 + 1))
    assert response.status == 413
    assert response.error_code == "payload_too_large"


def test_base64_encoded_body_is_accepted(operator: Api) -> None:
    from hostrelay_local.lambda_runtime import FakeLambdaContext
    from tests.integration.api.conftest import http_event

    event = http_event(
        "POST",
        "/v1/jobs",
        headers={"authorization": f"Bearer {operator.token}", "content-type": "application/json"},
        body=json.dumps(PING).encode(),
    )
    response = operator.handler(event, FakeLambdaContext(function_name="api"))
    assert response["statusCode"] == 201


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs/not-a-ulid",
        "/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAu",
        "/v1/jobs/81ARZ3NDEKTSV4RRFFQ69G5FAV",
    ],
)
def test_job_ids_must_be_ulids(operator: Api, path: str) -> None:
    response = operator.get(path)
    assert response.status == 422
    assert response.body["error"]["details"][0]["field"] == "path.job_id"


def test_unknown_job_is_404(operator: Api) -> None:
    response = operator.get("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert response.status == 404
    assert response.error_code == "not_found"


def test_list_filters_by_host_and_state_and_pages_with_next_token(operator: Api) -> None:
    # Given five ping jobs on dc01, two of them canceled, and one on dc02
    from hostrelay.dal.hosts_repo import HostRepository

    HostRepository().register("dc02")
    ids = [operator.post("/v1/jobs", json_body=PING).body["id"] for _ in range(5)]
    for job_id in ids[:2]:
        assert operator.post(f"/v1/jobs/{job_id}/cancel").status == 202
    operator.post("/v1/jobs", json_body={**PING, "host": "dc02"})

    # When the queued jobs of dc01 are listed two at a time
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = operator.get(
            "/v1/jobs", query={"host": "dc01", "state": "QUEUED", "limit": 2, "next_token": token}
        )
        assert page.status == 200
        pages += 1
        seen += [job["id"] for job in page.body["jobs"]]
        assert all(j["host"] == "dc01" and j["state"] == "QUEUED" for j in page.body["jobs"])
        token = page.body["next_token"]
        if token is None:
            break
    # Then every queued dc01 job comes back once, newest first, over several pages
    assert seen == list(reversed(ids[2:]))
    assert pages >= 2

    canceled = operator.get("/v1/jobs", query={"host": "dc01", "state": "CANCELED"}).body
    assert sorted(j["id"] for j in canceled["jobs"]) == sorted(ids[:2])
    every = operator.get("/v1/jobs", query={"limit": 200}).body
    assert len(every["jobs"]) == 6


def test_list_by_type_and_bad_filters(operator: Api) -> None:
    operator.post("/v1/jobs", json_body=PING)
    assert len(operator.get("/v1/jobs", query={"type": "ping"}).body["jobs"]) == 1
    assert operator.get("/v1/jobs", query={"type": "exec"}).body["jobs"] == []
    assert operator.get("/v1/jobs", query={"state": "SLEEPING"}).status == 422
    assert operator.get("/v1/jobs", query={"limit": 0}).status == 422
    assert operator.get("/v1/jobs", query={"limit": 201}).status == 422


@pytest.mark.parametrize("token", ["garbage!", "e30", base64.urlsafe_b64encode(b"[1]").decode()])
def test_invalid_next_token_is_400(operator: Api, token: str) -> None:
    response = operator.get("/v1/jobs", query={"next_token": token})
    assert response.status == 400
    assert response.error_code == "malformed_request"


def test_next_token_of_another_listing_is_400(operator: Api) -> None:
    for _ in range(3):
        operator.post("/v1/jobs", json_body=PING)
    scan_token = operator.get("/v1/jobs", query={"limit": 1}).body["next_token"]
    assert scan_token
    response = operator.get("/v1/jobs", query={"host": "dc01", "next_token": scan_token})
    assert response.status == 400


def test_cancel_queued_job(operator: Api) -> None:
    job = operator.post("/v1/jobs", json_body=PING).body
    response = operator.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status == 202
    assert response.body["state"] == "CANCELED"
    assert response.body["error"]["code"] == "canceled"
    assert operator.get(f"/v1/jobs/{job['id']}").body["state"] == "CANCELED"
    # Canceling again conflicts with its terminal state
    assert operator.post(f"/v1/jobs/{job['id']}/cancel").status == 409


def test_output_pages_follow_the_current_attempt(operator: Api) -> None:
    # Given a running job with three output chunks, the first two compressed in one event
    job_id = operator.post("/v1/jobs", json_body=PING).body["id"]
    store = OutputStore()
    sizes = [("stdout", 4), ("stderr", 4)]
    store.put_batches(
        [
            ("dc01", job_id, 1, OutputBatch(0, sizes, "zlib", zlib.compress(b"one\ntwo\n"))),
            ("dc01", job_id, 1, OutputBatch(2, [("stdout", 6)], "identity", b"three\n")),
        ]
    )

    # When the output is read two chunks at a time
    first = operator.get(f"/v1/jobs/{job_id}/output", query={"limit": 2}).body
    # Then chunks come oldest first, base64, and the job is not complete
    assert [c["seq"] for c in first["chunks"]] == [0, 1]
    assert base64.b64decode(first["chunks"][0]["data"]) == b"one\n"
    assert [c["stream"] for c in first["chunks"]] == ["stdout", "stderr"]
    assert first["attempt"] == 1 and first["next_seq"] == 1 and first["complete"] is False

    # And once the job has succeeded, reading on from next_seq completes it
    repo = JobRepository()
    repo.transition(repo.get(job_id), JobState.SUCCEEDED, output=JobOutputInfo(size=14, chunks=3))
    rest = operator.get(f"/v1/jobs/{job_id}/output", query={"after_seq": first["next_seq"]}).body
    assert [c["seq"] for c in rest["chunks"]] == [2]
    assert base64.b64decode(rest["chunks"][0]["data"]) == b"three\n"
    # and a page may start inside an event's chunks
    middle = operator.get(f"/v1/jobs/{job_id}/output", query={"after_seq": 0}).body
    assert [c["seq"] for c in middle["chunks"]] == [1, 2]
    assert rest["next_seq"] == 2 and rest["complete"] is True


def test_output_of_a_job_with_no_output_completes_when_it_ends(operator: Api) -> None:
    job_id = operator.post("/v1/jobs", json_body=PING).body["id"]
    operator.post(f"/v1/jobs/{job_id}/cancel")
    page = operator.get(f"/v1/jobs/{job_id}/output").body
    assert page == {"job_id": job_id, "attempt": 1, "chunks": [], "next_seq": -1, "complete": True}
