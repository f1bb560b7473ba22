"""Hostile and malformed requests get a clear 4xx, change nothing, and never a 500 (issue #16)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.api.conftest import Api

pytestmark = pytest.mark.integration

PING = {"type": "ping", "host": "dc01", "params": {"message": "hi"}}
EXEC = {"type": "exec", "host": "dc01", "params": {"argv": ["/bin/true"]}}
# Every route that takes a body (the connector ones need a connector id: any id will do,
# the body is refused before the connector is looked up).
BODY_ROUTES = [
    ("POST", "/v1/jobs"),
    ("POST", "/v1/tokens"),
    ("POST", "/v1/enrollments"),
    ("POST", "/v1/enroll/hre_" + "a" * 43 + "/csr"),
    ("POST", "/v1/macct/repair"),
    ("POST", "/v1/macct/capture"),
    ("POST", "/v1/connectors"),
    ("PUT", "/v1/connectors/c" + "0" * 25),
]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def assert_no_job_stored(api: Api) -> None:
    assert api.get("/v1/jobs").body["jobs"] == []


def test_a_body_nested_5000_levels_deep_is_refused(operator: Api) -> None:
    # Given a JSON body far deeper than any parser should recurse
    body = '{"type": "ping", "host": "dc01", "params": ' + '{"a": ' * 5000 + "1" + "}" * 5001
    # When it is posted as a job
    response = operator.post("/v1/jobs", body=body)
    # Then it is refused as too deep, and no job exists
    assert response.status == 422
    assert response.body["error"]["details"] == [{"max_depth": 32}]
    assert_no_job_stored(operator)


def test_params_nested_40_levels_deep_are_refused(operator: Api) -> None:
    # Given exec params 40 levels deep (DynamoDB documents nest at most 32)
    body = {**EXEC, "params": {**EXEC["params"], "limits": nested(40)}}
    response = operator.post("/v1/jobs", json_body=body)
    # Then the request is refused and nothing is stored
    assert response.status == 422
    assert "deeper than 32" in response.body["error"]["message"]
    assert_no_job_stored(operator)


def test_a_body_at_the_depth_limit_is_still_read(operator: Api) -> None:
    # Given a body exactly 32 levels deep (body, params, limits, then 29 more)
    body = {**EXEC, "params": {**EXEC["params"], "limits": nested(30)}}
    response = operator.post("/v1/jobs", json_body=body)
    # Then the depth limit does not refuse it (whatever the exec rules say about its content)
    assert "deeper than" not in json.dumps(response.body)
    assert response.status != 500


@pytest.mark.parametrize(
    "number",
    ["1" * 400, "-" + "9" * 39, "1e400", "-1e400", "1e200", "1e-200"],
    ids=["400-digit", "39-digit-negative", "1e400", "-1e400", "1e200", "1e-200"],
)
def test_numbers_dynamodb_cannot_keep_are_refused(operator: Api, number: str) -> None:
    # Given a number in params beyond what DynamoDB stores (38 digits, 1e-130 to 1e126)
    body = '{"type": "exec", "host": "dc01", "params": {"argv": ["/bin/true"], '
    body += '"limits": {"memory_mb": ' + number + "}}}"
    # When it is posted
    response = operator.post("/v1/jobs", body=body)
    # Then it is refused as out of range (not stored as null or as a 400-digit number)
    assert response.status == 422
    assert "out of range" in response.body["error"]["message"]
    assert_no_job_stored(operator)


def test_a_body_that_is_not_utf8_is_400(operator: Api) -> None:
    # Given a body with bytes that are not UTF-8 (API Gateway passes it base64-encoded)
    response = operator.post("/v1/jobs", body=b'{"type": "ping\xff\xfe", "host": "dc01"}')
    # Then it is malformed, not an internal error
    assert response.status == 400
    assert response.error_code == "malformed_json"
    assert "UTF-8" in response.body["error"]["message"]
    assert_no_job_stored(operator)


def test_a_lone_surrogate_escape_is_400(operator: Api) -> None:
    # Given JSON whose string escapes a lone UTF-16 surrogate (no Unicode text can hold it)
    response = operator.post(
        "/v1/jobs", body='{"type": "ping", "host": "dc01", "params": {"message": "\\ud800"}}'
    )
    # Then it is malformed
    assert response.status == 400
    assert response.error_code == "malformed_json"
    assert_no_job_stored(operator)


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=[p for _, p in BODY_ROUTES])
@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "text/plain"],
)
def test_a_json_body_sent_as_another_media_type_is_415(
    admin: Api, method: str, path: str, content_type: str
) -> None:
    # Given an admin sends a JSON body labelled as something else, to a route that takes a body
    response = admin.request(
        method,
        path,
        body=json.dumps(PING),
        headers={"content-type": content_type, "host": "api.example.com"},
    )
    # Then it is told to send JSON
    assert response.status == 415
    assert response.error_code == "unsupported_media_type"
    assert response.body["error"]["details"][0]["expected"] == "application/json"


def test_json_with_a_charset_is_still_json(operator: Api) -> None:
    response = operator.post(
        "/v1/jobs", json_body=PING, headers={"content-type": "Application/JSON; charset=utf-8"}
    )
    assert response.status == 201


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", "type=ping"),
        ("multipart/form-data; boundary=x", json.dumps(PING)),
        ("application/json", '{"type": '),
        ("application/json", "{" * 5000),
        ("application/json", json.dumps({"host": 5})),
    ],
    ids=["text", "multipart", "broken-json", "deep", "wrong-shape"],
)
@pytest.mark.parametrize("token", [None, "not-a-real-token"], ids=["no-token", "bad-token"])
def test_without_a_valid_token_any_body_gets_401(
    api: Api, content_type: str, body: str, token: str | None
) -> None:
    # Given a POST without a valid token, whatever its body
    headers = {"content-type": content_type}
    if token:
        headers["authorization"] = f"Bearer {token}"
    response = api.post("/v1/jobs", body=body, headers=headers)
    # Then it is refused for the token alone: its body's problems are not revealed
    assert response.status == 401
    assert response.error_code == "unauthorized"


def test_without_a_token_bad_query_and_path_parameters_get_401(api: Api) -> None:
    assert api.get("/v1/jobs", query={"limit": "many", "state": "NOPE"}).status == 401
    assert api.get("/v1/jobs/not-a-ulid").status == 401
    assert api.get("/v1/audit", query={"until": "yesterday"}).status == 401


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout_s", "10"),
        ("timeout_s", True),
        ("timeout_s", 10.0),
        ("max_attempts", "2"),
        ("max_attempts", False),
        ("deliver_by", 4102444800),
    ],
)
def test_job_fields_take_json_types_only(operator: Api, field: str, value: Any) -> None:
    # Given a job whose field has the wrong JSON type, though it could be coerced
    response = operator.post("/v1/jobs", json_body={**PING, field: value})
    # Then it is refused, naming the field, and nothing is queued
    assert response.status == 422
    assert f"body.{field}" in [d["field"] for d in response.body["error"]["details"]]
    assert_no_job_stored(operator)


def test_integers_of_the_right_type_are_still_taken(operator: Api) -> None:
    response = operator.post(
        "/v1/jobs",
        json_body={
            **PING,
            "timeout_s": 10,
            "max_attempts": 2,
            "deliver_by": "2999-01-01T00:00:00Z",
        },
    )
    assert response.status == 201
    assert response.body["timeout_s"] == 10 and response.body["max_attempts"] == 2


@pytest.mark.parametrize("value", [0, 1, "true", None])
def test_enrollment_replace_must_be_a_boolean(admin: Api, value: Any) -> None:
    response = admin.post(
        "/v1/enrollments",
        json_body={"host": "dc02", "replace": value},
        headers={"host": "api.example.com"},
    )
    assert response.status == 422
    assert "body.replace" in [d["field"] for d in response.body["error"]["details"]]
    assert admin.get("/v1/hosts").body["hosts"] == []


def test_token_lifetime_must_be_an_integer(admin: Api) -> None:
    response = admin.post(
        "/v1/tokens", json_body={"name": "ci", "scopes": ["reader"], "expires_in_s": "3600"}
    )
    assert response.status == 422
    assert [t["name"] for t in admin.get("/v1/tokens").body["tokens"]] == ["root"]


@pytest.mark.parametrize("until", ["0.5", "0", "1970-01-01T00:00:00Z", "1970-01-01T12:00:00Z"])
def test_audit_until_near_the_epoch_reads_an_empty_trail(admin: Api, until: str) -> None:
    # Given an audit range that reaches back before the Unix epoch (no ULID exists there)
    response = admin.get("/v1/audit", query={"until": until})
    # Then it is read, and holds nothing
    assert response.status == 200
    assert response.body == {"events": []}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("until", "0001-01-01T00:00:00Z"),
        ("until", "-1"),
        ("since", "1969-12-31T23:59:59Z"),
        ("until", "9999-12-31T23:59:59-05:00"),
        ("until", "0001-01-01T00:00:00+05:00"),
    ],
)
def test_audit_moments_outside_the_trail_are_422(admin: Api, name: str, value: str) -> None:
    response = admin.get("/v1/audit", query={name: value})
    assert response.status == 422
    assert f"query.{name}" in [d["field"] for d in response.body["error"]["details"]]


def test_an_output_position_beyond_any_chunk_is_422(operator: Api) -> None:
    # Given a job, and a follower asking for chunks after a 40-digit position
    job = operator.post("/v1/jobs", json_body=PING).body
    response = operator.get(f"/v1/jobs/{job['id']}/output", query={"after_seq": "9" * 40})
    # Then the position is refused (DynamoDB numbers have 38 digits: AWS would fail the query)
    assert response.status == 422
    assert "query.after_seq" in [d["field"] for d in response.body["error"]["details"]]
