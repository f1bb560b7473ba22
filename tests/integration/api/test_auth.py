"""Bearer-token authentication and scopes, through the real ApiFunction handler."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hostrelay.clock import utcnow
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.tokens_repo import TokenRepository, hash_token
from tests.conftest import AwsStack
from tests.integration.api.conftest import Api, Tokens

pytestmark = pytest.mark.integration

PING = {"type": "ping", "host": "dc01", "params": {}}


def test_health_needs_no_token(api: Api) -> None:
    # When anyone asks for health without a token
    response = api.get("/v1/health")
    # Then the API answers ok with its version
    assert response.status == 200
    assert response.body["status"] == "ok"
    assert response.body["version"]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer two words", "hr_bare_token"],
)
def test_missing_or_malformed_header_is_401_with_challenge(
    api: Api, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    response = api.get("/v1/jobs", headers=headers)
    assert response.status == 401
    assert response.error_code == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_unknown_token_is_401(api: Api) -> None:
    response = api.get("/v1/jobs", token="hr_not-a-real-token")
    assert response.status == 401
    assert response.body["error"]["message"] == "invalid token"
    assert "www-authenticate" in response.headers


def test_expired_token_is_401(api: Api, tokens: Tokens) -> None:
    # Given a reader token that expired a minute ago
    secret = tokens.create("reader", expires_at=utcnow() - timedelta(minutes=1))
    # When it is used
    response = api.get("/v1/jobs", token=secret)
    # Then it is refused as expired
    assert response.status == 401
    assert "expired" in response.body["error"]["message"]


def test_revoked_token_is_401(api: Api, tokens: Tokens) -> None:
    secret = tokens.create("admin", name="soon-gone")
    record = TokenRepository().find_by_secret(secret)
    assert record is not None
    assert api.get("/v1/hosts", token=secret).status == 200
    TokenRepository().revoke(record.token_id)
    response = api.get("/v1/hosts", token=secret)
    assert response.status == 401
    assert "revoked" in response.body["error"]["message"]


def test_using_a_token_records_last_use(api: Api, tokens: Tokens) -> None:
    secret = tokens.create("reader")
    api.get("/v1/jobs", token=secret)
    record = TokenRepository().find_by_secret(secret)
    assert record is not None and record.last_used_at is not None


def test_error_never_echoes_the_token(api: Api) -> None:
    response = api.get("/v1/jobs", token="hr_secret-value-123")
    assert "hr_secret-value-123" not in str(response.body)


def test_reader_cannot_create_jobs(api: Api, tokens: Tokens) -> None:
    # Given host dc01 and a reader token
    HostRepository().register("dc01")
    reader = Api(api.handler, token=tokens.create("reader"))
    # When the reader queues a job
    response = reader.post("/v1/jobs", json_body=PING)
    # Then it is forbidden, and nothing was queued
    assert response.status == 403
    assert response.error_code == "forbidden"
    assert reader.get("/v1/jobs").body["jobs"] == []


def test_reader_cannot_revoke_hosts_or_manage_tokens(api: Api, tokens: Tokens) -> None:
    HostRepository().register("dc01")
    reader = Api(api.handler, token=tokens.create("reader"))
    assert reader.get("/v1/hosts").status == 200
    assert reader.delete("/v1/hosts/dc01").status == 403
    assert reader.get("/v1/tokens").status == 403
    assert reader.post("/v1/tokens", json_body={"name": "x", "scopes": ["admin"]}).status == 403


def test_operator_cannot_manage_tokens(operator: Api) -> None:
    assert operator.get("/v1/tokens").status == 403


def test_service_token_is_limited_to_its_job_types_and_hosts(api: Api, tokens: Tokens) -> None:
    # Given a service token that may only run ping on dc01
    HostRepository().register("dc01")
    HostRepository().register("dc02")
    service = Api(api.handler, token=tokens.create("service", job_types=["ping"], hosts=["dc01"]))
    # Then ping on dc01 is allowed, and other types or hosts are forbidden
    assert service.post("/v1/jobs", json_body=PING).status == 201
    exec_job = {"type": "exec", "host": "dc01", "params": {"argv": ["/bin/true"]}}
    assert service.post("/v1/jobs", json_body=exec_job).status == 403
    assert service.post("/v1/jobs", json_body={**PING, "host": "dc02"}).status == 403


def test_bootstrap_token_is_an_admin(aws: AwsStack) -> None:
    # Given the API deployed with the SHA-256 of a bootstrap admin token
    secret = "hr_bootstrap-secret"
    aws.environments["ApiFunction"]["BOOTSTRAP_ADMIN_TOKEN_SHA256"] = hash_token(secret)
    api = Api(aws.handler("ApiFunction"))
    # When it is used to create the first real token
    created = api.post(
        "/v1/tokens", token=secret, json_body={"name": "first-admin", "scopes": ["admin"]}
    )
    # Then that works and the new token is recorded as made by the bootstrap token
    assert created.status == 201
    listed = api.get("/v1/tokens", token=created.body["token"])
    assert listed.status == 200
    assert [t["created_by"] for t in listed.body["tokens"]] == ["token:bootstrap/bootstrap"]
    # And a different secret is still refused
    assert api.get("/v1/tokens", token="hr_bootstrap-secreT").status == 401
