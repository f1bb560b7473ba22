"""Routing, OpenAPI and the error shape of the API, through the real ApiFunction handler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from hostrelay_local.lambda_runtime import FakeLambdaContext, LambdaHandler
from tests.integration.api.conftest import Api

pytestmark = pytest.mark.integration

EVENTS = sorted((Path(__file__).parents[3] / "events").glob("api_*.json"))


def test_openapi_document_is_valid_and_lists_every_route(api: Api) -> None:
    # When anyone fetches the OpenAPI document
    response = api.get("/v1/openapi.json")
    # Then it is a valid OpenAPI document with titles, the bearer scheme and every path
    assert response.status == 200
    document = response.body
    validate(document)
    assert document["info"]["title"] == "hostrelay API"
    assert document["info"]["description"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert set(document["paths"]) >= {
        "/v1/health",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/output",
        "/v1/hosts",
        "/v1/hosts/{name}",
        "/v1/tokens",
        "/v1/tokens/{token_id}",
    }
    create = document["paths"]["/v1/jobs"]["post"]
    assert create["summary"] and create["security"] == [{"bearerAuth": []}]
    assert {"201", "200", "401", "403", "409", "422"} <= set(map(str, create["responses"]))


def test_unknown_route_is_a_json_404(api: Api) -> None:
    response = api.get("/v2/nothing")
    assert response.status == 404
    assert response.error_code == "not_found"


def test_wrong_method_is_a_json_error(api: Api) -> None:
    response = api.request("PUT", "/v1/health")
    assert response.status in (404, 405)
    assert set(response.body["error"]) == {"code", "message", "details"}


def test_unexpected_failure_is_a_json_500_with_request_id(
    operator: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the jobs table is broken in a way no input can cause
    from hostrelay.dal.jobs_repo import JobRepository

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("table on fire")

    monkeypatch.setattr(JobRepository, "list", broken)
    # When jobs are listed
    response = operator.get("/v1/jobs")
    # Then the caller sees a 500 with a request id, and no internals
    assert response.status == 500
    assert response.error_code == "internal_error"
    assert response.body["error"]["details"][0]["request_id"]
    assert "fire" not in json.dumps(response.body)


def test_unsupported_content_type_is_415(operator: Api) -> None:
    response = operator.post("/v1/jobs", body="type=ping", headers={"content-type": "text/plain"})
    assert response.status == 415
    assert response.error_code == "unsupported_media_type"


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_sample_events_reach_a_route(api_handler: LambdaHandler, path: Path) -> None:
    # The samples carry a placeholder token: they reach their route and are refused there
    event = json.loads(path.read_text())
    response = api_handler(event, FakeLambdaContext(function_name="api"))
    assert response["statusCode"] in (200, 401)
    assert json.loads(response["body"])
